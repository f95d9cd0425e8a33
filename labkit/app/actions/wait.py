"""Wait for the Deployment's rollout and the pods; on a timeout, the pods and warning events as tables."""
from __future__ import annotations

from labkit import ui
from labkit.app import apply as apply_mod
from labkit.app import objects, rollout
from labkit.steps import Step


class WaitRollout(Step):
    def __init__(self, objs: list[dict], images: dict):
        self.objs, self.images = objs, images
        self.title = "Waiting for " + ", ".join(objects.ref(o) for o in objs if o["kind"] in rollout.WATCHED)

    def describe(self, ctx) -> list[str]:
        return [f"laptop: up to {ctx.timeout:g}s until the Deployment has rolled out and each pod is Running and ready"]

    def run(self, ctx, st) -> None:
        try:
            rollout.wait(apply_mod.Cluster(ctx.api), self.objs, self.images, float(ctx.timeout), st.log)
        except rollout.RolloutTimeout as exc:
            ui.table("Pods", ["pod", "status", "ready", "restarts", "node"], exc.pods or [["(none)", "", "", "", ""]])
            if exc.events:
                ui.table("Warning events", ["reason", "object", "message"], exc.events)
            raise
