"""The inv image built in a node's Docker (over SSH) unless an image of the same build context is there."""
from __future__ import annotations

from labkit.app import build as build_mod
from labkit.app import dockerssh
from labkit.steps import Step


class BuildImage(Step):
    def __init__(self, plan, node: str, force: bool = False):
        self.plan, self.node, self.force = plan, node, force
        self.title = f"Building {plan.tag} in {node}"

    def describe(self, ctx) -> list[str]:
        p = self.plan
        return [f"{self.node}: FROM {p.base}, context {p.context} ({', '.join(p.files)}), digest {p.digest[:12]}"
                + ("" if self.force else "; skipped where an image of the same context exists")]

    def run(self, ctx, st) -> None:
        ssh = ctx.node(self.node)
        with dockerssh.docker_client(ssh, self.node) as client:
            have = build_mod.current(client, self.plan.tag)
            if have == self.plan.digest and not self.force:
                st.skip("up to date")
                return
            why = "forced" if have == self.plan.digest else ("not built yet" if have is None else "inv/ changed")
            st.log(f"{why}: FROM {self.plan.base}, context inv/ ({', '.join(self.plan.files)}), "
                   f"digest {self.plan.digest[:12]}")
            image_id = build_mod.build(client, self.plan, self.node, st.log)
            st.log(f"image {image_id[:19]}")
