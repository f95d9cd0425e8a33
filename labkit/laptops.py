"""What is known about the classroom's laptops, in one place.

Which Vagrant knows which VirtualBox, where Linux kernels and VirtualBox releases change the rules,
and each system's traps: the words Vagrant or VirtualBox print, the cause, the fix. `labkit.doctor`
decides from these facts, `labkit.vagrant.explain` maps Vagrant's failures with TRAPS, and README's
"which laptop" tables are generated from here (`python -m labkit.laptops`; a T0 test keeps README in
sync). None of it can run on the development machine, so every fact names its source and version.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

Version = tuple

# VirtualBox line -> the first Vagrant whose VirtualBox driver accepts it. Vagrant refuses any other
# ("not supported by this version of Vagrant"). Source: hashicorp/vagrant CHANGELOG.md (read at
# 2.4.10.dev, commit 35f3160) and the driver_map of plugins/providers/virtualbox/driver/meta.rb at
# the tags v2.2.2..v2.4.9. CHANGELOG puts VirtualBox 7.1 in 2.4.2 (not 2.4.3), and meta.rb at v2.4.2
# agrees.
VAGRANT_FOR_VIRTUALBOX: dict[Version, tuple[Version, str]] = {
    (6, 1): ((2, 2, 7), "Vagrant 2.2.7 CHANGELOG: VirtualBox provider support for 6.1.x [GH-11250]"),
    # 2.3.2 added 7.0, but VirtualBox 7 ships translations and Vagrant runs VBoxManage in English
    # only from 2.3.3 (PR GH-12994, fixing GH-12968: 2.3.2 fails on a localized VirtualBox 7.0).
    (7, 0): ((2, 3, 3), "Vagrant 2.3.2 CHANGELOG: Add support for VirtualBox 7.0 [GH-12947]; 2.3.3 runs VBoxManage "
                        "with LANG=C [GH-12994], which a non-English host needs"),
    (7, 1): ((2, 4, 2), "Vagrant 2.4.2 CHANGELOG: Add support for VirtualBox 7.1 [GH-13513]"),
    (7, 2): ((2, 4, 9), "Vagrant 2.4.9 CHANGELOG: Add support for VirtualBox 7.2 [GH-13709]"),
}
OLDEST_VIRTUALBOX = min(VAGRANT_FOR_VIRTUALBOX)  # the box and provisioning are written for 6.1 and 7.x
NEWEST_VIRTUALBOX = max(VAGRANT_FOR_VIRTUALBOX)  # newer lines: no released Vagrant knows them yet
MIN_VAGRANT = VAGRANT_FOR_VIRTUALBOX[OLDEST_VIRTUALBOX][0]

# Apple Silicon: VirtualBox runs there from 7.1 (arm64 guests only; 7.0.x had a developer preview, the
# last 7.0.8 beta: hashicorp/vagrant#13504; cmsi/MateriAppsLive#330 "VirtualBox 7.1.0 supports Apple
# Silicon"), so with the table above Vagrant 2.4.2+. The arm64 guest: docs/apple-silicon.md.
APPLE_SILICON_VIRTUALBOX = (7, 1)

# macOS + VirtualBox 7 has no host-only adapters, only host-only networks; Vagrant uses them from
# 2.3.3 (CHANGELOG 2.3.3: Fix `:private_network` support for VirtualBox 7 on macOS [GH-12983]).
# /etc/vbox/networks.conf does not apply to those networks.
MACOS_VBOX7_VAGRANT = (2, 3, 3)

# Windows with Hyper-V on (Memory integrity, on by default on new Windows 11 machines, runs on it):
# VirtualBox 6+ runs on top of it through the Windows Hypervisor Platform, slowly. Vagrant refused to
# start VirtualBox while Hyper-V was on up to 2.3.4 (plugins/providers/virtualbox/action/
# check_virtualbox.rb, error hyperv_virtualbox_error) and no longer from 2.3.5 (CHANGELOG 2.3.5:
# "Remove check for hyperv being enabled when verifying virtualbox is usable on windows [GH-13090]").
VAGRANT_ALLOWS_HYPERV = (2, 3, 5)

# Linux 6.12: KVM turns VT-x/AMD-V on when its module loads (module parameter enable_virt_at_load,
# default 1; reports: NixOS/nixpkgs#363887, VirtualBox/virtualbox#141). VirtualBox before 7.2.10 then
# cannot start a VM (VERR_VMX_IN_VMX_ROOT_MODE / VERR_SVM_IN_USE); from 7.2.10 it asks KVM to turn it
# on instead and fails when enable_virt_at_load=0 (VERR_SVM_HOST_SVME_NOT_ENABLED; VirtualBox/
# virtualbox#711, #713; void-linux/void-packages#61332 drops its enable_virt_at_load=0 file for 7.2.10).
KVM_TAKES_VT_KERNEL = (6, 12)
VBOX_ASKS_KVM = (7, 2, 10)
KVM_MODPROBE_FILE = "/etc/modprobe.d/labkit-kvm.conf"

# VirtualBox 7.2's NAT on a Linux host whose resolver is systemd-resolved hands the guest 127.0.0.53
# as its DNS server instead of 10.0.2.3 (VirtualBox/virtualbox#205 on 7.2.0, #447 on 7.2.4).
# provision/base.sh then falls back to VirtualBox's own NAT resolver.
NAT_DNS_LOOPBACK_VBOX = (7, 2)
NAT_RESOLVER = "10.0.2.3"
HOST_STUB_RESOLVER = "127.0.0.53"


def _hostonly_range() -> str:
    """VirtualBox's default host-only range, defined once: settings.yaml `limits.hostonly_range`."""
    import yaml

    text = (Path(__file__).resolve().parents[1] / "settings.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["limits"]["hostonly_range"]


HOSTONLY_RANGE = _hostonly_range()


def line(version: Version) -> Version:
    """7.2.4 -> (7, 2): the VirtualBox line Vagrant's driver map is keyed by."""
    return tuple(version[:2])


def shown(version: Version) -> str:
    return ".".join(map(str, version))


def vagrant_needed(virtualbox: Version) -> Optional[Version]:
    """The oldest Vagrant that accepts this VirtualBox, or None if no known Vagrant does."""
    entry = VAGRANT_FOR_VIRTUALBOX.get(line(virtualbox))
    return entry[0] if entry else None


def newest_virtualbox_for(vagrant: Version) -> Optional[Version]:
    """The newest VirtualBox line this Vagrant accepts (None: older than every supported pairing)."""
    known = [vb for vb, (needed, _) in VAGRANT_FOR_VIRTUALBOX.items() if vagrant >= needed]
    return max(known) if known else None


# --- traps: what Vagrant/VirtualBox print -> cause -> fix per system --------------------------------

SYSTEMS = {"Linux": "Linux", "Darwin": "macOS (Intel)", "Windows": "Windows"}


@dataclass(frozen=True)
class Trap:
    needle: str                # regular expression over Vagrant's output ("" = doctor finds it first)
    problem: str
    fixes: dict                # system (platform.system()) or "*" -> the fix
    source: str

    def fix_for(self, system: str) -> Optional[str]:
        return self.fixes.get(system, self.fixes.get("*"))

    def matches(self, output: str, system: str) -> bool:
        return bool(self.needle) and self.fix_for(system) is not None and re.search(self.needle, output) is not None


HYPERV_OFF = ("as administrator: bcdedit /set hypervisorlaunchtype off, turn off 'Virtual Machine Platform', "
              "'Windows Hypervisor Platform' and Memory integrity, then reboot")
KERNEL_MODULE_FIX = {
    "Linux": "run sudo /sbin/vboxconfig; if Secure Boot is on, enrol the module signing key it names "
             "(mokutil --import, then reboot) or turn Secure Boot off",
    "Darwin": "VirtualBox 6.1: allow Oracle's kernel extension in System Settings > Privacy & Security and reboot; "
              f"VirtualBox 7: upgrade Vagrant to {shown(MACOS_VBOX7_VAGRANT)} or newer (invoke doctor says which)",
    "Windows": "reinstall VirtualBox as administrator, then reboot",
}

# Order matters: the first trap whose needle matches (and that has a fix for this system) wins.
TRAPS = [
    Trap(r"kernel module is not loaded|vboxdrv kernel module|failed to open /dev/vboxnetctl|installation is incomplete",
         "VirtualBox's kernel driver is not loaded", KERNEL_MODULE_FIX,
         "Vagrant en.yml virtualbox_kernel_module_not_loaded / virtualbox_install_incomplete, raised by driver/meta.rb read_version and "
         "driver/base.rb (/dev/vboxnetctl); the warning comes from VirtualBox's VBox.sh"),
    Trap(r"not supported by this version of Vagrant",
         "this Vagrant does not know this VirtualBox version",
         {"*": "run invoke doctor: it names the Vagrant (or VirtualBox) version to install"},
         "Vagrant en.yml virtualbox_invalid_version; driver/meta.rb driver_map"),
    Trap(r"Host-only adapters are no longer supported",
         "this Vagrant cannot make host-only networks on VirtualBox 7",
         {"Darwin": f"upgrade Vagrant to {shown(MACOS_VBOX7_VAGRANT)} or newer"},
         "Vagrant 2.3.3 CHANGELOG [GH-12983]"),
    Trap(r"not within the\s+allowed ranges|/etc/vbox/networks\.conf",
         "VirtualBox refused the host-only address (outside /etc/vbox/networks.conf)",
         {system: f"keep the node IPs in {HOSTONLY_RANGE}, or add a line '* {HOSTONLY_RANGE}' to /etc/vbox/networks.conf"
          for system in ("Linux", "Darwin")},
         "Vagrant en.yml virtualbox_invalid_host_subnet (2.2.19, GH-12564); VirtualBox manual, host-only networking"),
    Trap(r"Failed to create the host-only (adapter|network)",
         "VirtualBox could not create the host-only adapter",
         {"Windows": "reinstall VirtualBox as administrator with its 'Host-Only Networking' feature, reboot, then invoke vm.up",
          "Linux": "run sudo /sbin/vboxconfig (it loads vboxnetadp), then invoke vm.up"},
         "VBoxManage hostonlyif create, as Vagrant's driver quotes it"),
    Trap(r"VERR_VMX_IN_VMX_ROOT_MODE|VERR_SVM_IN_USE",
         "KVM holds VT-x/AMD-V (Linux 6.12+ takes it when kvm_intel/kvm_amd loads)",
         {"Linux": "unload KVM: sudo modprobe -r kvm_intel kvm_amd kvm (invoke doctor names the lasting fix for your VirtualBox)"},
         "NixOS/nixpkgs#363887, VirtualBox/virtualbox#141"),
    Trap(r"VERR_SVM_HOST_SVME_NOT_ENABLED",
         "VirtualBox 7.2.10+ asks KVM to turn AMD-V on, and KVM was told not to (enable_virt_at_load=0)",
         {"Linux": "remove 'options kvm enable_virt_at_load=0' from /etc/modprobe.d, then reboot"},
         "VirtualBox/virtualbox#711, #713 (7.2.10)"),
    Trap(r"VT-x is disabled in the BIOS|AMD-V is disabled in the BIOS|VERR_VMX_MSR_ALL_VMX_DISABLED|VERR_SVM_DISABLED",
         "hardware virtualization is turned off in the firmware",
         {"Windows": "enable Intel VT-x / AMD-V (SVM) in the BIOS/UEFI settings; if it is on there, Hyper-V hides it: " + HYPERV_OFF,
          "*": "enable Intel VT-x / AMD-V (SVM) in the BIOS/UEFI settings"},
         "VirtualBox error texts VERR_VMX_MSR_ALL_VMX_DISABLED / VERR_SVM_DISABLED"),
    Trap(r"Hyper-V and VirtualBox cannot be used together",
         "this Vagrant refuses VirtualBox while Hyper-V (or WSL2/Memory integrity) is on",
         {"Windows": f"upgrade Vagrant to {shown(VAGRANT_ALLOWS_HYPERV)} or newer (VirtualBox then runs on top of "
                     f"Hyper-V, slowly), or turn Hyper-V off: {HYPERV_OFF}"},
         "Vagrant 2.0.3..2.3.4 en.yml hyperv_virtualbox_error (GH-9456, removed in 2.3.5 by GH-13090)"),
    Trap(r"VERR_NEM",
         "Hyper-V (or WSL2/Memory integrity) owns the CPU's virtualization",
         {"Windows": HYPERV_OFF, "*": "turn off the other hypervisor, then run it again"},
         "VirtualBox NEM error codes (VERR_NEM_*)"),
    Trap(r"VT-x is not available|AMD-V is not available|VERR_VMX_NO_VMX|VERR_SVM_NO_SVM",
         "the CPU offers no VT-x/AMD-V here (off in firmware, or this is itself a VM)",
         {"*": "enable VT-x/AMD-V in the firmware (BIOS/UEFI) settings, or use a physical laptop"},
         "VirtualBox error texts VERR_VMX_NO_VMX / VERR_SVM_NO_SVM"),
]

# What doctor finds before Vagrant runs (no message of Vagrant's to match): the README rows for them.
DOCTOR_ONLY = [
    ("Linux", "Secure Boot: `VBoxManage --version` prints the vboxdrv warning (and exits 0)", KERNEL_MODULE_FIX["Linux"]),
    ("Linux", f"kernel {shown(KVM_TAKES_VT_KERNEL)}+ with kvm_intel/kvm_amd loaded",
     f"VirtualBox before {shown(VBOX_ASKS_KVM)}: sudo modprobe -r kvm_intel kvm_amd kvm, and 'options kvm "
     f"enable_virt_at_load=0' in {KVM_MODPROBE_FILE}; {shown(VBOX_ASKS_KVM)}+: no enable_virt_at_load=0 anywhere"),
    ("Linux", f"VirtualBox {shown(NAT_DNS_LOOPBACK_VBOX)} NAT hands out {HOST_STUB_RESOLVER} as DNS",
     f"none: provisioning uses VirtualBox's NAT resolver {NAT_RESOLVER} and says so"),
    ("Windows", f"Hyper-V on (Memory integrity: on by default on new Windows 11 machines) with Vagrant {shown(VAGRANT_ALLOWS_HYPERV)}+",
     "a warning: VirtualBox runs the VM on top of Hyper-V, slower; for full speed: " + HYPERV_OFF),
    ("Windows", "VAGRANT_HOME (by default under the user folder) with letters outside ASCII (hashicorp/vagrant#11431)",
     r"setx VAGRANT_HOME C:\vagrant.d, then open a new terminal"),
    ("Windows", "VirtualBox in a custom folder", "found like Vagrant finds it: VBOX_MSI_INSTALL_PATH / VBOX_INSTALL_PATH, then the registry"),
]


def readme_tables() -> str:
    """README's "which laptop" section body, generated (never edit it by hand in README)."""
    out = ["| VirtualBox | oldest Vagrant that accepts it | source |", "|---|---|---|"]
    for vb, (vagrant, source) in sorted(VAGRANT_FOR_VIRTUALBOX.items()):
        out.append(f"| {shown(vb)}.x | {shown(vagrant)} | {source} |")
    out += ["", "| system | trap | fix (doctor or the failing command says it) |", "|---|---|---|"]
    rows = [(system, problem, fix) for system, problem, fix in DOCTOR_ONLY]
    for trap in TRAPS:
        for system, fix in trap.fixes.items():
            rows.append((system, trap.problem, fix))
    order = {name: i for i, name in enumerate(["*", *SYSTEMS])}
    for system, problem, fix in sorted(rows, key=lambda r: order[r[0]]):
        out.append(f"| {SYSTEMS.get(system, 'any')} | {problem} | {fix} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(readme_tables(), end="")
