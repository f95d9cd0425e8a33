"""manifests/ applied: each object created, or updated by a strategic merge patch (a changed Pod replaced)."""
from __future__ import annotations

from labkit.app import apply as apply_mod
from labkit.app import objects
from labkit.steps import Step

DELETE_TIMEOUT = 90


class ApplyManifests(Step):
    title = "Applying manifests/"

    def __init__(self, objs: list[dict]):
        self.objs = objs

    def describe(self, ctx) -> list[str]:
        return ["create or update (strategic merge patch), as this YAML:", objects.to_yaml(self.objs).rstrip()]

    def run(self, ctx, st) -> None:
        cluster = apply_mod.Cluster(ctx.api)

        def gone(kind, name):
            apply_mod.wait_gone(cluster, kind, name, DELETE_TIMEOUT, st.log)

        actions = [(objects.ref(o), apply_mod.apply(cluster, o, gone)) for o in self.objs]
        for name, action in actions:
            st.log(f"{name} {action}")
        if all(a == "unchanged" for _n, a in actions):
            st.skip("all unchanged")
