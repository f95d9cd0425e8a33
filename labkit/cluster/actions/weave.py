"""Weave Net from the bundle: its manifest verified on the node, IPALLOC_RANGE set to the pod CIDR, applied once."""
from __future__ import annotations

import shlex

from labkit.bundle import checksums
from labkit.cluster import kubeadm, node as nodeops
from labkit.errors import LabkitError
from labkit.steps import Step


def guest_manifest(settings) -> str:
    """Where the VM sees the bundle's Weave manifest (read from the laptop's CHECKSUMS if present)."""
    sums = settings.bundle_dir / "CHECKSUMS"
    if sums.is_file():
        found = [c for c in checksums.parse(sums.read_text()) if c.path.startswith(nodeops.WEAVE_MANIFEST_PREFIX)]
        if len(found) == 1:
            return f"{settings.bundle_guest_dir}/{found[0].path}"
    return f"{settings.bundle_guest_dir}/{nodeops.WEAVE_MANIFEST_DEFAULT}"  # the bundle contract's name


class InstallWeave(Step):
    title = "Installing Weave Net from the bundle"

    def __init__(self, settings):
        self.master = settings.master
        self.cidr = str(kubeadm.pod_network(settings))

    def describe(self, ctx) -> list[str]:
        m = self.master.name
        return ["laptop: skipped if the weave-net DaemonSet exists (Kubernetes API)",
                f"{m}: check the Weave Net manifest (the manifests/weave* file CHECKSUMS pins) and that its images are loaded",
                f"{m}: {guest_manifest(ctx.settings)} with IPALLOC_RANGE={self.cidr} on the weave container, piped to "
                f"{shlex.join(nodeops.apply_argv())}"]

    def run(self, ctx, st) -> None:
        if ctx.api.get("DaemonSet", "kube-system", "weave-net"):
            st.skip("the weave-net DaemonSet exists")
            return
        apply(ctx.settings, ctx.node(self.master.name), self.master, st)


def apply(settings, ssh, master, st) -> None:
    path = nodeops.verify_on_node(ssh, settings.bundle_guest_dir, nodeops.WEAVE_MANIFEST_PREFIX, "Weave Net manifest")
    manifest = ssh.run(["cat", path], timeout=30)
    if not manifest.ok:  # an empty listing would pass the image check and apply nothing
        raise LabkitError(f"cannot read the Weave Net manifest {path} on {master.name}: {manifest.stderr.strip()[:200]}",
                          f"check the bundle in the VM (invoke vm.ssh --command 'ls -l {path}'), then invoke cluster.init")
    # Weave allocates from its own default range unless told: give it the podSubnet kubeadm was given.
    cidr = str(kubeadm.pod_network(settings))
    patched = nodeops.weave_with_range(manifest.stdout, cidr)
    images = nodeops.manifest_images(manifest.stdout)
    present = ssh.run(nodeops.PRESENT_IMAGES_ARGV, timeout=60)
    missing = nodeops.missing_images(images, present.stdout)
    if missing:
        raise LabkitError(f"{master.name} lacks the Weave Net image(s) {', '.join(missing)} (nothing may be pulled)",
                          "on the laptop run invoke bundle.fetch, then invoke vm.provision --step docker")
    applied = ssh.run(nodeops.apply_argv(), timeout=120, stdin=patched.encode())
    for line in applied.stdout.splitlines():
        st.log(line)
    if not applied.ok:
        raise LabkitError(f"kubectl apply of the Weave Net manifest failed: {applied.stderr.strip()[:300]}",
                          "see invoke cluster.status; then invoke cluster.init again")
    st.log(f"IPALLOC_RANGE={cidr} (network.pod_cidr)")
