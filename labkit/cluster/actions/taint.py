"""The master's NoSchedule taint: removed when the master runs the lab's pods (single node), else kept."""
from __future__ import annotations

from labkit.errors import LabkitError
from labkit.kube.objects import MASTER_TAINT, name
from labkit.steps import Step


class MasterTaint(Step):
    def __init__(self, settings):
        self.master, self.remove = settings.master, settings.untaint_master
        self.title = f"Removing the master taint from {self.master.name}"

    def describe(self, ctx) -> list[str]:
        if not self.remove:
            return ["laptop: keep the master taint (worker nodes run the pods)"]
        return [f"laptop: remove the taint {MASTER_TAINT}:NoSchedule from {self.master.name} (Kubernetes API)"]

    def run(self, ctx, st) -> None:
        if not self.remove:
            st.skip("worker nodes run the pods")
            return
        nodes = {name(n): n for n in ctx.api.nodes()}
        if self.master.name not in nodes:
            raise LabkitError(f"the API server has no node {self.master.name}",
                              "check nodes[].name in settings against the VM's host name, then invoke cluster.reset "
                              "and cluster.init")
        current = nodes[self.master.name].get("spec", {}).get("taints") or []
        keep = [t for t in current if t.get("key") != MASTER_TAINT]
        if len(keep) == len(current):
            st.skip("no master taint")
            return
        ctx.api.set_taints(self.master.name, keep)
        st.log("pods may now run on the master (single-node lab)")
