"""T0: doctor's decisions for laptops other than this one, described through a Probe (nothing is faked
about this machine: each test builds the facts of the laptop it is about)."""
from __future__ import annotations

import shutil

import pytest

from labkit import doctor, settings
from tests.support.env import REPO
from tests.support.laptop import check, GIB, Laptop
from tests.support.laptop import s


def test_a_good_laptop_passes_the_machine_checks(s):
    for fn in (doctor.check_architecture, doctor.check_vagrant, doctor.check_provider, doctor.check_pairing,
               doctor.check_virtualization, doctor.check_kvm, doctor.check_hyperv, doctor.check_cpus,
               doctor.check_memory, doctor.check_disk, doctor.check_network, doctor.check_nat_dns):
        result = check(fn, s)
        assert result.status == doctor.OK, result


def test_missing_virtualbox_is_a_failure_with_the_install_fix(s):
    r = check(doctor.check_provider, s, tools={"vagrant": "/usr/bin/vagrant"})
    assert r.status == doctor.FAIL
    assert r.detail == "VirtualBox is not installed (no VBoxManage found)"
    assert "install VirtualBox" in r.fix and "LABKIT_PROVIDER=libvirt" in r.fix


def test_libvirt_is_not_suggested_on_windows(s):
    r = check(doctor.check_provider, s, system="Windows", tools={"vagrant": "vagrant.exe"})
    assert r.status == doctor.FAIL and "libvirt" not in r.fix


def test_virtualbox_that_does_not_run(s):
    r = check(doctor.check_provider, s, outputs={"vagrant": "Vagrant 2.4.1"})
    assert r.status == doctor.FAIL and "does not run" in r.detail


def test_missing_and_old_vagrant(s):
    assert check(doctor.check_vagrant, s, tools={}).status == doctor.FAIL
    old = check(doctor.check_vagrant, s, outputs={"vagrant": "Vagrant 2.1.5"})
    assert old.status == doctor.FAIL and "2.1.5 is too old" in old.detail


def test_apple_silicon_is_refused_natively_and_under_rosetta(s):
    native = check(doctor.check_architecture, s, system="Darwin", machine="arm64")
    rosetta = check(doctor.check_architecture, s, system="Darwin", machine="x86_64", rosetta=True)
    for r in (native, rosetta):
        assert r.status == doctor.FAIL and "x86-64 only" in r.detail


def test_hyperv_on_windows_fails_early_with_the_bcdedit_fix(s):
    r = check(doctor.check_hyperv, s, system="Windows", hyperv=True)
    assert r.status == doctor.FAIL and "bcdedit /set hypervisorlaunchtype off" in r.fix
    unknown = check(doctor.check_hyperv, s, system="Windows", hyperv=None)
    assert unknown.status == doctor.WARN


@pytest.mark.parametrize("total, available, status", [
    (2 * GIB, 1 * GIB, doctor.FAIL),  # the VM alone needs 2 GiB
    (8 * GIB, 2 * GIB, doctor.WARN),  # fits, but only after closing the browser
    (8 * GIB, 6 * GIB, doctor.OK),
])
def test_memory(s, total, available, status):
    assert check(doctor.check_memory, s, total=total, available=available).status == status


@pytest.mark.parametrize("cpus, status", [(1, doctor.FAIL), (2, doctor.WARN), (8, doctor.OK)])
def test_cpus(s, cpus, status):
    assert check(doctor.check_cpus, s, cpus=cpus).status == status


def with_workers(s, count, memory=2048):
    return settings.load(s.root, {"LABKIT_WORKERS": str(count), "LABKIT_VM__MEMORY": str(memory)})


def test_memory_adds_up_every_node(s):
    # 8 GiB holds one 2 GiB VM easily, but not a master and three workers (8 GiB + 1 GiB for the host)
    assert check(doctor.check_memory, s, total=8 * GIB, available=7 * GIB).status == doctor.OK
    three = check(doctor.check_memory, with_workers(s, 3), total=8 * GIB, available=7 * GIB)
    assert three.status == doctor.FAIL
    assert "4 VMs take 2048 MB each" in three.detail
    # 7 GiB of room: two workers of 2048 MB fit, or four nodes of 1792 MB
    assert three.fix == ("use at most 2 worker(s) (LABKIT_WORKERS, or the nodes list) "
                         "or give each node less memory (LABKIT_VM__MEMORY=1792)")


