"""Preflight: can this laptop run the lab? Each check gives ok / warn / fail and, if not ok, the fix.

`invoke doctor` prints them all; `invoke vm.up` runs them first and stops on any fail, so a laptop
without VirtualBox gets one sentence instead of a Vagrant traceback. Checks read the machine through
`Probe`, so tests can describe another laptop (Windows, Apple Silicon) without pretending to be one.
"""
from __future__ import annotations

import ipaddress
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from labkit.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_VAGRANT = (2, 2, 0)
GIB = 1024 ** 3
DISK_FAIL_GIB, DISK_WARN_GIB = 6, 12  # box + VM disk + images; a full disk corrupts the VM


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _run(cmd: list[str], timeout: float = 10) -> Optional[str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout + out.stderr if out.returncode == 0 else None


class Probe:
    """What the checks need to know about the machine; tests pass a subclass describing another one."""

    system = platform.system()  # Linux | Darwin | Windows
    machine = platform.machine().lower()

    def which(self, name: str) -> Optional[str]:
        found = shutil.which(name)
        if found is None and self.system == "Windows" and name == "VBoxManage":
            default = Path(os.environ.get("ProgramFiles", r"C:\Program Files")) / "Oracle" / "VirtualBox" / "VBoxManage.exe"
            found = str(default) if default.exists() else None
        return found

    def output(self, cmd: list[str]) -> Optional[str]:
        return _run(cmd)

    def memory_available(self) -> int:
        import psutil

        return psutil.virtual_memory().available

    def memory_total(self) -> int:
        import psutil

        return psutil.virtual_memory().total

    def cpus(self) -> int:
        return os.cpu_count() or 1

    def disk_free(self, path: Path) -> int:
        while not path.exists():
            path = path.parent
        return shutil.disk_usage(path).free

    def cpu_flags(self) -> Optional[set[str]]:
        """CPU feature flags, or None where the OS doesn't expose them to us."""
        if self.system == "Linux":
            try:
                text = Path("/proc/cpuinfo").read_text()
            except OSError:
                return None
            m = re.search(r"^flags\s*:(.*)$", text, re.M)
            return set(m.group(1).split()) if m else None
        if self.system == "Darwin":
            out = self.output(["sysctl", "-n", "machdep.cpu.features"])
            return {f.lower() for f in out.split()} if out else None
        return None

    def kvm_usable(self) -> bool:
        return os.access("/dev/kvm", os.R_OK | os.W_OK)

    def rosetta(self) -> bool:
        """True for an x86 Python running translated on Apple Silicon."""
        return self.system == "Darwin" and (self.output(["sysctl", "-n", "sysctl.proc_translated"]) or "").strip() == "1"

    def hyperv_running(self) -> Optional[bool]:
        if self.system != "Windows":
            return False
        out = self.output(["powershell", "-NoProfile", "-Command",
                           "(Get-CimInstance Win32_ComputerSystem).HypervisorPresent"])
        return None if out is None else out.strip().lower() == "true"

    def vbox_networks_conf(self) -> Optional[str]:
        path = Path("/etc/vbox/networks.conf")
        return path.read_text() if self.system != "Windows" and path.exists() else None

    def host_addresses(self) -> set[str]:
        import psutil
        import socket

        return {a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET}


def _version(text: Optional[str]) -> Optional[tuple]:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


# --- the checks ----------------------------------------------------------------------------

def check_vagrant(s: Settings, p: Probe) -> Check:
    if not p.which("vagrant"):
        return Check("vagrant", FAIL, "Vagrant is not installed (no `vagrant` on PATH)",
                     "install Vagrant 2.2+ (USB stick or https://developer.hashicorp.com/vagrant/install), then open a new terminal")
    version = _version(p.output(["vagrant", "--version"]))
    if version is None:
        return Check("vagrant", WARN, "vagrant is on PATH but `vagrant --version` failed", "reinstall Vagrant")
    shown = ".".join(map(str, version))
    if version < MIN_VAGRANT:
        return Check("vagrant", FAIL, f"Vagrant {shown} is too old", "install Vagrant 2.2 or newer")
    return Check("vagrant", OK, f"Vagrant {shown}")


def check_provider(s: Settings, p: Probe) -> Check:
    if s.provider == "virtualbox":
        exe = p.which("VBoxManage")
        if not exe:
            return Check("provider", FAIL, "VirtualBox is not installed (no VBoxManage found)",
                         "install VirtualBox 6.1 or 7.0 from the USB stick or https://www.virtualbox.org"
                         + (", or set LABKIT_PROVIDER=libvirt" if p.system == "Linux" else ""))
        version = _version(p.output([exe, "--version"]))
        if version is None:
            return Check("provider", FAIL, "VBoxManage is installed but does not run (kernel module not loaded?)",
                         "reinstall VirtualBox, or on Linux run: sudo /sbin/vboxconfig")
        return Check("provider", OK, f"VirtualBox {'.'.join(map(str, version))}")
    # libvirt
    if p.system != "Linux":
        return Check("provider", FAIL, "the libvirt provider works only on Linux", "set LABKIT_PROVIDER=virtualbox")
    plugins = p.output(["vagrant", "plugin", "list"]) or ""
    if "vagrant-libvirt" not in plugins:
        return Check("provider", FAIL, "the vagrant-libvirt plugin is not installed",
                     "install it: apt-get install vagrant-libvirt (or vagrant plugin install vagrant-libvirt)")
    if not p.which("rsync"):  # the bundle reaches a libvirt VM as an rsync synced folder
        return Check("provider", FAIL, "rsync is not installed (the libvirt provider copies the bundle into the VM with it)",
                     "install it: sudo apt-get install rsync")
    if p.output(["virsh", "-c", "qemu:///system", "version"]) is None:
        return Check("provider", FAIL, "libvirtd does not answer on qemu:///system",
                     "start it (sudo systemctl start libvirtd) and make sure you may use it (group libvirt)")
    return Check("provider", OK, "libvirt with vagrant-libvirt")


def check_memory(s: Settings, p: Probe) -> Check:
    count = len(s.nodes)
    need = s.memory * count * 1024 ** 2  # every node is a VM with vm.memory
    avail, total = p.memory_available(), p.memory_total()
    vms = f"the VM takes {s.memory} MB" if count == 1 else f"{count} VMs take {s.memory} MB each"
    detail = f"{avail / GIB:.1f} GiB free of {total / GIB:.1f} GiB; {vms}"
    if total < need + GIB:
        return Check("memory", FAIL, detail, _fewer_nodes_fix(s, (total - GIB) // 1024 ** 2)
                     or "this laptop is too small for the lab; use one with 4 GiB or more")
    if avail < need + 512 * 1024 ** 2:
        return Check("memory", WARN, detail, "close browsers and other programs before vm.up")
    return Check("memory", OK, detail)


def _fewer_nodes_fix(s: Settings, room_mb: int) -> str:
    """With workers, what fits in `room_mb`: fewer workers, or less memory for each node."""
    if not s.workers:
        return ""
    fits = room_mb // s.memory - (len(s.nodes) - len(s.workers))
    each = room_mb // len(s.nodes)
    options = [f"use at most {fits} worker(s) (LABKIT_WORKERS, or the nodes list)"] if fits >= 0 else []
    if each >= s.data["limits"]["min_memory"]:
        options.append(f"give each node less memory (LABKIT_VM__MEMORY={each})")
    return " or ".join(options)


def check_disk(s: Settings, p: Probe) -> Check:
    free = p.disk_free(s.root) / GIB
    detail = f"{free:.1f} GiB free next to the project"
    if free < DISK_FAIL_GIB:
        return Check("disk", FAIL, detail, f"free at least {DISK_FAIL_GIB} GiB (the VM disk grows to about 5 GiB)")
    if free < DISK_WARN_GIB:
        return Check("disk", WARN, detail, f"{DISK_WARN_GIB} GiB free leaves room for snapshots")
    return Check("disk", OK, detail)


def check_cpus(s: Settings, p: Probe) -> Check:
    have, count = p.cpus(), len(s.nodes)
    total = s.cpus * count
    detail = f"{have} logical CPUs; the VM takes {s.cpus}" if count == 1 else \
        f"{have} logical CPUs; {count} VMs take {s.cpus} each ({total})"
    if have < s.cpus:
        return Check("cpus", FAIL, detail, f"set LABKIT_VM__CPUS={max(2, have)} or use a bigger laptop (the lab needs 2)")
    if have <= total:
        fix = "the laptop will be sluggish while the VM is busy; close other programs"
        if count > 1:
            fix = "the VMs share the CPUs and kubeadm's timeouts may run out; use fewer workers (LABKIT_WORKERS)"
        return Check("cpus", WARN, detail, fix)
    return Check("cpus", OK, detail)


def check_virtualization(s: Settings, p: Probe) -> Check:
    if s.provider == "libvirt":
        if s.data["vm"]["libvirt_driver"] == "qemu":
            return Check("virtualization", OK, "software emulation (libvirt driver qemu): slow but needs no VT-x")
        if not p.kvm_usable():
            return Check("virtualization", FAIL, "/dev/kvm is missing or not usable",
                         "enable VT-x/AMD-V in firmware, load kvm_intel/kvm_amd, or set LABKIT_VM__LIBVIRT_DRIVER=qemu (slow)")
        return Check("virtualization", OK, "/dev/kvm is usable")
    flags = p.cpu_flags()
    if flags is None:
        return Check("virtualization", OK, "not visible from here; VirtualBox reports it if VT-x/AMD-V is off")
    if flags & {"vmx", "svm"}:
        return Check("virtualization", OK, "the CPU offers VT-x/AMD-V")
    return Check("virtualization", WARN, "the CPU does not show VT-x/AMD-V (off in firmware, or inside another VM)",
                 "enable Intel VT-x / AMD-V (SVM) in the BIOS/UEFI settings")


def check_hyperv(s: Settings, p: Probe) -> Check:
    if p.system != "Windows":
        return Check("hyper-v", OK, "not Windows")
    running = p.hyperv_running()
    if running is None:
        return Check("hyper-v", WARN, "could not ask Windows whether Hyper-V is on",
                     "if the VM is very slow, turn Hyper-V/WSL2 off (see README)")
    if running:
        return Check("hyper-v", WARN, "Hyper-V (or WSL2/Device Guard) is running: VirtualBox becomes very slow or fails (VERR_NEM)",
                     "as administrator: bcdedit /set hypervisorlaunchtype off, turn off 'Virtual Machine Platform', reboot")
    return Check("hyper-v", OK, "Hyper-V is off")


def check_architecture(s: Settings, p: Probe) -> Check:
    if p.machine in ("arm64", "aarch64") or p.rosetta():
        return Check("architecture", FAIL, "this is an ARM (Apple Silicon) machine: the lab's Ubuntu 16.04 box and Kubernetes 1.15 are x86-64 only",
                     "use an Intel/AMD laptop (or a lab machine provided by the instructor)")
    return Check("architecture", OK, f"{p.machine or 'unknown'} ({p.system})")


def check_network(s: Settings, p: Probe) -> Check:
    ips = [n.ip for n in s.nodes]
    taken = set(ips) & p.host_addresses()
    if taken:
        return Check("host-only network", FAIL, f"{', '.join(sorted(taken))} is already an address of this laptop",
                     "pick another node IP (LABKIT_NODES__0__IP=192.168.56.20)")
    conf = p.vbox_networks_conf() if s.provider == "virtualbox" else None
    if conf is not None:
        allowed = []
        for text in re.findall(r"[\d.]+/\d+", conf):
            try:
                allowed.append(ipaddress.ip_network(text, strict=False))
            except ValueError:  # a typo such as 192.168.300.0/24
                return Check("host-only network", FAIL, f"/etc/vbox/networks.conf has '{text}', which is not an address range",
                             f"correct that line, like '* {s.data['limits']['hostonly_range']}'")
        for ip in ips:
            if not any(ipaddress.ip_address(ip) in net for net in allowed):
                return Check("host-only network", FAIL, f"/etc/vbox/networks.conf does not allow {ip}",
                             f"add a line '* {s.data['limits']['hostonly_range']}' to /etc/vbox/networks.conf")
    return Check("host-only network", OK, ", ".join(f"{n.name} {n.ip}" for n in s.nodes))


def check_bundle(s: Settings, p: Probe) -> Check:
    from labkit.bundle import lock as lockmod

    try:
        lock = lockmod.load(s.lock_file)
    except Exception as exc:  # a broken lock is reported, not raised, in a report
        return Check("bundle", FAIL, f"cannot read {s.lock_file.name}: {getattr(exc, 'message', exc)}",
                     "restore it: git checkout -- " + s.lock_file.name)
    needed = lock.needed(s.provider)  # other providers' box files are not needed here
    missing = [a.name for a in needed if not a.present(s.bundle_dir)]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return Check("bundle", FAIL, f"{len(missing)} of {len(needed)} artifacts missing in {s.bundle_dir}: {shown}",
                     "copy the bundle from the USB stick there, or run invoke bundle.fetch (or --from http://<instructor>:8787)")
    from labkit.bundle.status import provenance_summary

    return Check("bundle", OK, f"{len(needed)} artifacts present in {s.bundle_dir} (invoke bundle.verify checks hashes); "
                 f"pins: {provenance_summary(needed)}")


def check_box(s: Settings, p: Probe) -> Check:
    from labkit import vagrant

    if vagrant.box_installed(s.box, s.provider):
        return Check("box", OK, f"{s.box} ({s.provider}) is installed")
    from labkit.bundle import lock as lockmod

    try:
        art = lockmod.load(s.lock_file).box_for(s.box, s.provider)
    except Exception:
        art = None
    if art is not None and art.present(s.bundle_dir):
        return Check("box", OK, f"{s.box} ({s.provider}) will be added from the bundle")
    return Check("box", FAIL, f"the box {s.box} for {s.provider} is neither installed nor in the bundle",
                 "run invoke bundle.fetch (or copy the bundle from the USB stick)")


CHECKS: list[Callable[[Settings, Probe], Check]] = [
    check_architecture, check_vagrant, check_provider, check_virtualization, check_hyperv,
    check_cpus, check_memory, check_disk, check_network, check_box, check_bundle,
]


ROW_NAMES = {"check_hyperv": "hyper-v", "check_network": "host-only network"}  # the rest match


def run_check(check: Callable[[Settings, Probe], Check], settings: Settings, probe: Probe) -> Check:
    """One check; if it breaks (an unreadable file, a tool saying something new), that is its FAIL row, not a traceback."""
    try:
        return check(settings, probe)
    except Exception as exc:
        name = ROW_NAMES.get(check.__name__, check.__name__.replace("check_", "", 1))
        return Check(name, FAIL, f"the {name} check could not run: {type(exc).__name__}: {exc}",
                     "fix what the message names, then run invoke doctor again")


def run(settings: Settings, probe: Probe | None = None) -> list[Check]:
    probe = probe or Probe()
    return [run_check(check, settings, probe) for check in CHECKS]
