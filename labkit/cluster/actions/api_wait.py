"""Wait for the API server to answer: right after a VM boot it is still starting, even if kubeadm init was skipped."""
from __future__ import annotations

from typing import Optional

from labkit.kube import wait_reachable
from labkit.steps import Step


class WaitForApi(Step):
    title = "Waiting for the API server"

    def __init__(self, master: Optional[str] = None):
        # cluster.join starts here: its master is reached first, so a VM that is down says so (NodeDown),
        # rather than the API's "unreachable" or "no kubeconfig"
        self.master = master

    def describe(self, ctx) -> list[str]:
        return [f"laptop: wait up to {ctx.timeout:g}s for the API server to answer (after a VM boot it needs a minute)"]

    def run(self, ctx, st) -> None:
        if self.master:
            ctx.node(self.master)
        if wait_reachable(ctx.api.nodes, ctx.timeout, st.log):
            st.skip("it answers")