def test_memory_fix_without_room_for_a_smaller_node(s):
    # 5 GiB: room 4096 MB; one worker fits at 2048, but 3 nodes at 1365 MB are below kubeadm's 1700
    got = check(doctor.check_memory, with_workers(s, 2), total=5 * GIB, available=5 * GIB)
    assert got.status == doctor.FAIL and got.fix == "use at most 1 worker(s) (LABKIT_WORKERS, or the nodes list)"
    # 3.5 GiB: no worker fits at all, and two nodes at 1280 MB are too small too
    none = check(doctor.check_memory, with_workers(s, 1), total=int(3.5 * GIB), available=3 * GIB)
    assert none.fix == "use at most 0 worker(s) (LABKIT_WORKERS, or the nodes list)"
    tiny = check(doctor.check_memory, with_workers(s, 1, memory=4096), total=4 * GIB, available=3 * GIB)
    assert tiny.fix == "this laptop is too small for the lab; use one with 4 GiB or more"  # not even the master fits


@pytest.mark.parametrize("cpus, status", [(2, doctor.WARN), (4, doctor.WARN), (8, doctor.OK)])
def test_cpus_add_up_every_node(s, cpus, status):
    got = check(doctor.check_cpus, with_workers(s, 1), cpus=cpus)
    assert got.status == status
    assert "2 VMs take 2 each (4)" in got.detail


@pytest.mark.parametrize("free, status", [(3 * GIB, doctor.FAIL), (8 * GIB, doctor.WARN), (50 * GIB, doctor.OK)])
def test_disk(s, free, status):
    assert check(doctor.check_disk, s, free_disk=free).status == status


def test_virtualization_flags(s):
    assert check(doctor.check_virtualization, s, flags=frozenset()).status == doctor.WARN
    assert check(doctor.check_virtualization, s, flags=frozenset({"svm"})).status == doctor.OK
    assert check(doctor.check_virtualization, s, flags=None).status == doctor.OK  # Windows: VirtualBox will say


