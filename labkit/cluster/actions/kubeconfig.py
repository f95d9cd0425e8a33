"""The admin kubeconfig, for the VM user (~/.kube/config) and for the laptop (.labkit/kubeconfig, 0600)."""
from __future__ import annotations

from labkit.cluster import kubeadm, kubeconfig, node as nodeops
from labkit.errors import LabkitError
from labkit.fsutil import make_private, write_private
from labkit.kube import kubeconfig_path
from labkit.steps import Step


class ExportKubeconfig(Step):
    title = "Exporting the kubeconfig (VM user and laptop)"

    def __init__(self, settings):
        self.master = settings.master

    def describe(self, ctx) -> list[str]:
        return [f"{self.master.name}: copy {nodeops.ADMIN_CONF} to ~/.kube/config of the VM user (0600)",
                f"laptop: write {kubeconfig_path(ctx.settings)} (0600) with server {kubeadm.api_server_url(self.master)}"]

    def run(self, ctx, st) -> None:
        ssh, master = ctx.node(self.master.name), self.master
        user = ssh.run(["sh", "-c", nodeops.USER_KUBECONFIG_SCRIPT], timeout=30)
        if not user.ok:
            raise LabkitError(f"cannot copy admin.conf for the VM user: {user.stderr.strip()}",
                              "check that the vagrant user has passwordless sudo in the VM")
        admin = ssh.run(["sudo", "-n", "cat", nodeops.ADMIN_CONF], timeout=30)
        if not admin.ok:
            raise LabkitError(f"cannot read {nodeops.ADMIN_CONF} on {master.name}",
                              "run invoke cluster.reset, then invoke cluster.init")
        text = kubeconfig.for_laptop(admin.stdout, kubeadm.api_server_url(master))
        path = kubeconfig_path(ctx.settings)
        laptop_current = path.is_file() and path.read_text(encoding="utf-8") == text
        if laptop_current:
            make_private(path)  # it holds the admin key: only this user, even if someone widened it
        else:
            write_private(path, text)
        if laptop_current and user.stdout.strip() == "unchanged":
            st.skip("both already current")
        else:
            st.log(f"laptop: {path} (0600), server {kubeadm.api_server_url(master)}")
