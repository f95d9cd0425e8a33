"""Preflight: can this laptop run the lab? Each check is a `labkit.checks.Check` whose result is
pass / warn / fail (skip if the scheduler must) and, if not passed, the fix.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from labkit import checks, laptops, proc
from labkit.checks import FAIL, PASS, SKIP, WARN, Result
from labkit.laptops import shown
from labkit.settings import Settings

GIB = 1024 ** 3
BOX_GIB, VM_DISK_GIB = 1, 5  # the unpacked box in VAGRANT_HOME; each VM's disk in the machine folder
SNAPSHOT_FACTOR = 2  # below twice the need: a warning (snapshots grow the VM's disk)


def _ok(detail: str) -> Result:
    return checks.passed(detail)


def _warn(detail: str, fix: str = "") -> Result:
    return checks.warned(detail, fix=fix)


def _fail(detail: str, fix: str = "") -> Result:
    return checks.failed(detail, fix=fix)


def _run(cmd: list[str], timeout: float = 10) -> Optional[str]:
    """What a tool printed (stdout, then stderr), decoded whatever its bytes; None if it failed.
    VBoxManage runs in English (labkit.proc.english_env): doctor reads its words."""
    vbox = Path(cmd[0].replace("\\", "/")).name.lower().removesuffix(".exe") == "vboxmanage"
    out = proc.output(cmd, timeout=timeout, env=proc.english_env() if vbox else None)
    return out.stdout + out.stderr if out is not None and out.ok else None


class Probe:
    """What the checks need to know about the machine; tests pass a subclass describing another one."""

    system = platform.system()  # Linux | Darwin | Windows
    machine = platform.machine().lower()
    env = os.environ

    def which(self, name: str) -> Optional[str]:
        found = shutil.which(name)
        if found is None and self.system == "Windows" and name == "VBoxManage":
            found = windows_vboxmanage(self.env, self.is_file)
        return found

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def output(self, cmd: list[str]) -> Optional[str]:
        cache = self.__dict__.setdefault("_outputs", {})  # checks run in parallel and ask the same tools
        key = tuple(cmd)
        if key not in cache:
            cache[key] = _run(cmd)
        return cache[key]

    def registry_virtualbox_dir(self) -> Optional[str]:
        """Windows: where VirtualBox's installer says it put VirtualBox (HKLM\\SOFTWARE\\Oracle\\VirtualBox)."""
        if self.system != "Windows":
            return None
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Oracle\VirtualBox") as key:
                return str(winreg.QueryValueEx(key, "InstallDir")[0])
        except OSError:
            return None

    def kernel_release(self) -> str:
        return platform.release()

    def read_text(self, path: str) -> Optional[str]:
        """A file of this machine (/proc/modules, /etc/resolv.conf, a module parameter), None if unreadable."""
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    def vagrant_home(self) -> Path:
        return Path(self.env.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")

    def home(self) -> Path:
        return Path.home()

    def same_disk(self, a: Path, b: Path) -> bool:
        return _existing(a).stat().st_dev == _existing(b).stat().st_dev

    def memory_available(self) -> int:
        import psutil

        return psutil.virtual_memory().available

    def memory_total(self) -> int:
        import psutil

        return psutil.virtual_memory().total

    def cpus(self) -> int:
        return os.cpu_count() or 1

    def disk_free(self, path: Path) -> int:
        return shutil.disk_usage(_existing(path)).free

    def cpu_flags(self) -> Optional[set[str]]:
        """CPU feature flags, or None where the OS doesn't expose them to us."""
        if self.system == "Linux":
            try:
                text = Path("/proc/cpuinfo").read_text(errors="replace")
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
        return path.read_text(errors="replace") if self.system != "Windows" and path.exists() else None

    def host_addresses(self) -> set[str]:
        import psutil
        import socket

        return {a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET}


def _existing(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def windows_vboxmanage(env, is_file: Callable[[str], bool]) -> Optional[str]:
    """VBoxManage.exe found the way Vagrant finds it on Windows when it is not on PATH: the first of
    VBOX_INSTALL_PATH / VBOX_MSI_INSTALL_PATH (';'-separated folders), then the usual folders.
    Source: hashicorp/vagrant plugins/providers/virtualbox/driver/base.rb `initialize` (2.4.9)."""
    folders = (env.get("VBOX_INSTALL_PATH") or env.get("VBOX_MSI_INSTALL_PATH") or "").split(";")
    drive = env.get("SYSTEMDRIVE") or "C:"
    folders += [rf"{drive}\Program Files\Oracle\VirtualBox", rf"{drive}\Program Files (x86)\Oracle\VirtualBox"]
    if env.get("PROGRAMFILES"):
        folders.append(rf"{env['PROGRAMFILES']}\Oracle\VirtualBox")
    for folder in filter(None, (f.strip() for f in folders)):
        exe = folder.rstrip("\\") + r"\VBoxManage.exe"
        if is_file(exe):
            return exe
    return None


def _version(text: Optional[str]) -> Optional[tuple]:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


@dataclass(frozen=True)
class VBox:
    """What `VBoxManage --version` said: the version, and the kernel-module warning it prints before
    it on Linux (VirtualBox's VBox.sh; it still exits 0, so the warning is the only sign)."""

    version: Optional[tuple]
    module_missing_for: Optional[str] = None  # "kernel <release>" as the warning names it, or "this kernel"

    @staticmethod
    def parse(out: str) -> "VBox":
        # The version is the line that starts with it: the warning names the kernel (6.5.0-14-generic) first.
        line = next((ln for ln in out.splitlines() if re.match(r"\d+\.\d+\.\d+", ln.strip())), "")
        missing = None
        if re.search(r"vboxdrv kernel module is not loaded|kernel modules are not loaded|character device /dev/vboxdrv does not exist",
                     out, re.I):
            m = re.search(r"current kernel \(([^)]+)\)", out)
            missing = f"kernel {m.group(1)}" if m else "this kernel"
        return VBox(_version(line), missing)


def virtualbox(p: Probe) -> Optional[VBox]:
    """VirtualBox as installed here (None: no VBoxManage, or it does not run)."""
    exe = p.which("VBoxManage")
    out = p.output([exe, "--version"]) if exe else None
    return VBox.parse(out) if out is not None else None


def _vbox_version(p: Probe) -> Optional[tuple]:
    vb = virtualbox(p)
    return vb.version if vb else None


# --- the checks ----------------------------------------------------------------------------

def check_vagrant(s: Settings, p: Probe) -> Result:
    need = shown(laptops.MIN_VAGRANT)
    if not p.which("vagrant"):
        return _fail("Vagrant is not installed (no `vagrant` on PATH)",
                     f"install Vagrant {need}+ (USB stick or https://developer.hashicorp.com/vagrant/install), then open a new terminal")
    version = _version(p.output(["vagrant", "--version"]))
    if version is None:
        return _warn("vagrant is on PATH but `vagrant --version` failed", "reinstall Vagrant")
    if version < laptops.MIN_VAGRANT:
        return _fail(f"Vagrant {shown(version)} is too old", f"install Vagrant {need} or newer")
    return _ok(f"Vagrant {shown(version)}")


def _install_virtualbox(p: Probe) -> str:
    """Which VirtualBox to install: the newest line the installed Vagrant accepts."""
    vagrant = _version(p.output(["vagrant", "--version"])) if p.which("vagrant") else None
    fits = laptops.newest_virtualbox_for(vagrant) if vagrant else None
    which = f"{shown(fits)} (the newest Vagrant {shown(vagrant)} accepts)" if fits else shown(laptops.NEWEST_VIRTUALBOX)
    return f"install VirtualBox {which} from the USB stick or https://www.virtualbox.org" + \
        (", or set LABKIT_PROVIDER=libvirt" if p.system == "Linux" else "")


def check_provider(s: Settings, p: Probe) -> Result:
    if s.provider == "virtualbox":
        exe = p.which("VBoxManage")
        if not exe:
            registry = p.registry_virtualbox_dir()
            if registry and p.is_file(registry.rstrip("\\") + r"\VBoxManage.exe"):
                return _fail(f"VirtualBox is in {registry}, but neither PATH nor VBOX_MSI_INSTALL_PATH "
                             "leads there, so Vagrant cannot find it",
                             "sign out of Windows and in again (the installer sets VBOX_MSI_INSTALL_PATH), "
                             "or reinstall VirtualBox")
            return _fail("VirtualBox is not installed (no VBoxManage found)", _install_virtualbox(p))
        vb = virtualbox(p)
        if vb is None or (vb.version is None and vb.module_missing_for is None):
            return _fail("VBoxManage is installed but does not run", "reinstall VirtualBox")
        if vb.module_missing_for:
            return _fail(f"VirtualBox {shown(vb.version) if vb.version else ''} is installed, but its "
                         f"kernel module is not loaded for {vb.module_missing_for} (Secure Boot refuses the "
                         "unsigned vboxdrv, or it was never built for this kernel)".replace("VirtualBox  is", "VirtualBox is"),
                         laptops.KERNEL_MODULE_FIX["Linux"])
        if laptops.line(vb.version) < laptops.OLDEST_VIRTUALBOX:
            return _fail(f"VirtualBox {shown(vb.version)} is older than the lab supports "
                         f"({shown(laptops.OLDEST_VIRTUALBOX)} or newer)", _install_virtualbox(p))
        return _ok(f"VirtualBox {shown(vb.version)}")
    # libvirt
    if p.system != "Linux":
        return _fail("the libvirt provider works only on Linux", "set LABKIT_PROVIDER=virtualbox")
    plugins = p.output(["vagrant", "plugin", "list"]) or ""
    if "vagrant-libvirt" not in plugins:
        return _fail("the vagrant-libvirt plugin is not installed",
                     "install it: apt-get install vagrant-libvirt (or vagrant plugin install vagrant-libvirt)")
    if not p.which("rsync"):  # the bundle reaches a libvirt VM as an rsync synced folder
        return _fail("rsync is not installed (the libvirt provider copies the bundle into the VM with it)",
                     "install it: sudo apt-get install rsync")
    if p.output(["virsh", "-c", "qemu:///system", "version"]) is None:
        return _fail("libvirtd does not answer on qemu:///system",
                     "start it (sudo systemctl start libvirtd) and make sure you may use it (group libvirt)")
    return _ok("libvirt with vagrant-libvirt")


def check_pairing(s: Settings, p: Probe) -> Result:
    """Vagrant refuses a VirtualBox line its driver map does not list (laptops.VAGRANT_FOR_VIRTUALBOX)."""
    name = "vagrant + virtualbox"
    if s.provider != "virtualbox":
        return _ok(f"not used with {s.provider}")
    vagrant, vbox = _version(p.output(["vagrant", "--version"])), _vbox_version(p)
    if vagrant is None or vbox is None:
        return _ok("checked once both run (see vagrant and provider)")
    needed, fits = laptops.vagrant_needed(vbox), laptops.newest_virtualbox_for(vagrant)
    other = f"install VirtualBox {shown(fits)}" if fits else ""
    if needed is None:
        if laptops.line(vbox) < laptops.OLDEST_VIRTUALBOX:
            return _ok(f"VirtualBox {shown(vbox)}: see provider")
        return _fail(f"VirtualBox {shown(vbox)} is newer than any Vagrant known to support it "
                     f"(the newest pairing known is VirtualBox {shown(laptops.NEWEST_VIRTUALBOX)})",
                     (other + f" (the newest Vagrant {shown(vagrant)} accepts)") if fits else
                     f"install VirtualBox {shown(laptops.NEWEST_VIRTUALBOX)}")
    if _host_arch(s, p) == "arm64" and p.system == "Darwin" and laptops.line(vbox) < laptops.APPLE_SILICON_VIRTUALBOX:
        first = laptops.APPLE_SILICON_VIRTUALBOX
        return _fail(f"VirtualBox {shown(vbox)} cannot run the lab's arm64 guest on Apple Silicon (VirtualBox "
                     f"runs there from {shown(first)}, with Vagrant {shown(laptops.vagrant_needed(first))} or newer)",
                     f"install VirtualBox {shown(laptops.NEWEST_VIRTUALBOX)} (or {shown(first)}) and a Vagrant that accepts "
                     "it (the table in README, Which laptop)")
    if vagrant < needed:
        return _fail(f"Vagrant {shown(vagrant)} refuses VirtualBox {shown(vbox)} (it is supported from "
                     f"Vagrant {shown(needed)})", f"upgrade Vagrant to {shown(needed)} or newer" + (f", or {other}" if other else ""))
    # macOS with VirtualBox 7 also needs laptops.MACOS_VBOX7_VAGRANT (2.3.3) for host-only networks: the pairing asks as much
    return _ok(f"Vagrant {shown(vagrant)} supports VirtualBox {shown(laptops.line(vbox))}")


def check_kvm(s: Settings, p: Probe) -> Result:
    """Linux 6.12+: a loaded kvm_intel/kvm_amd holds VT-x; what to do depends on VirtualBox's version."""
    if s.provider != "virtualbox" or p.system != "Linux":
        return _ok("not a Linux host with VirtualBox")
    modules = p.read_text("/proc/modules") or ""  # what lsmod lists
    loaded = sorted({ln.split()[0] for ln in modules.splitlines() if ln.strip()} & {"kvm_intel", "kvm_amd"})
    if not loaded:
        return _ok("KVM is not loaded")
    module = loaded[0]
    m = re.match(r"(\d+)\.(\d+)", p.kernel_release())  # 6.12.9-amd64, 6.12-rc1, 6.14.0-24-generic
    kernel = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if kernel < laptops.KVM_TAKES_VT_KERNEL:
        return _ok(f"{module} is loaded; kernel {shown(kernel)} leaves VT-x free while no KVM VM runs")
    vbox = _vbox_version(p)
    at_load = (p.read_text("/sys/module/kvm/parameters/enable_virt_at_load") or "").strip()  # Y | N
    if vbox is not None and vbox >= laptops.VBOX_ASKS_KVM:
        if at_load == "N":
            return _fail(f"VirtualBox {shown(vbox)} asks KVM to turn VT-x on, but kvm is loaded with "
                         "enable_virt_at_load=0 (VMs fail with VERR_SVM_HOST_SVME_NOT_ENABLED)",
                         "remove 'options kvm enable_virt_at_load=0' from /etc/modprobe.d (grep -r enable_virt_at_load "
                         "/etc/modprobe.d), then reboot")
        return _ok(f"VirtualBox {shown(vbox)} shares VT-x with {module} (run no KVM VM at the same time)")
    if at_load == "N":
        return _ok(f"{module} is loaded with enable_virt_at_load=0: VT-x stays free for VirtualBox")
    code = "VERR_SVM_IN_USE" if module == "kvm_amd" else "VERR_VMX_IN_VMX_ROOT_MODE"
    return _fail(f"kernel {shown(kernel)} with {module} loaded: KVM holds VT-x, and VirtualBox "
                 f"{shown(vbox) if vbox else ''} cannot start a VM ({code})".replace("VirtualBox  cannot", "VirtualBox cannot"),
                 f"now: sudo modprobe -r {module} kvm; for good: echo 'options kvm enable_virt_at_load=0' | "
                 f"sudo tee {laptops.KVM_MODPROBE_FILE}")


def check_nat_dns(s: Settings, p: Probe) -> Result:
    """VirtualBox 7.2 on Linux passes a host's loopback resolver (127.0.0.53) to the VM as its DNS server."""
    name = "NAT DNS"
    vbox = _vbox_version(p) if s.provider == "virtualbox" and p.system == "Linux" else None
    if vbox is None or laptops.line(vbox) != laptops.NAT_DNS_LOOPBACK_VBOX:
        return _ok("not affected (VirtualBox 7.2 on a Linux host only)")
    servers = re.findall(r"^\s*nameserver\s+(\S+)", p.read_text("/etc/resolv.conf") or "", re.M)
    loopback = [ip for ip in servers if ip.startswith("127.")]
    if not loopback:
        return _ok(f"this laptop's resolver is not a loopback one ({', '.join(servers) or 'none listed'})")
    return _ok(f"VirtualBox {shown(vbox)} hands the VM {loopback[0]} as its DNS server (a NAT regression "
                 f"of 7.2 with a local resolver); provisioning uses VirtualBox's NAT resolver {laptops.NAT_RESOLVER} "
                 "instead and says so")


def check_memory(s: Settings, p: Probe) -> Result:
    count = len(s.nodes)
    need = s.memory * count * 1024 ** 2  # every node is a VM with vm.memory
    avail, total = p.memory_available(), p.memory_total()
    vms = f"the VM takes {s.memory} MB" if count == 1 else f"{count} VMs take {s.memory} MB each"
    detail = f"{avail / GIB:.1f} GiB free of {total / GIB:.1f} GiB; {vms}"
    if total < need + GIB:
        most = (total - GIB) // 1024 ** 2 // count  # MB per VM that leaves the laptop 1 GiB
        lower = f"lower vm.memory to at most {most} (LABKIT_VM__MEMORY={most})"
        return _fail(detail, _fewer_nodes_fix(s, (total - GIB) // 1024 ** 2)
                     or (lower if most >= s.data["limits"]["min_memory"]
                         else "this laptop is too small for the lab; use one with 4 GiB or more"))
    if avail < need + 512 * 1024 ** 2:
        return _warn(detail, "close browsers and other programs before vm.up")
    return _ok(detail)


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


def machine_folder(s: Settings, p: Probe) -> Path:
    """Where the VM's disks go: VirtualBox's "Default machine folder" (often on another drive), libvirt's pool."""
    if s.provider == "libvirt":
        return Path("/var/lib/libvirt/images")
    exe = p.which("VBoxManage")
    out = (p.output([exe, "list", "systemproperties"]) if exe else None) or ""
    m = re.search(r"^Default machine folder:\s*(.+?)\s*$", out, re.M)
    return Path(m.group(1)) if m else p.home() / "VirtualBox VMs"


def check_disk(s: Settings, p: Probe) -> Result:
    """Free space where things really go: the box into VAGRANT_HOME, each VM's disk into the machine folder."""
    places = [("the box", p.vagrant_home(), BOX_GIB), ("the VM disks", machine_folder(s, p), VM_DISK_GIB * len(s.nodes))]
    disks: list[list] = []  # [path, free GiB, need GiB, what]; places on one disk add up
    for what, path, need in places:
        same = next((d for d in disks if p.same_disk(d[0], path)), None)
        if same:
            same[2] += need
            same[3].append(f"{what} ({path})")
        else:
            disks.append([path, p.disk_free(path) / GIB, need, [f"{what} ({path})"]])
    detail = "; ".join(f"{free:.1f} GiB free for {' and '.join(whats)}" for _, free, _, whats in disks)
    short = [(free, need, whats) for _, free, need, whats in disks if free < need]
    if short:
        free, need, whats = short[0]
        return _fail(detail, f"free at least {need} GiB on the disk of {whats[0]} "
                     "(or move it: VAGRANT_HOME, or VirtualBox's default machine folder)")
    tight = [(need, whats) for _, free, need, whats in disks if free < need * SNAPSHOT_FACTOR]
    if tight:
        need, whats = tight[0]
        return _warn(detail, f"{need * SNAPSHOT_FACTOR} GiB free on the disk of {whats[0]} leaves room for snapshots")
    return _ok(detail)


def check_cpus(s: Settings, p: Probe) -> Result:
    have, count = p.cpus(), len(s.nodes)
    total = s.cpus * count
    detail = f"{have} logical CPUs; the VM takes {s.cpus}" if count == 1 else \
        f"{have} logical CPUs; {count} VMs take {s.cpus} each ({total})"
    if have < s.cpus:
        return _fail(detail, f"set LABKIT_VM__CPUS={max(2, have)} or use a bigger laptop (the lab needs 2)")
    if have <= total:
        fix = "the laptop will be sluggish while the VM is busy; close other programs"
        if count > 1:
            fix = "the VMs share the CPUs and kubeadm's timeouts may run out; use fewer workers (LABKIT_WORKERS)"
        return _warn(detail, fix)
    return _ok(detail)


def check_virtualization(s: Settings, p: Probe) -> Result:
    if s.provider == "libvirt":
        if s.data["vm"]["libvirt_driver"] == "qemu":
            return _ok("software emulation (libvirt driver qemu): slow but needs no VT-x")
        if not p.kvm_usable():
            return _fail("/dev/kvm is missing or not usable",
                         "enable VT-x/AMD-V in firmware, load kvm_intel/kvm_amd, or set LABKIT_VM__LIBVIRT_DRIVER=qemu (slow)")
        return _ok("/dev/kvm is usable")
    flags = p.cpu_flags()
    if flags is None:
        return _ok("not visible from here; VirtualBox reports it if VT-x/AMD-V is off")
    if flags & {"vmx", "svm"}:
        return _ok("the CPU offers VT-x/AMD-V")
    return _warn("the CPU does not show VT-x/AMD-V (off in firmware, or inside another VM)",
                 "enable Intel VT-x / AMD-V (SVM) in the BIOS/UEFI settings")


def check_hyperv(s: Settings, p: Probe) -> Result:
    """Hyper-V on (Windows 11 turns Memory integrity, which runs on it, on by default on new machines).
    VirtualBox 6+ then runs the VM on top of Hyper-V through the Windows Hypervisor Platform, slowly;
    Vagrant itself refused until 2.3.4 (laptops.VAGRANT_ALLOWS_HYPERV)."""
    if p.system != "Windows":
        return _ok("not Windows")
    running = p.hyperv_running()
    if running is None:
        return _warn("could not ask Windows whether Hyper-V is on",
                     "if the VM is very slow (a turtle in its window's status bar), turn Hyper-V off: " + laptops.HYPERV_OFF)
    if not running:
        return _ok("Hyper-V is off")
    what = "Hyper-V (or Memory integrity, WSL2, Virtual Machine Platform) is running"
    vagrant = _version(p.output(["vagrant", "--version"])) if p.which("vagrant") else None
    if s.provider == "virtualbox" and vagrant is not None and vagrant < laptops.VAGRANT_ALLOWS_HYPERV:
        need = shown(laptops.VAGRANT_ALLOWS_HYPERV)
        return _fail(f"{what}, and Vagrant {shown(vagrant)} refuses to start VirtualBox then (it does from {need})",
                     f"upgrade Vagrant to {need} or newer (VirtualBox then runs on top of Hyper-V, slowly), "
                     f"or turn Hyper-V off: {laptops.HYPERV_OFF}")
    return _warn(f"{what}: VirtualBox runs the VM on top of it (Windows Hypervisor Platform, a turtle in the VM "
                 "window's status bar), noticeably slower; vm.up and cluster.init take longer and their waits "
                 "may run out", "for full speed, turn Hyper-V off: " + laptops.HYPERV_OFF)


def check_vagrant_home(s: Settings, p: Probe) -> Result:
    """Vagrant on Windows fails on a VAGRANT_HOME (by default under the user folder) with letters outside
    ASCII (hashicorp/vagrant#11431: C:\\Users\\Łukasz\\.vagrant.d)."""
    home = p.vagrant_home()
    if p.system != "Windows" or str(home).isascii():
        return _ok(str(home))
    told = "VAGRANT_HOME" if p.env.get("VAGRANT_HOME") else "Vagrant's folder (VAGRANT_HOME, under your user folder)"
    return _warn(f"{told} is {home}, with letters outside ASCII: Vagrant on Windows fails on such paths",
                 r"setx VAGRANT_HOME C:\vagrant.d, then open a new terminal (boxes are added again there from the bundle)")


def _host_arch(s: Settings, p: Probe) -> Optional[str]:
    """The laptop's CPU as a guest architecture (settings limits.host_cpus); arm64 for an x86 Python under Rosetta."""
    return "arm64" if p.rosetta() else s.data["limits"]["host_cpus"].get(p.machine)


def check_architecture(s: Settings, p: Probe) -> Result:
    """The guest's architecture (settings arch) must be one this laptop's hypervisor runs: VirtualBox and KVM run
    guests of the host's own architecture only. Apple Silicon gets the arm64 guest (docs/apple-silicon.md)."""
    host = _host_arch(s, p)
    here = f"{p.machine or 'unknown'} ({p.system})"
    if host is None:
        return _fail(f"{here}: the lab has guests for x86-64 and arm64 laptops only",
                     "use an Intel/AMD or an Apple Silicon laptop")
    if p.rosetta() and s.arch == "amd64":
        return _fail("this Python runs under Rosetta on Apple Silicon, so labkit took the Mac for an x86-64 "
                     "laptop and chose the amd64 guest, which VirtualBox there cannot run",
                     "use a native arm64 Python (python.org's installer, or Homebrew's in /opt/homebrew), or set "
                     "LABKIT_ARCH=arm64")
    if host == "arm64" and s.arch == "amd64":
        return _fail(f"{here} with settings arch amd64: VirtualBox and KVM on ARM run arm64 guests only",
                     "set arch: auto (remove LABKIT_ARCH, or arch: from settings.local.yaml)")
    if host == "amd64" and s.arch == "arm64":
        if s.provider == "virtualbox":
            return _fail(f"{here} with settings arch arm64: VirtualBox on x86-64 runs x86-64 guests only",
                         "set arch: auto (remove LABKIT_ARCH, or arch: from settings.local.yaml)")
        return _warn(f"{here} running the arm64 guest ({s.box}) under QEMU's emulation: several times "
                     "slower than a native guest; meant for testing the Apple Silicon path",
                     "for the lab itself set arch: auto")
    if s.arch == "arm64":
        where = "Apple Silicon" if p.system == "Darwin" else here
        return _warn(f"{where}: the lab runs its arm64 guest ({s.box}, Ubuntu 20.04 with the lab's versions); "
                     "built and tested under emulation, not yet confirmed on real hardware",
                     "after invoke vm.up, run invoke acceptance and hand its report to the instructor")
    return _ok(f"{here}, {s.arch} guest")


def check_network(s: Settings, p: Probe) -> Result:
    ips = [n.ip for n in s.nodes]
    taken = set(ips) & p.host_addresses()
    if taken:
        return _fail(f"{', '.join(sorted(taken))} is already an address of this laptop",
                     "pick another node IP (LABKIT_NODES__0__IP=192.168.56.20)")
    conf = p.vbox_networks_conf() if _networks_conf_applies(s, p) else None
    if conf is not None:
        allowed = []
        for text in re.findall(r"[\d.]+/\d+", conf):
            try:
                allowed.append(ipaddress.ip_network(text, strict=False))
            except ValueError:  # a typo such as 192.168.300.0/24
                return _fail(f"/etc/vbox/networks.conf has '{text}', which is not an address range",
                             f"correct that line, like '* {s.data['limits']['hostonly_range']}'")
        for ip in ips:
            if not any(ipaddress.ip_address(ip) in net for net in allowed):
                return _fail(f"/etc/vbox/networks.conf does not allow {ip}",
                             f"add a line '* {s.data['limits']['hostonly_range']}' to /etc/vbox/networks.conf")
    return _ok(", ".join(f"{n.name} {n.ip}" for n in s.nodes))


def _networks_conf_applies(s: Settings, p: Probe) -> bool:
    """VirtualBox reads /etc/vbox/networks.conf on Linux, and on macOS only before 7 (7 has host-only
    networks there, which the file does not restrict)."""
    if s.provider != "virtualbox" or p.system not in ("Linux", "Darwin"):
        return False
    return p.system == "Linux" or (_vbox_version(p) or (0,)) < (7,)


def check_bundle(s: Settings, p: Probe) -> Result:
    from labkit.bundle import lock as lockmod

    try:
        lock = lockmod.load(s.lock_file)
    except Exception as exc:  # a broken lock is reported, not raised, in a report
        return _fail(f"cannot read {s.lock_file.name}: {getattr(exc, 'message', exc)}",
                     "restore it: git checkout -- " + s.lock_file.name)
    drift = lockmod.version_drift(s.versions, lock)
    if drift:  # an override the bundle has no files for (docs/design.md, "Versions: which, and the bytes")
        return _fail(f"settings ask for versions {s.lock_file.name} does not carry: {'; '.join(drift)}",
                     "drop the LABKIT_VERSIONS__* override or the versions: lines of settings.local.yaml; to move "
                     "a version, change the lock's entries too and run invoke bundle.lock online")
    needed = lock.needed(s.provider, s.arch)  # other providers' boxes, other architectures' artifacts: not needed here
    missing = [a.name for a in needed if not a.present(s.bundle_dir)]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return _fail(f"{len(missing)} of {len(needed)} artifacts missing in {s.bundle_dir}: {shown}",
                     "copy the bundle from the USB stick there, or run invoke bundle.fetch (or --from http://<instructor>:8787)")
    from labkit.bundle.status import provenance_summary

    return _ok(f"{len(needed)} artifacts present in {s.bundle_dir} (invoke bundle.verify checks hashes); "
                 f"pins: {provenance_summary(lock, needed)}")


def check_box(s: Settings, p: Probe) -> Result:
    from labkit import vagrant

    if vagrant.box_installed(s.box, s.provider):
        return _ok(f"{s.box} ({s.provider}) is installed")
    from labkit.bundle import lock as lockmod

    try:
        art = lockmod.load(s.lock_file).box_for(s.box, s.provider)
    except Exception:
        art = None
    if art is not None and art.present(s.bundle_dir):
        from labkit.bundle import hashing  # checked like any artifact: a damaged copy is not "ok"

        problem = hashing.problem(art, s.bundle_dir)
        if problem is None:
            return _ok(f"{s.box} ({s.provider}) will be added from the bundle (hash checked)")
        return _fail(f"the box file {art.path} in the bundle is {problem}",
                     f"invoke bundle.fetch --only {art.name} (or copy it again from the USB stick)")
    return _fail(f"the box {s.box} for {s.provider} is neither installed nor in the bundle",
                 "run invoke bundle.fetch (or copy the bundle from the USB stick)")


CHECKS: list[Callable[[Settings, Probe], Result]] = [
    check_architecture, check_vagrant, check_vagrant_home, check_provider, check_pairing, check_virtualization,
    check_kvm, check_hyperv, check_cpus, check_memory, check_disk, check_network, check_nat_dns, check_box,
    check_bundle,
]
TITLES = {"check_hyperv": "hyper-v", "check_network": "host-only network", "check_pairing": "vagrant + virtualbox",
          "check_nat_dns": "NAT DNS", "check_vagrant_home": "vagrant home"}  # the rest: the name after check_
TIMEOUT = 30.0  # seconds; a tool that hangs (powershell on a busy laptop) becomes its own row
TIMEOUTS = {"check_box": 600.0, "check_bundle": 120.0}  # hashing a box file or statting the bundle on a USB stick
WORKERS = 8  # most checks wait on a tool; the same tool is asked once (Probe.output caches)


def check_id(fn: Callable) -> str:
    return fn.__name__.removeprefix("check_").replace("_", "-")


def plan(settings: Settings, probe: Probe, only: Optional[list] = None) -> list[checks.Check]:
    """doctor's checks as `labkit.checks.Check`s on one Probe."""
    return [checks.Check(check_id(fn), TITLES.get(fn.__name__, check_id(fn)),
                         lambda timeout, fn=fn: fn(settings, probe), timeout=TIMEOUTS.get(fn.__name__, TIMEOUT))
            for fn in (CHECKS if only is None else only)]


def broken(check: checks.Check, error: str) -> Result:
    """A check that raised or overran (an unreadable file, a tool saying something new): its FAIL row, not a traceback."""
    return _fail(f"the {check.title} check could not run: {error}", "fix what the message names, then run invoke doctor again")


def run_check(check: checks.Check) -> checks.Checked:
    """One check alone, in the caller's thread (vm.up's preflight runs each in a daemon thread that nothing
    joins, so a re-run on a running VM never waits for them; checks.run's pool would be joined at exit)."""
    import time

    started = time.monotonic()
    try:
        result = check.run(check.timeout)
    except Exception as exc:
        result = broken(check, f"{type(exc).__name__}: {exc}")
    return checks.Checked(check, result, time.monotonic() - started)


def run(settings: Settings, probe: Probe | None = None, on_result=None) -> list[checks.Checked]:
    return checks.run(plan(settings, probe or Probe()), on_result=on_result, workers=WORKERS, unexpected=broken)


def as_json(results: list[checks.Checked]) -> dict:
    """`invoke doctor --json`: the one check shape (labkit-checks/1, kind doctor), with this laptop's name and the time."""
    import datetime

    return checks.as_json(results, kind="doctor", host=platform.node(),
                          time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
