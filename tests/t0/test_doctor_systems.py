"""T0: doctor on the three laptop systems, each described by what its tools really print (sources next
to each sample): VirtualBox's kernel-module warning, /proc/modules with KVM, Windows install paths,
Vagrant and VirtualBox versions, VirtualBox's system properties, a host resolver."""
from __future__ import annotations

import pytest

from labkit import doctor, laptops
from tests.support.laptop import GIB, Laptop, check, s  # noqa: F401 (s: a fixture)

# VirtualBox's VBox.sh (the VBoxManage wrapper on Linux) prints this before the version and exits 0;
# the text as quoted by minikube and Vagrant users (5.2.x; the script is unchanged in 7.x).
VBOXDRV_WARNING = """WARNING: The vboxdrv kernel module is not loaded. Either there is no module
         available for the current kernel (6.5.0-14-generic) or it failed to
         load. Please recompile the kernel module and install it by

           sudo /sbin/vboxconfig

         You will not be able to start VMs until this problem is fixed.
7.0.14r161095
"""

# /proc/modules (what lsmod prints as a table) on an Intel laptop with KVM loaded.
PROC_MODULES_KVM_INTEL = """kvm_intel 487424 0 - Live 0x0000000000000000
kvm 1404928 1 kvm_intel, Live 0x0000000000000000
irqbypass 12288 1 kvm, Live 0x0000000000000000
ext4 1003520 1 - Live 0x0000000000000000
"""
PROC_MODULES_KVM_AMD = PROC_MODULES_KVM_INTEL.replace("kvm_intel", "kvm_amd")


def versions(vagrant, vbox):
    return {"vagrant": f"Vagrant {vagrant}", "VBoxManage": f"{vbox}\n"}


# --- Secure Boot / kernel module -------------------------------------------------------------------

def test_the_vboxdrv_warning_is_a_failure_not_the_kernels_version(s):
    r = check(doctor.check_provider, s, outputs={"vagrant": "Vagrant 2.4.1", "VBoxManage": VBOXDRV_WARNING})
    assert r.status == doctor.FAIL
    assert r.detail.startswith("VirtualBox 7.0.14 is installed, but its kernel module is not loaded for kernel 6.5.0-14-generic")
    assert "sudo /sbin/vboxconfig" in r.fix and "Secure Boot" in r.fix and "mokutil" in r.fix
    assert "6.5.0" not in check(doctor.check_pairing, s, outputs={"vagrant": "Vagrant 2.4.1", "VBoxManage": VBOXDRV_WARNING}).detail


# VBox.sh's other warning, when the module loaded but its device node is missing (Vagrant maps it to
# virtualbox_install_incomplete).
VBOXDRV_NO_DEVICE = """WARNING: The character device /dev/vboxdrv does not exist.
	 Please install the virtualbox-dkms package and the appropriate
	 headers, most likely linux-headers-generic.

	 You will not be able to start VMs until this problem is fixed.
6.1.50r161033
"""


def test_a_missing_vboxdrv_device_is_the_same_failure(s):
    r = check(doctor.check_provider, s, outputs={"vagrant": "Vagrant 2.4.1", "VBoxManage": VBOXDRV_NO_DEVICE})
    assert r.status == doctor.FAIL and "kernel module is not loaded for this kernel" in r.detail
    assert r.detail.startswith("VirtualBox 6.1.50 is installed")


def test_virtualbox_older_than_the_lab_supports(s):
    r = check(doctor.check_provider, s, outputs=versions("2.4.1", "6.0.24r139119"))
    assert r.status == doctor.FAIL and "older than the lab supports (6.1 or newer)" in r.detail
    assert r.fix.startswith("install VirtualBox 7.0 (the newest Vagrant 2.4.1 accepts)")
    missing = check(doctor.check_provider, s, tools={"vagrant": "/usr/bin/vagrant"}, outputs=versions("2.4.9", ""))
    assert missing.fix.startswith("install VirtualBox 7.2 (the newest Vagrant 2.4.9 accepts) from the USB stick")


