"""The nodes against the settings (labkit.cluster.nodeset): every Node the API lists is in settings, and no
two nodes share a machine-id or product_uuid. Before anything depends on the node count (the taint, joins)."""
from __future__ import annotations

from labkit.cluster import node as nodeops, nodeset
from labkit.kube.objects import name
from labkit.steps import Step


class CheckNodes(Step):
    title = "Checking the nodes against the settings"

    def describe(self, ctx) -> list[str]:
        s = ctx.settings
        lines = [f"laptop: every Node the API server lists must be one of {', '.join(n.name for n in s.nodes)} "
                 "(a lab built with workers, run without LABKIT_WORKERS, stops here with the setting to use)"]
        if len(s.nodes) > 1:
            lines.append(f"each node: read {nodeops.MACHINE_ID} and {nodeops.PRODUCT_UUID} (in the node facts); "
                         "no two nodes may share either")
        return lines

    def run(self, ctx, st) -> None:
        s = ctx.settings
        problem = nodeset.api_problem(s, [name(n) for n in ctx.api.nodes()])
        if problem:
            raise problem
        if len(s.nodes) < 2:
            st.note = "single node"
            return
        facts = {n.name: nodeops.gather(ctx.node(n.name)) for n in s.nodes}
        problem = nodeset.identity_problem(facts)
        if problem:
            raise problem
        st.note = f"{len(facts)} nodes, each with its own machine-id and product_uuid"

