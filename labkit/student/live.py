"""The live lab as the section tasks and steps see it: the master over SSH (a labkit.steps.Context's node),
verify's results through the laptop's kubeconfig, and the sections judged on both."""
from __future__ import annotations

from labkit import ui
from labkit.errors import LabkitError
from labkit.student import progress
from labkit.student.sections import want_for


def ensure_running(ctx) -> None:
    master = ctx.settings.master.name
    state = ctx.vm_state(master)
    if state == "not_created":
        raise LabkitError(f"the VM {master} does not exist", "create it for the lab by hand: invoke section.start 1")
    if state != "running":  # stopped or saved: vm.up starts it where it was (section.start 1 would start over)
        raise LabkitError(f"the VM {master} is not running ({state})", "start it where it was: invoke vm.up")


def laptop_kubeconfig(s, node) -> None:
    """verify reads the cluster from the laptop through the kubeconfig cluster.init exports. A
    cluster the student made with kubeadm init has none (or an old one): read the admin
    credentials from the VM instead, written 0600 and never shown."""
    from labkit.cluster import kubeadm, kubeconfig
    from labkit.cluster.node import ADMIN_CONF
    from labkit.fsutil import write_private
    from labkit.kube import kubeconfig_path

    admin = node.run(["sudo", "-n", "cat", ADMIN_CONF], timeout=30)
    if not admin.ok:
        return  # verify then says what is missing
    text = kubeconfig.for_laptop(admin.stdout, kubeadm.api_server_url(s.master))
    path = kubeconfig_path(s)
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        write_private(path, text)
        ui.say(f"Read the cluster's admin credentials from the VM ({ADMIN_CONF}) into {path} (0600, not shown).")


def verify_results(s, node) -> tuple:
    """verify's results and the API snapshot they were judged from (student/labnext.py reads both)."""
    from labkit.verify import from_api, run_lab, where_for
    from labkit.verify.model import Lab

    laptop_kubeconfig(s, node)
    lab = Lab.from_settings(s)
    where = where_for(s)
    try:
        snap = from_api.fetch(s, lab)
        return run_lab(lab, snap, where), snap
    finally:
        where.node.close()


def evaluate(ctx, upto: int) -> list:
    """Sections 1..upto on the live lab (labkit.student.progress.evaluate), through the run's master connection."""
    s = ctx.settings
    node = ctx.node(s.master.name)
    return progress.evaluate(upto, node, want_for(s), lambda: verify_results(s, node))
