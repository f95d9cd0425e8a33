"""kubeadm init on the master, from the rendered configuration, unless the node already holds a cluster."""
from __future__ import annotations

import shlex

from labkit.cluster import kubeadm, node as nodeops
from labkit.errors import LabkitError
from labkit.steps import Step

INIT_TIMEOUT = 900  # kubeadm init itself; its own control-plane wait is 4 minutes


class KubeadmInit(Step):
    def __init__(self, settings):
        self.master = settings.master
        self.config = kubeadm.render(settings, self.master)  # settings mistakes stop here, dry-run included
        self.version = kubeadm.kubernetes_version(settings)
        self.title = f"Initializing the control plane on {self.master.name} (kubeadm init)"

    def describe(self, ctx) -> list[str]:
        m = self.master.name
        return [f"kubeadm configuration (written to {kubeadm.GUEST_CONFIG} on {m}):", self.config.rstrip(),
                f"{m}: skipped if {nodeops.ADMIN_CONF} exists; else {shlex.join(nodeops.upload_config_argv())} "
                "(the configuration above, on stdin)",
                f"{m}: {shlex.join(nodeops.images_list_argv())}   # each image must already be loaded: nothing is pulled",
                f"{m}: {shlex.join(nodeops.init_argv())}"]

    def run(self, ctx, st) -> None:
        ssh, name = ctx.node(self.master.name), self.master.name
        facts = nodeops.gather(ssh)
        action = nodeops.init_action(facts, self.version, name)
        st.log(f"kubeadm {facts.kubeadm}, Docker {facts.docker}, "
               + ("already initialized" if action == "skip" else "not initialized yet"))
        if action == "skip":
            st.skip(f"{nodeops.ADMIN_CONF} exists")
            return
        put = ssh.run(nodeops.upload_config_argv(), timeout=30, stdin=self.config.encode())
        if not put.ok:
            raise LabkitError(f"cannot write the kubeadm configuration on {name}: {put.stderr.strip()}",
                              "check that the vagrant user has passwordless sudo in the VM")
        wanted = ssh.run(nodeops.images_list_argv(), timeout=60)
        if not wanted.ok:
            raise LabkitError(f"kubeadm rejected the configuration: {wanted.stderr.strip()[:300]}",
                              "run invoke cluster.init --dry-run to see it; check settings.yaml versions and network")
        present = ssh.run(nodeops.PRESENT_IMAGES_ARGV, timeout=60)
        missing = nodeops.missing_images(wanted.stdout.split(), present.stdout)
        if missing:
            raise LabkitError(f"{name} lacks the control-plane image(s) {', '.join(missing)} (nothing may be pulled)",
                              "on the laptop run invoke bundle.fetch, then invoke vm.provision --step docker")
        st.log(f"all {len(wanted.stdout.split())} control-plane images are loaded")
        result = nodeops.run_logged(ssh, nodeops.init_argv(), nodeops.INIT_LOG, st.log, timeout=INIT_TIMEOUT)
        if not result.ok:
            raise LabkitError(f"kubeadm init failed on {name} (output above; full log {nodeops.INIT_LOG} on the node)",
                              "fix the cause it names, then invoke cluster.reset and invoke cluster.init")