# --- Vagrant <-> VirtualBox ------------------------------------------------------------------------

@pytest.mark.parametrize("vagrant, vbox, status, fix", [
    ("2.4.1", "7.0.14r161095", doctor.PASS, ""),
    ("2.4.9", "7.2.4r170995", doctor.PASS, ""),
    ("2.2.19", "6.1.50r161033", doctor.PASS, ""),
    ("2.4.1", "7.1.6r167084", doctor.FAIL, "upgrade Vagrant to 2.4.2 or newer, or install VirtualBox 7.0"),
    ("2.4.8", "7.2.0r170228", doctor.FAIL, "upgrade Vagrant to 2.4.9 or newer, or install VirtualBox 7.1"),
    ("2.3.1", "7.0.2r154219", doctor.FAIL, "upgrade Vagrant to 2.3.3 or newer, or install VirtualBox 6.1"),
    # 2.3.2 knows 7.0 but runs VBoxManage in the user's language (VirtualBox 7 is translated)
    ("2.3.2", "7.0.2r154219", doctor.FAIL, "upgrade Vagrant to 2.3.3 or newer, or install VirtualBox 6.1"),
    ("2.2.5", "6.1.50r161033", doctor.FAIL, "upgrade Vagrant to 2.2.7 or newer"),
    ("2.4.9", "7.3.0r171234", doctor.FAIL, "install VirtualBox 7.2 (the newest Vagrant 2.4.9 accepts)"),
])
def test_vagrant_and_virtualbox_pairing(s, vagrant, vbox, status, fix):
    r = check(doctor.check_pairing, s, outputs=versions(vagrant, vbox))
    assert (r.status, r.fix) == (status, fix), r


def test_the_pairing_names_what_refuses_what(s):
    r = check(doctor.check_pairing, s, outputs=versions("2.4.8", "7.2.0r170228"))
    assert r.detail == "Vagrant 2.4.8 refuses VirtualBox 7.2.0 (it is supported from Vagrant 2.4.9)"


def test_macos_with_virtualbox_7_needs_vagrant_2_3_3_for_host_only_networks(s):
    # the 2.3.3 VirtualBox 7.0 needs everywhere (its language) is also what macOS needs (host-only networks)
    for system in ("Darwin", "Linux", "Windows"):
        r = check(doctor.check_pairing, s, system=system, outputs=versions("2.3.2", "7.0.2r154219"), flags=None)
        assert r.status == doctor.FAIL and r.fix.startswith("upgrade Vagrant to 2.3.3 or newer")
        assert check(doctor.check_pairing, s, system=system, outputs=versions("2.3.3", "7.0.2r154219")).status == doctor.PASS


def test_every_known_pairing_is_accepted_and_the_one_before_refused(s):
    for vb, (vagrant, _source) in laptops.VAGRANT_FOR_VIRTUALBOX.items():
        ok = check(doctor.check_pairing, s, outputs=versions(laptops.shown(vagrant), laptops.shown(vb) + ".0r1"))
        assert ok.status == doctor.PASS, ok
        older = (vagrant[0], vagrant[1], vagrant[2] - 1) if vagrant[2] else (vagrant[0], vagrant[1] - 1, 99)
        refused = check(doctor.check_pairing, s, outputs=versions(laptops.shown(older), laptops.shown(vb) + ".0r1"))
        assert refused.status == doctor.FAIL, refused


# --- KVM on Linux 6.12+ -----------------------------------------------------------------------------

def kvm_laptop(kernel, vbox, modules=PROC_MODULES_KVM_INTEL, at_load="Y"):
    return dict(kernel=kernel, modules=modules, outputs=versions("2.4.9", vbox), params={"kvm.enable_virt_at_load": at_load})


