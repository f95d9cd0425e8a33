"""T2: sections 1 and 2 of the lab typed by hand in the real, offline test VM, against the local
repository provision/aptrepo.sh builds in it, then the kit's own kubernetes step over the result.

The test bundle has no real Kubernetes binaries: kubelet/kubeadm/kubectl, the CNI plugins and crictl
are stand-in programs (tests/support/aptrepo.py) packaged under the official names and versions; debs/base
carries the Debian packages the kubelet depends on. Everything else (dpkg-deb, apt, dpkg, systemd,
the section checks over SSH, the invoke tasks) is real.
"""
from __future__ import annotations

import io
import re
import tarfile

import pytest

from tests.support.env import REPO
from tests.support.vm import CHANGED, run_step, sh

pytestmark = pytest.mark.t2

BUNDLE = "/tmp/labkit-student-bundle"
CLEANUP = f"""
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq kubelet kubeadm kubectl kubernetes-cni cri-tools >/dev/null 2>&1 || true
rm -rf {BUNDLE} /opt/labkit/apt /etc/apt/sources.list.d/kubernetes.list /etc/default/kubelet /etc/crictl.yaml \\
       /home/vagrant/trash-can \\
       /var/lib/apt/lists/_opt_labkit_apt_*
systemctl daemon-reload
"""


@pytest.fixture(scope="module")
def guest(lab_vm):
    from labkit.backends import get_backend

    ssh = get_backend(f"node:{lab_vm.settings.master.name}", lab_vm.settings, lab_vm.env)
    yield ssh
    ssh.close()


def as_student(guest, command: str, timeout: float = 600):
    """A command exactly as the student types it at the VM's prompt (user vagrant, sudo inside)."""
    return guest.run(["bash", "-lc", command], timeout=timeout)


def states(guest, settings, upto: int):
    from labkit.student import progress
    from labkit.student.sections import want_for

    return progress.evaluate(upto, guest, want_for(settings), verify_results=list)


def put_repository(guest, settings, tmp_path):
    """The stand-in bundle into the VM, and provision/aptrepo.sh run on it (the assembled step)."""
    from tests.support import aptrepo as student_repo
    from tests.support import provision as provision_bundle

    bundle = tmp_path / "bundle"
    student_repo.build(bundle, settings.versions["kubernetes"], provision_bundle.guest_debs()[0])
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        tar.add(bundle, arcname=".")
    put = guest.run(f"sudo -n sh -c 'rm -rf {BUNDLE} && mkdir -p {BUNDLE} && tar -xz -C {BUNDLE}'",
                    stdin=payload.getvalue(), timeout=60)
    assert put.ok, put.stderr
    return run_step(guest, settings, "aptrepo", BUNDLE)


def test_sections_1_and_2_by_hand_from_the_local_repository_offline(lab_vm, guest, tmp_path):
    s = lab_vm.settings
    try:
        built = put_repository(guest, s, tmp_path)
        assert built.ok, built.stdout + built.stderr
        assert "built the local package repository /opt/labkit/apt (kubernetes-xenial main)" in built.stdout

        before = states(guest, s, 2)
        assert before[0].status == "not started" and before[0].failure.check.id == "source"
        assert before[1].status == "not started" and before[1].blocked_by == 1

        # Section 1, as docs/student.md gives it, then the lab's apt-get update (every source: the
        # box's Debian mirror cannot be reached, the local one can).
        line = (REPO / "provision/files/kubernetes.list").read_text().strip()
        added = as_student(guest, f'echo "{line}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list')
        assert added.ok and added.stdout.strip() == line
        assert states(guest, s, 1)[0].failure.check.id == "lists"  # not read yet: apt-get update is next
        update = as_student(guest, "sudo apt-get update")
        print(update.stdout, update.stderr, f"apt-get update took {update.seconds:.1f}s")
        assert re.search(r"file:/opt/labkit/apt kubernetes-xenial Release", update.stdout)
        assert "deb.debian.org" in update.stdout + update.stderr and re.search(r"^(Err|Ign):", update.stdout, re.M)
        after_1 = states(guest, s, 2)
        assert after_1[0].status == "done"
        assert after_1[1].failure.result.fix == "sudo apt-get install -y kubelet kubeadm kubectl kubernetes-cni"

        # Section 2 with the version pinned, offline.
        install = as_student(guest, "sudo apt-get install -y kubelet=1.15.12-00 kubeadm=1.15.12-00 kubectl=1.15.12-00")
        print(install.stdout[-3000:], install.stderr, f"apt-get install took {install.seconds:.1f}s")
        assert install.ok, install.stdout[-2000:] + install.stderr
        for pkg in ("kubernetes-cni (0.7.5-00)", "cri-tools (1.13.0-00)", "kubelet (1.15.12-00)", "kubeadm (1.15.12-00)"):
            assert f"Setting up {pkg} ..." in install.stdout
        after_2 = states(guest, s, 3)
        assert [st.status for st in after_2[:2]] == ["done", "done"], after_2[1].failure
        assert after_2[2].failure.check.id == "manifests"  # next: kubeadm init
        unit = sh(guest, "systemctl show -p FragmentPath,DropInPaths,UnitFileState kubelet").stdout
        assert "FragmentPath=/lib/systemd/system/kubelet.service" in unit and "UnitFileState=enabled" in unit
        assert "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" in unit

        # The tasks a student runs on the laptop say the same.
        checked = lab_vm.invoke("section.check", "2", timeout=300)
        assert checked.returncode == 0 and "Section 2 is done." in checked.stdout
        table = lab_vm.invoke("section.progress", timeout=300)
        rows = {m[0]: m[1] for m in re.findall(r"^\W*([1-8])\W.*?(done|in progress|not started)", table.stdout, re.M)}
        assert rows.get("1") == "done" and rows.get("2") == "done" and rows.get("3") == "not started", table.stdout
        assert table.returncode == 0 and "Next: sudo kubeadm init" in table.stdout

        # The kit's own step on top. The kubelet 1.15 needs cgroup v1 (xenial's); this Debian 12 test box
        # boots its kernel directly with cgroup v2 and has no GRUB to ask for v1, so there the step must
        # stop before any change with its one line; on a cgroup v1 guest it installs nothing more, adds the
        # kubelet's flags, then skips.
        cgroup = sh(guest, "stat -fc %T /sys/fs/cgroup").stdout.strip()
        kit = run_step(guest, s, "kubernetes", BUNDLE)
        if cgroup == "cgroup2fs":
            assert kit.exit_code == 1 and "this guest boots cgroup v2 only, which the kubelet v1.15.12 cannot use" \
                in kit.stdout + kit.stderr, kit.stdout + kit.stderr
            assert "wrote /etc/default/kubelet" not in kit.stdout  # refused before any change
        else:
            assert kit.ok, kit.stdout + kit.stderr
            assert "skip: kubeadm kubectl kubelet (already 1.15.12-00)" in kit.stdout
            assert "wrote /etc/default/kubelet" in kit.stdout
            again = run_step(guest, s, "kubernetes", BUNDLE)
            assert again.ok and [ln for ln in again.stdout.splitlines() if CHANGED.search(ln)] == []
        rebuilt = run_step(guest, s, "aptrepo", BUNDLE)
        assert "skip: local package repository /opt/labkit/apt (already built from these bundle files)" in rebuilt.stdout
    finally:
        sh(guest, CLEANUP)


