"""Undo kubeadm on a node (workers first, the master last), and forget the laptop's kubeconfig."""
from __future__ import annotations

from labkit.cluster import node as nodeops
from labkit.errors import LabkitError
from labkit.kube import kubeconfig_path
from labkit.steps import Step


class ResetNode(Step):
    def __init__(self, node):
        self.node = node
        self.title = f"Resetting Kubernetes on {node.name}"

    def describe(self, ctx) -> list[str]:
        return [f"{self.node.name}: only if the VM exists and kubeadm left files there (even a half-finished init or "
                f"join: {', '.join(nodeops.KUBEADM_FILES.values())}, manifests, etcd data, CNI config):",
                f"  sudo -n sh -c '{nodeops.RESET_SCRIPT.strip()}'".replace("\n", "\n    ")]

    def run(self, ctx, st) -> None:
        if ctx.vm_state(self.node.name) == "not_created":
            st.skip("the VM does not exist")
            return
        ssh = ctx.node(self.node.name)
        facts = nodeops.gather(ssh)
        if nodeops.reset_action(facts, self.node.name) == "skip":
            st.skip("no kubeadm state on the node")
            return
        st.log(f"kubeadm left: {', '.join(facts.leftovers)}")
        result = ssh.run(nodeops.sudo_sh(nodeops.RESET_SCRIPT), timeout=300)
        for line in (result.stdout + result.stderr).splitlines()[-15:]:
            st.log(line)
        if not result.ok:
            raise LabkitError(f"kubeadm reset failed on {self.node.name} (output above)",
                              "run invoke cluster.reset again; if it keeps failing, invoke vm.destroy and vm.up")


class ForgetKubeconfig(Step):
    title = "Forgetting the laptop's kubeconfig"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: delete {kubeconfig_path(ctx.settings)}"]

    def run(self, ctx, st) -> None:
        path = kubeconfig_path(ctx.settings)
        if path.exists():
            path.unlink()
        else:
            st.skip("there is none")