def test_kvm_on_kernel_6_12_blocks_virtualbox_before_7_2_10(s):
    r = check(doctor.check_kvm, s, **kvm_laptop("6.12.9-amd64", "7.1.6r167084"))
    assert r.status == doctor.FAIL and "VERR_VMX_IN_VMX_ROOT_MODE" in r.detail and "kvm_intel loaded" in r.detail
    assert r.fix == ("now: sudo modprobe -r kvm_intel kvm; for good: echo 'options kvm enable_virt_at_load=0' | "
                     "sudo tee /etc/modprobe.d/labkit-kvm.conf")
    amd = check(doctor.check_kvm, s, **kvm_laptop("6.14.0-24-generic", "7.2.0r170228", PROC_MODULES_KVM_AMD))
    assert amd.status == doctor.FAIL and "VERR_SVM_IN_USE" in amd.detail and "modprobe -r kvm_amd kvm" in amd.fix


def test_kvm_on_a_two_part_kernel_release(s):
    assert check(doctor.check_kvm, s, **kvm_laptop("6.12-rc1", "7.0.20r163906")).status == doctor.FAIL


def test_kvm_with_virt_at_load_off_leaves_older_virtualbox_alone(s):
    r = check(doctor.check_kvm, s, **kvm_laptop("6.12.9-amd64", "7.1.6r167084", at_load="N"))
    assert r.status == doctor.PASS


def test_virtualbox_7_2_10_needs_kvm_to_turn_vt_on(s):
    assert check(doctor.check_kvm, s, **kvm_laptop("6.17.0-35-generic", "7.2.10r173000")).status == doctor.PASS
    r = check(doctor.check_kvm, s, **kvm_laptop("6.17.0-35-generic", "7.2.10r173000", PROC_MODULES_KVM_AMD, at_load="N"))
    assert r.status == doctor.FAIL and "enable_virt_at_load=0" in r.detail
    assert r.fix.startswith("remove 'options kvm enable_virt_at_load=0' from /etc/modprobe.d")


def test_kvm_on_older_kernels_and_without_kvm_is_fine(s):
    assert check(doctor.check_kvm, s, **kvm_laptop("6.8.0-45-generic", "7.0.14r161095")).status == doctor.PASS
    assert check(doctor.check_kvm, s, kernel="6.12.9-amd64").status == doctor.PASS  # no kvm module loaded
    assert check(doctor.check_kvm, s, system="Windows", **{k: v for k, v in kvm_laptop("6.12", "7.0.1r1").items()
                                                         if k != "kernel"}).status == doctor.PASS


# --- Windows: VirtualBox in a custom folder ---------------------------------------------------------

def test_windows_finds_virtualbox_through_the_installers_variable(s):
    exe = r"D:\Apps\VirtualBox\VBoxManage.exe"
    laptop = Laptop(system="Windows", flags=None, tools={"vagrant": r"C:\HashiCorp\Vagrant\bin\vagrant.exe"},
                    env={"VBOX_MSI_INSTALL_PATH": "D:\\Apps\\VirtualBox\\", "SYSTEMDRIVE": "C:"}, files={exe},
                    outputs={"vagrant": "Vagrant 2.4.1", "VBoxManage": "7.0.14r161095"})
    assert laptop.which("VBoxManage") == exe
    assert doctor.check_provider(s, laptop).status == doctor.PASS


def test_windows_install_path_variable_may_list_several_folders(s):
    exe = r"E:\VB\VBoxManage.exe"
    env = {"VBOX_INSTALL_PATH": r"C:\gone;E:\VB"}
    assert doctor.windows_vboxmanage(env, {exe}.__contains__) == exe
    default = r"C:\Program Files\Oracle\VirtualBox\VBoxManage.exe"
    assert doctor.windows_vboxmanage({}, {default}.__contains__) == default  # the installer's default folder
    assert doctor.windows_vboxmanage({}, set().__contains__) is None


