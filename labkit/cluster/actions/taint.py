"""The master's NoSchedule taint converges both ways: absent when the master runs the lab's pods (a single node,
or master_runs_pods), present with workers (they run the pods). The lab removes it with
`kubectl taint nodes --all node-role.kubernetes.io/master-`; kubeadm init puts it there."""
from __future__ import annotations

from labkit.errors import LabkitError
from labkit.kube.objects import MASTER_TAINT, name
from labkit.steps import Step

TAINT = {"key": MASTER_TAINT, "effect": "NoSchedule"}  # as kubeadm 1.15's mark-control-plane phase sets it


class MasterTaint(Step):
    def __init__(self, settings):
        self.master, self.remove = settings.master, settings.untaint_master
        self.title = (f"Removing the master taint from {self.master.name}" if self.remove
                      else f"Keeping the master taint on {self.master.name} (workers run the pods)")

    def describe(self, ctx) -> list[str]:
        if not self.remove:
            return [f"laptop: put the taint {MASTER_TAINT}:NoSchedule back on {self.master.name} if it is gone "
                    "(Kubernetes API)"]
        return [f"laptop: remove the taint {MASTER_TAINT}:NoSchedule from {self.master.name} (Kubernetes API)"]

    def run(self, ctx, st) -> None:
        nodes = {name(n): n for n in ctx.api.nodes()}
        if self.master.name not in nodes:
            raise LabkitError(f"the API server has no node {self.master.name}",
                              "check nodes[].name in settings against the VM's host name, then invoke cluster.reset "
                              "and cluster.init")
        current = nodes[self.master.name].get("spec", {}).get("taints") or []
        others = [t for t in current if t.get("key") != MASTER_TAINT]
        tainted = len(others) != len(current)
        if self.remove:
            if not tainted:
                st.skip("no master taint")
                return
            ctx.api.set_taints(self.master.name, others)
            st.log("pods may now run on the master (single-node lab)")
            return
        if tainted:
            st.skip("the taint is there")
            return
        ctx.api.set_taints(self.master.name, current + [TAINT])
        st.log("the taint was gone (a run without the worker settings removed it): put back, pods go to the workers")
