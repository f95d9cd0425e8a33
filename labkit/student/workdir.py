"""What the kit puts on a student's VM besides the lab: the kubelet's per-node flags and the inventory
service's sources where the lab's section 7 works (~/trash-can/inv). section.start does both.

The kubelet's flags: /etc/default/kubelet, which kubeadm's drop-in reads (KUBELET_EXTRA_ARGS), as
provision/kubernetes.sh writes it for the kit's own path (--node-ip: the host-only address;
--resolv-conf: provision/base.sh's resolver list without loopback servers, else CoreDNS loops). Written
before section 2, so the kubelet the student installs starts with them; never typed by the student.

The sources:

The lab builds trash-can/inv:0.1 in an earlier lab and runs `cd trash-can/inv` in section 7. The
Vagrantfile shares no project folder with the VM (only the bundle), so the kit copies inv/ (the
same build context app.build uses, after .dockerignore) to the VM user's ~/trash-can/inv, where the
student's `docker build -t trash-can/inv:0.1 .` finds the Dockerfile and its pinned, bundled base
image. An existing folder is left alone: it is the student's.
"""
from __future__ import annotations

import io
import tarfile

from labkit.backends import CommandResult

GUEST_DIR = "trash-can/inv"  # relative to the VM user's home, as the lab's `cd trash-can/` is


def archive(settings) -> bytes:
    """inv/'s build context as a tar.gz (files only, owned by whoever extracts it)."""
    from labkit.app.build import context_dir, context_files

    ctx = context_dir(settings)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel in context_files(ctx):
            info = tar.gettarinfo(str(ctx / rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(ctx / rel, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


def put_command() -> str:
    """Run as the VM user: extract stdin into ~/trash-can/inv unless its Dockerfile is already there."""
    return (f'if [ -f "$HOME/{GUEST_DIR}/Dockerfile" ]; then echo kept; '
            f'else mkdir -p "$HOME/{GUEST_DIR}" && tar -xzf - -C "$HOME/{GUEST_DIR}" && echo written; fi')


def kubelet_flags_command(want) -> str:
    """Run as root: write /etc/default/kubelet unless it exists (the kit's or the student's: left alone)."""
    from labkit.student.checks import KUBELET_RESOLV

    return (f"if [ -f /etc/default/kubelet ]; then echo kept; "
            f"elif [ ! -f {KUBELET_RESOLV} ]; then echo '{KUBELET_RESOLV} is missing (provision/base.sh writes it)' >&2; exit 1; "
            f"else printf '%s\\n' '{want.kubelet_args}' > /etc/default/kubelet && echo written; fi")


def put_kubelet_flags(node, want) -> CommandResult:
    return node.run(["sudo", "-n", "sh", "-c", kubelet_flags_command(want)], timeout=30)


def put_inv_sources(node, settings) -> CommandResult:
    """Copy the sources to the VM (as the VM user, over the node backend): stdout says written or kept."""
    return node.run(["sh", "-c", put_command()], timeout=60, stdin=archive(settings))


def preparations(node, settings, want) -> list:
    """(title, put, fix) of each thing the kit puts on a student's VM, in order; put() -> CommandResult
    whose stdout says written or kept."""
    return [
        ("Writing the kubelet's per-node flags (/etc/default/kubelet)", lambda: put_kubelet_flags(node, want),
         "invoke vm.provision --step base (it writes /etc/labkit/resolv.conf), then invoke section.start again"),
        (f"Putting the inventory sources in ~{want.user}/{GUEST_DIR}", lambda: put_inv_sources(node, settings),
         "check the VM's free disk space (invoke vm.ssh --command 'df -h ~'), then invoke section.start again"),
    ]