def test_windows_virtualbox_known_only_to_the_registry_says_to_sign_in_again(s):
    r = check(doctor.check_provider, s, system="Windows", flags=None, tools={"vagrant": "vagrant.exe"},
              registry="D:\\Apps\\VirtualBox\\", files={r"D:\Apps\VirtualBox\VBoxManage.exe"})
    assert r.status == doctor.FAIL and r.detail.startswith(r"VirtualBox is in D:\Apps\VirtualBox\, but")
    assert "sign out of Windows and in again" in r.fix


# --- host-only networks ----------------------------------------------------------------------------

def test_networks_conf_is_not_applied_on_macos_with_virtualbox_7(s):
    narrow = "* 10.0.0.0/8\n"
    assert check(doctor.check_network, s, system="Darwin", networks_conf=narrow).status == doctor.PASS  # 7.0.14
    old = check(doctor.check_network, s, system="Darwin", networks_conf=narrow, outputs=versions("2.4.1", "6.1.50r161033"))
    assert old.status == doctor.FAIL and "/etc/vbox/networks.conf" in old.fix
    assert check(doctor.check_network, s, system="Linux", networks_conf=narrow).status == doctor.FAIL


# --- VirtualBox 7.2's NAT DNS ----------------------------------------------------------------------

SYSTEMD_RESOLVED = """# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
nameserver 127.0.0.53
options edns0 trust-ad
search .
"""


def test_virtualbox_7_2_with_a_local_resolver_is_named_with_the_fallback(s):
    r = check(doctor.check_nat_dns, s, outputs=versions("2.4.9", "7.2.4r170995"), resolv_conf=SYSTEMD_RESOLVED)
    assert r.status == doctor.PASS and "127.0.0.53" in r.detail and "10.0.2.3" in r.detail
    plain = check(doctor.check_nat_dns, s, outputs=versions("2.4.9", "7.2.4r170995"))
    assert "127.0.0.53" not in plain.detail
    older = check(doctor.check_nat_dns, s, outputs=versions("2.4.9", "7.1.6r167084"), resolv_conf=SYSTEMD_RESOLVED)
    assert older.detail.startswith("not affected")


# --- disk space where the box and the VM really go --------------------------------------------------

SYSTEMPROPERTIES = """API version:                     7_0
Minimum guest RAM size:          4 Megabytes
Maximum guest RAM size:          2097152 Megabytes
Default machine folder:          D:\\VMs
Raw-mode Supported:              no
Exclusive HW virtualization use: on
Default hard disk format:        VDI
"""


def test_disk_space_is_checked_where_the_vm_disk_goes(s):
    outputs = {"vagrant": "Vagrant 2.4.1", "VBoxManage": "7.0.14r161095", "VBoxManage list systemproperties": SYSTEMPROPERTIES}
    disks = {"/": ("C:", 80 * GIB), "D:\\VMs": ("D:", 3 * GIB)}
    r = check(doctor.check_disk, s, outputs=outputs, disks=disks)
    assert r.status == doctor.FAIL
    assert r.detail == ("80.0 GiB free for the box (/home/student/.vagrant.d); "
                        "3.0 GiB free for the VM disks (D:\\VMs)")
    assert r.fix.startswith("free at least 5 GiB on the disk of the VM disks (D:\\VMs)")
    roomy = {"/": ("C:", int(1.5 * GIB)), "D:\\VMs": ("D:", 80 * GIB)}
    box = check(doctor.check_disk, s, outputs=outputs, disks=roomy, env={"VAGRANT_HOME": "/home/student/.vagrant.d"})
    assert box.status == doctor.WARN and "on the disk of the box" in box.fix  # 1.5 GiB: the box fits, barely


def test_box_and_vm_on_one_disk_add_up(s):
    one = {"/": ("C:", 7 * GIB)}
    r = check(doctor.check_disk, s, disks=one)  # no systemproperties: ~/VirtualBox VMs, same disk as the box
    assert r.status == doctor.WARN
    assert r.detail == "7.0 GiB free for the box (/home/student/.vagrant.d) and the VM disks (/home/student/VirtualBox VMs)"