def test_section_start_saves_a_section_snapshot_then_restores_it(lab_vm, guest, tmp_path):
    """section.start 2 on the running VM: the kit solves section 1, saves snapshot section-2 with its
    record; after the student breaks section 1, section.start 2 restores the snapshot."""
    from labkit.backends import get_backend

    s = lab_vm.settings
    fresh = guest
    try:
        assert put_repository(guest, s, tmp_path).ok
        first = lab_vm.invoke("section.start", "2", timeout=1800)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Solving section 1" in first.stdout and "saved as snapshot section-2" in first.stdout
        assert (s.state_dir / "sections" / "section-2.json").is_file()
        assert [st.status for st in states(guest, s, 2)] == ["done", "not started"]
        # what section.start puts on the VM besides the lab: the kubelet's flags, the inventory sources
        from labkit.student.sections import want_for

        assert sh(guest, "cat /etc/default/kubelet").stdout == want_for(s).kubelet_args + "\n"
        assert sh(guest, "test -f /home/vagrant/trash-can/inv/Dockerfile && stat -c %U /home/vagrant/trash-can/inv/app.py"
                  ).stdout == "vagrant\n"

        assert sh(guest, "rm /etc/apt/sources.list.d/kubernetes.list").ok  # the student undoes section 1
        again = lab_vm.invoke("section.start", "2", timeout=900)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"Restoring {s.master.name} to snapshot section-2" in again.stdout
        assert "Solving" not in again.stdout
        fresh = get_backend(f"node:{s.master.name}", s, lab_vm.env)  # the old connection predates the restore
        assert [st.status for st in states(fresh, s, 2)] == ["done", "not started"]
    finally:
        lab_vm.invoke("vm.snapshot", "--delete", "section-2", timeout=600)
        (s.state_dir / "sections" / "section-2.json").unlink(missing_ok=True)
        sh(fresh, CLEANUP)
        if fresh is not guest:
            fresh.close()


def test_section_3s_advertise_address_is_the_nodes_host_only_one_and_not_the_default_routes(lab_vm):
    """Issue 23 item 1, visible in the VM: kubeadm 1.15 without the flag advertises the address of the
    default route's interface (docs/student.md, section 3); here that is not the host-only interface,
    so the flag section.show prints is needed, and its value is this node's host-only address."""
    from labkit.backends import get_backend
    from labkit.student import commands
    from labkit.student.sections import want_for

    s = lab_vm.settings
    want = want_for(s)
    typed = [st.typed for st in commands.steps(3, want)]
    assert f"sudo kubeadm init --apiserver-advertise-address={s.master.ip}" in typed
    node = get_backend(f"node:{s.master.name}", s, lab_vm.env)  # its own connection (a restore may precede)
    try:
        addrs = sh(node, "ip -4 -o addr show")  # "N: IFACE    inet A.B.C.D/NN ..."
        assert addrs.ok, addrs.stderr
        host_only = [line.split()[1] for line in addrs.stdout.splitlines() if f" {s.master.ip}/" in line]
        assert len(host_only) == 1, addrs.stdout
        default = sh(node, "ip -4 route show default")
        assert default.ok and default.stdout.strip(), default.stderr
        assert f" dev {host_only[0]} " not in default.stdout + " ", default.stdout
    finally:
        node.close()