def test_libvirt_needs_kvm_unless_software_emulation(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    kvm = settings.load(tmp_path, {"LABKIT_PROVIDER": "libvirt"})
    tcg = settings.load(tmp_path, {"LABKIT_PROVIDER": "libvirt", "LABKIT_VM__LIBVIRT_DRIVER": "qemu"})
    assert doctor.check_virtualization(kvm, Laptop(kvm=False)).status == doctor.FAIL
    assert "LABKIT_VM__LIBVIRT_DRIVER=qemu" in doctor.check_virtualization(kvm, Laptop(kvm=False)).fix
    assert doctor.check_virtualization(tcg, Laptop(kvm=False)).status == doctor.OK


def test_node_ip_already_on_the_laptop(s):
    r = check(doctor.check_network, s, addresses={"127.0.0.1", "192.168.56.10"})
    assert r.status == doctor.FAIL and "192.168.56.10 is already an address of this laptop" in r.detail


def test_vbox_networks_conf_that_excludes_the_node(s):
    r = check(doctor.check_network, s, networks_conf="* 10.0.0.0/8\n")
    assert r.status == doctor.FAIL and "/etc/vbox/networks.conf" in r.fix
    assert check(doctor.check_network, s, networks_conf="* 192.168.56.0/21\n").status == doctor.OK


def test_bundle_missing_artifacts_are_counted_for_this_provider_only(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    (tmp_path / "lock.yaml").write_text(
        "artifacts:\n"
        "  - {name: a, kind: file, urls: ['https://x/a'], path: files/a, size: 3}\n"
        "  - {name: box-libvirt, kind: file, urls: ['https://x/b'], path: boxes/b.box, box: x/y, provider: libvirt}\n"
        "count: 2\n")
    s = settings.load(tmp_path, {"LABKIT_BUNDLE__LOCK": "lock.yaml"})
    r = doctor.check_bundle(s, Laptop())
    assert r.status == doctor.FAIL and r.detail.startswith("1 of 1 artifacts missing") and "bundle.fetch" in r.fix
    (tmp_path / "bundle" / "files").mkdir(parents=True)
    (tmp_path / "bundle" / "files" / "a").write_bytes(b"abc")
    assert doctor.check_bundle(s, Laptop()).status == doctor.OK  # the libvirt box is not needed for VirtualBox


def test_unreadable_lock_is_reported_not_raised(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    (tmp_path / "bundle.lock.yaml").write_text("artifacts: [")
    r = doctor.check_bundle(settings.load(tmp_path, {}), Laptop())
    assert r.status == doctor.FAIL and "not valid YAML" in r.detail


def libvirt_settings(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return settings.load(tmp_path, {"LABKIT_PROVIDER": "libvirt"})


LIBVIRT_HOST = dict(tools={"vagrant": "/usr/bin/vagrant", "virsh": "/usr/bin/virsh", "rsync": "/usr/bin/rsync"},
                    outputs={"vagrant": "vagrant-libvirt (0.11.2, system)\n",  # `vagrant plugin list`
                             "virsh": "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n"})


def test_libvirt_needs_rsync_for_the_bundle_folder(tmp_path):
    s = libvirt_settings(tmp_path)
    assert doctor.check_provider(s, Laptop(**LIBVIRT_HOST)).status == doctor.OK
    tools = {k: v for k, v in LIBVIRT_HOST["tools"].items() if k != "rsync"}
    r = doctor.check_provider(s, Laptop(tools=tools, outputs=LIBVIRT_HOST["outputs"]))
    assert r.status == doctor.FAIL and "rsync is not installed" in r.detail and "apt-get install rsync" in r.fix


def test_a_typo_in_vbox_networks_conf_is_a_failure_not_a_traceback(s):
    r = check(doctor.check_network, s, networks_conf="* 10.0.0.0/8 192.168.300.0/24\n")
    assert r.status == doctor.FAIL and "'192.168.300.0/24', which is not an address range" in r.detail
    assert r.fix == "correct that line, like '* 192.168.56.0/21'"


class UnreadableConf(Laptop):
    """/etc/vbox/networks.conf exists but this user may not read it."""

    def vbox_networks_conf(self):
        raise PermissionError(13, "Permission denied", "/etc/vbox/networks.conf")


def test_a_check_that_breaks_becomes_its_fail_row(s):
    rows = {r.name: r for r in doctor.run(s, UnreadableConf())}
    r = rows["host-only network"]
    assert r.status == doctor.FAIL and r.fix
    assert r.detail == ("the host-only network check could not run: PermissionError: [Errno 13] Permission denied: "
                        "'/etc/vbox/networks.conf'")
    assert rows["memory"].status == doctor.OK  # the other checks still ran


def test_invoke_doctor_reports_a_broken_check_as_a_row(s, monkeypatch, capsys):
    import json

    from invoke import Config, Context, Exit

    from labkit.tasks.doctor import doctor as doctor_task

    monkeypatch.setattr(doctor, "Probe", UnreadableConf)
    monkeypatch.setattr(doctor, "CHECKS", [doctor.check_network, doctor.check_cpus])
    with pytest.raises(Exit):
        doctor_task(Context(Config(overrides={"labkit": {"root": str(s.root)}})), json=True)
    rows = json.loads(capsys.readouterr().out)["checks"]
    assert [(r["name"], r["status"]) for r in rows] == [("host-only network", "fail"), ("cpus", "ok")]


# --- vm.up's preflight --------------------------------------------------------------------------

class RunningVM:
    """What vm.up's preflight asks Vagrant: every node is running."""

    def status(self, node):
        return "running"


def test_preflight_turns_a_broken_check_into_one_line(s, monkeypatch):
    from labkit.errors import LabkitError
    from labkit.vm.actions.preflight import preflight

    class Stopped(RunningVM):
        def status(self, node):
            return "poweroff"

    monkeypatch.setattr(doctor, "Probe", UnreadableConf)
    with pytest.raises(LabkitError) as info:
        preflight(s, Stopped(), s.nodes)
    assert info.value.message.startswith("the host-only network check could not run: PermissionError")


def test_preflight_does_not_wait_for_checks_when_every_node_runs(s, monkeypatch):
    import threading
    import time

    from labkit.vm.actions.preflight import preflight

    released = threading.Event()

    def slow_check(settings, probe):  # like a powershell query on a busy Windows laptop
        released.wait(3)
        return doctor.Check("slow", doctor.OK, "done")

    monkeypatch.setattr(doctor, "CHECKS", [slow_check])
    started = time.monotonic()
    try:
        assert preflight(s, RunningVM(), s.nodes) == {"ubuntu": "running"}
        assert time.monotonic() - started < 1.5
    finally:
        released.set()
