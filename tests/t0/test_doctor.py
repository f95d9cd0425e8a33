"""T0: doctor's decisions for laptops other than this one, described through a Probe (nothing is faked
about this machine: each test builds the facts of the laptop it is about)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit import doctor, laptops, settings
from tests.support.env import REPO
from tests.support.laptop import GIB, Laptop, check, s  # noqa: F401 (s: a fixture)


def test_a_good_laptop_passes_the_machine_checks(s):
    for fn in (doctor.check_architecture, doctor.check_vagrant, doctor.check_provider, doctor.check_pairing,
               doctor.check_virtualization, doctor.check_kvm, doctor.check_hyperv, doctor.check_cpus,
               doctor.check_memory, doctor.check_disk, doctor.check_network, doctor.check_nat_dns):
        result = check(fn, s)
        assert result.status == doctor.PASS, result


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


@pytest.fixture
def mac(s):
    """The settings as labkit resolves them on an Apple Silicon Mac (platform.machine() == "arm64")."""
    return settings.load(s.root, {}, host_cpu="arm64")


def test_an_apple_silicon_mac_gets_the_arm64_guest_and_one_line_saying_it_is_unconfirmed(mac):
    assert mac.arch == "arm64" and mac.box == "cloud-image/ubuntu-20.04"
    r = check(doctor.check_architecture, mac, system="Darwin", machine="arm64")
    assert r.status == doctor.WARN  # not refused; not claimed either
    assert r.detail == ("Apple Silicon: the lab runs its arm64 guest (cloud-image/ubuntu-20.04, Ubuntu 20.04 with the "
                        "lab's versions); built and tested under emulation, not yet confirmed on real hardware")
    assert "invoke acceptance" in r.fix


def test_rosetta_or_an_amd64_guest_on_arm_is_refused_with_the_fix(s, mac):
    rosetta = check(doctor.check_architecture, s, system="Darwin", machine="x86_64", rosetta=True)
    assert rosetta.status == doctor.FAIL and "Rosetta" in rosetta.detail and "LABKIT_ARCH=arm64" in rosetta.fix
    # the same Python told the truth (LABKIT_ARCH=arm64): the guest fits the Mac
    told = settings.load(s.root, {"LABKIT_ARCH": "arm64"})
    assert check(doctor.check_architecture, told, system="Darwin", machine="x86_64", rosetta=True).status == doctor.WARN
    forced = check(doctor.check_architecture, s, system="Darwin", machine="arm64")
    assert forced.status == doctor.FAIL and "arm64 guests only" in forced.detail and "arch: auto" in forced.fix
    odd = check(doctor.check_architecture, s, system="Linux", machine="riscv64")
    assert odd.status == doctor.FAIL and "x86-64 and arm64" in odd.detail


def test_an_arm64_guest_on_x86_is_emulation_with_libvirt_and_impossible_with_virtualbox(s):
    arm_vbox = settings.load(s.root, {"LABKIT_ARCH": "arm64"})
    arm_libvirt = settings.load(s.root, {"LABKIT_ARCH": "arm64", "LABKIT_PROVIDER": "libvirt"})
    assert check(doctor.check_architecture, arm_vbox).status == doctor.FAIL
    emulated = check(doctor.check_architecture, arm_libvirt)
    assert emulated.status == doctor.WARN and "emulation" in emulated.detail


@pytest.mark.parametrize("vbox, vagrant, status, words", [
    ("7.0.8r156879", "Vagrant 2.4.1", doctor.FAIL, "cannot run the lab's arm64 guest on Apple Silicon"),
    ("7.1.4r165100", "Vagrant 2.4.1", doctor.FAIL, "refuses VirtualBox 7.1.4"),
    ("7.1.4r165100", "Vagrant 2.4.2", doctor.PASS, "supports VirtualBox 7.1"),
    ("7.2.4r170995", "Vagrant 2.4.9", doctor.PASS, "supports VirtualBox 7.2"),
])
def test_apple_silicon_pairs_virtualbox_7_1_or_newer_with_vagrant_2_4_2_or_newer(mac, vbox, vagrant, status, words):
    r = check(doctor.check_pairing, mac, system="Darwin", machine="arm64",
              outputs={"vagrant": vagrant, "VBoxManage": vbox})
    assert r.status == status and words in r.detail, r
    if status == doctor.FAIL and "Apple Silicon" in r.detail:
        assert "Vagrant 2.4.2" in r.detail and "install VirtualBox 7.2" in r.fix


def test_an_apple_silicon_mac_checks_memory_like_any_laptop(mac):
    assert check(doctor.check_memory, mac, system="Darwin", machine="arm64", total=8 * GIB, available=6 * GIB
                 ).status == doctor.PASS
    assert check(doctor.check_memory, mac, system="Darwin", machine="arm64", total=2 * GIB, available=1 * GIB
                 ).status == doctor.FAIL


WINDOWS = dict(system="Windows", tools={"vagrant": "vagrant.exe", "VBoxManage": r"C:\Program Files\Oracle\VirtualBox\VBoxManage.exe"})


def test_hyperv_fails_only_where_this_vagrant_still_refuses_virtualbox_with_it(s):
    # Windows 11 with Memory integrity on (Hyper-V present), Vagrant 2.3.4: check_virtualbox.rb refuses
    old = check(doctor.check_hyperv, s, hyperv=True, outputs={"vagrant": "Vagrant 2.3.4", "VBoxManage": "7.0.14r161095"},
                **WINDOWS)
    assert old.status == doctor.FAIL and "Vagrant 2.3.4 refuses to start VirtualBox then (it does from 2.3.5)" in old.detail
    assert old.fix.startswith("upgrade Vagrant to 2.3.5 or newer") and "bcdedit /set hypervisorlaunchtype off" in old.fix
    # the same laptop with Vagrant 2.4.1: VirtualBox runs on top of Hyper-V, slowly; a warning with the cost and the way off
    new = check(doctor.check_hyperv, s, hyperv=True, outputs={"vagrant": "Vagrant 2.4.1", "VBoxManage": "7.0.14r161095"},
                **WINDOWS)
    assert new.status == doctor.WARN and "slower" in new.detail and "Memory integrity" in new.detail
    assert new.fix == "for full speed, turn Hyper-V off: " + laptops.HYPERV_OFF
    assert "Memory integrity" in laptops.HYPERV_OFF
    # 2.3.5 exactly is the first that lets it run
    assert check(doctor.check_hyperv, s, hyperv=True, outputs={"vagrant": "Vagrant 2.3.5"}, **WINDOWS).status == doctor.WARN
    assert check(doctor.check_hyperv, s, hyperv=None, **WINDOWS).status == doctor.WARN  # Windows would not say
    assert check(doctor.check_hyperv, s, hyperv=False, **WINDOWS).status == doctor.PASS


@pytest.mark.parametrize("home, env, status", [
    (r"C:\Users\Łukasz\.vagrant.d", {}, doctor.WARN),                       # the default, under a non-ASCII user folder
    (r"D:\Студент\vagrant.d", {"VAGRANT_HOME": r"D:\Студент\vagrant.d"}, doctor.WARN),  # set, but not ASCII either
    (r"C:\vagrant.d", {"VAGRANT_HOME": r"C:\vagrant.d"}, doctor.PASS),      # the fix applied
])
def test_a_vagrant_home_outside_ascii_warns_with_the_setx_fix(s, home, env, status):
    class Home(Laptop):
        def vagrant_home(self):
            return Path(home)

    r = doctor.check_vagrant_home(s, Home(system="Windows", env=env))
    assert r.status == status
    if status == doctor.WARN:
        assert home in r.detail and r.fix.startswith(r"setx VAGRANT_HOME C:\vagrant.d")
        assert ("VAGRANT_HOME is" in r.detail) == bool(env)


def test_a_non_ascii_home_is_fine_off_windows(s):
    class Home(Laptop):
        def vagrant_home(self):
            return Path("/home/łukasz/.vagrant.d")

    assert doctor.check_vagrant_home(s, Home(system="Linux")).status == doctor.PASS


@pytest.mark.parametrize("total, available, status", [
    (2 * GIB, 1 * GIB, doctor.FAIL),  # the VM alone needs 2 GiB
    (8 * GIB, 2 * GIB, doctor.WARN),  # fits, but only after closing the browser
    (8 * GIB, 6 * GIB, doctor.PASS),
])
def test_memory(s, total, available, status):
    assert check(doctor.check_memory, s, total=total, available=available).status == status


@pytest.mark.parametrize("cpus, status", [(1, doctor.FAIL), (2, doctor.WARN), (8, doctor.PASS)])
def test_cpus(s, cpus, status):
    assert check(doctor.check_cpus, s, cpus=cpus).status == status


def with_workers(s, count, memory=2048):
    return settings.load(s.root, {"LABKIT_WORKERS": str(count), "LABKIT_VM__MEMORY": str(memory)})


def test_memory_adds_up_every_node(s):
    # 8 GiB holds one 2 GiB VM easily, but not a master and three workers (8 GiB + 1 GiB for the host)
    assert check(doctor.check_memory, s, total=8 * GIB, available=7 * GIB).status == doctor.PASS
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


@pytest.mark.parametrize("cpus, status", [(2, doctor.WARN), (4, doctor.WARN), (8, doctor.PASS)])
def test_cpus_add_up_every_node(s, cpus, status):
    got = check(doctor.check_cpus, with_workers(s, 1), cpus=cpus)
    assert got.status == status
    assert "2 VMs take 2 each (4)" in got.detail


@pytest.mark.parametrize("free, status", [(3 * GIB, doctor.FAIL), (8 * GIB, doctor.WARN), (50 * GIB, doctor.PASS)])
def test_disk(s, free, status):
    assert check(doctor.check_disk, s, free_disk=free).status == status


def test_virtualization_flags(s):
    assert check(doctor.check_virtualization, s, flags=frozenset()).status == doctor.WARN
    assert check(doctor.check_virtualization, s, flags=frozenset({"svm"})).status == doctor.PASS
    assert check(doctor.check_virtualization, s, flags=None).status == doctor.PASS  # Windows: VirtualBox will say


def test_libvirt_needs_kvm_unless_software_emulation(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    kvm = settings.load(tmp_path, {"LABKIT_PROVIDER": "libvirt"})
    tcg = settings.load(tmp_path, {"LABKIT_PROVIDER": "libvirt", "LABKIT_VM__LIBVIRT_DRIVER": "qemu"})
    assert doctor.check_virtualization(kvm, Laptop(kvm=False)).status == doctor.FAIL
    assert "LABKIT_VM__LIBVIRT_DRIVER=qemu" in doctor.check_virtualization(kvm, Laptop(kvm=False)).fix
    assert doctor.check_virtualization(tcg, Laptop(kvm=False)).status == doctor.PASS


def test_node_ip_already_on_the_laptop(s):
    r = check(doctor.check_network, s, addresses={"127.0.0.1", "192.168.56.10"})
    assert r.status == doctor.FAIL and "192.168.56.10 is already an address of this laptop" in r.detail


def test_vbox_networks_conf_that_excludes_the_node(s):
    r = check(doctor.check_network, s, networks_conf="* 10.0.0.0/8\n")
    assert r.status == doctor.FAIL and "/etc/vbox/networks.conf" in r.fix
    assert check(doctor.check_network, s, networks_conf="* 192.168.56.0/21\n").status == doctor.PASS


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
    assert doctor.check_bundle(s, Laptop()).status == doctor.PASS  # the libvirt box is not needed for VirtualBox


def test_a_version_override_the_lock_does_not_carry_fails_the_bundle_row(s):
    shutil.copy(REPO / "bundle.lock.yaml", s.root)
    # the committed pair agrees: the row goes on to count the (here absent) artifacts
    assert "artifacts missing" in doctor.check_bundle(s, Laptop()).detail
    r = doctor.check_bundle(settings.load(s.root, {"LABKIT_VERSIONS__KUBERNETES": "v1.15.11"}), Laptop())
    assert r.status == doctor.FAIL
    assert "kubernetes v1.15.11 (the lock has v1.15.12)" in r.detail and "LABKIT_VERSIONS__" in r.fix


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
    assert doctor.check_provider(s, Laptop(**LIBVIRT_HOST)).status == doctor.PASS
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
    rows = {r.check.title: r.result for r in doctor.run(s, UnreadableConf())}
    r = rows["host-only network"]
    assert r.status == doctor.FAIL and r.fix
    assert r.detail == ("the host-only network check could not run: PermissionError: [Errno 13] Permission denied: "
                        "'/etc/vbox/networks.conf'")
    assert rows["memory"].status == doctor.PASS  # the other checks still ran


def test_invoke_doctor_reports_a_broken_check_as_a_row(s, monkeypatch, capsys):
    import json

    from invoke import Config, Context, Exit

    from labkit.tasks.doctor import doctor as doctor_task

    monkeypatch.setattr(doctor, "Probe", UnreadableConf)
    monkeypatch.setattr(doctor, "CHECKS", [doctor.check_network, doctor.check_cpus])
    with pytest.raises(Exit):
        doctor_task(Context(Config(overrides={"labkit": {"root": str(s.root)}})), json=True)
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "labkit-checks/1" and report["kind"] == "doctor" and report["host"]
    assert [(r["id"], r["title"], r["status"]) for r in report["checks"]] == [
        ("network", "host-only network", "fail"), ("cpus", "cpus", "pass")]
    assert report["summary"]["fail"] == 1 and report["summary"]["ok"] is False


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
        return doctor.checks.passed("done")

    monkeypatch.setattr(doctor, "CHECKS", [slow_check])
    started = time.monotonic()
    try:
        assert preflight(s, RunningVM(), s.nodes) == {"ubuntu": "running"}
        assert time.monotonic() - started < 1.5
    finally:
        released.set()
