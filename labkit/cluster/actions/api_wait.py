"""Wait for the API server to answer: right after a VM boot it is still starting, even if kubeadm init was skipped."""
from __future__ import annotations

from labkit.kube import wait_reachable
from labkit.steps import Step


class WaitForApi(Step):
    title = "Waiting for the API server"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: wait up to {ctx.timeout:g}s for the API server to answer (after a VM boot it needs a minute)"]

    def run(self, ctx, st) -> None:
        if wait_reachable(ctx.api.nodes, ctx.timeout, st.log):
            st.skip("it answers")
