"""T0: Vagrant's failures on each laptop system become one line with that system's fix
(labkit.laptops.TRAPS through labkit.vagrant.explain), and Vagrant 2.4's per-architecture box tree
counts as installed. The outputs are Vagrant's and VirtualBox's own texts, sources beside each."""
from __future__ import annotations

import pytest

from labkit import laptops
from labkit.vagrant import box_installed, explain

# Vagrant templates/locales/en.yml virtualbox_kernel_module_not_loaded (2.4.9), as `vagrant up` prints it.
KERNEL_MODULE = """Bringing machine 'ubuntu' up with 'virtualbox' provider...
VirtualBox is complaining that the kernel module is not loaded. Please
run `VBoxManage --version` or open the VirtualBox GUI to see the error
message which should contain instructions on how to fix this error.
"""

# en.yml vboxmanage_error around `VBoxManage hostonlyif create` on macOS (hashicorp/vagrant#12967,
# Vagrant 2.3.2 + VirtualBox 7.0.2; the same text with an unapproved kernel extension on 6.1).
MAC_VBOXNETCTL = """==> ubuntu: Clearing any previously set network interfaces...
There was an error while executing `VBoxManage`, a CLI used by Vagrant
for controlling VirtualBox. The command and stderr is shown below.

Command: ["hostonlyif", "create"]

Stderr: 0%...
Progress state: NS_ERROR_FAILURE
VBoxManage: error: Failed to create the host-only adapter
VBoxManage: error: VBoxNetAdpCtl: Error while adding new interface: failed to open /dev/vboxnetctl: No such file or directory
VBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005), component HostNetworkInterfaceWrap, interface IHostNetworkInterface
"""

# hashicorp/vagrant#12959: startvm on macOS with VirtualBox 7.0.0 and Vagrant 2.3.2.
MAC_NO_HOSTONLY_ADAPTERS = """Command: ["startvm", "a1a2b62c-e192-4ba0-ba2d-1b7c6fdf965b", "--type", "headless"]

Stderr: VBoxManage: error: Host-only adapters are no longer supported!
VBoxManage: error: To fix this problem, switch to 'Host-only Network' attachment type in the VM settings.
VBoxManage: error:  (VERR_NOT_FOUND)
"""

# Windows: geerlingguy/drupal-vm#1716 (VirtualBox 5.1.30, Vagrant 2.0.2).
WINDOWS_ADAPTER = """Command: ["hostonlyif", "create"]

Stderr: 0%...
Progress state: E_FAIL
VBoxManage.exe: error: Failed to create the host-only adapter
VBoxManage.exe: error: Querying NetCfgInstanceId failed (0x00000002)
"""

# en.yml virtualbox_invalid_host_subnet (Vagrant 2.2.19+), Linux.
LINUX_RANGE = """The IP address configured for the host-only network is not within the
allowed ranges. Please update the address used to be within the allowed
ranges and run the command again.

  Address: 10.10.0.10
  Ranges: 192.168.56.0/21

Valid ranges can be modified in the /etc/vbox/networks.conf file. For
more information including valid format see:
"""

# NixOS/nixpkgs#363887 and VirtualBox/virtualbox#711: KVM holding VT-x, wrapped by Vagrant.
KVM_HOLDS_VTX = """Command: ["startvm", "3d30ffe8-e366-4b72-b419-272283843ba0", "--type", "headless"]

Stderr: VBoxManage: error: VirtualBox can't operate in VMX root mode. Please disable the KVM kernel extension, recompile your kernel and reboot (VERR_VMX_IN_VMX_ROOT_MODE)
VBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005), component ConsoleWrap, interface IConsole
"""
SVME_NOT_ENABLED = """Stderr: VBoxManage: error: Host API has not enabled SVME bit in EFER MSR. (VERR_SVM_HOST_SVME_NOT_ENABLED)
VBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005), component ConsoleWrap, interface IConsole
"""

# en.yml hyperv_virtualbox_error (Vagrant 2.0.3 .. 2.3.4 on Windows with Hyper-V on).
HYPERV_REFUSED = """Hyper-V and VirtualBox cannot be used together and will result in a
system crash. Vagrant will now exit. Please disable Hyper-V if you wish
to use VirtualBox.
"""

# PhoenixPE/PhoenixPE#117: VirtualBox on Windows with AMD-V off in the firmware (HVP=0: Hyper-V is
# not running; the NEM line comes first, but the firmware is the cause).
BIOS_OFF = """VBoxManage.exe: error: Not in a hypervisor partition (HVP=0) (VERR_NEM_NOT_AVAILABLE).
VBoxManage.exe: error: AMD-V is disabled in the BIOS (or by the host OS) (VERR_SVM_DISABLED)
"""
VTX_BIOS_OFF = "VBoxManage.exe: error: VT-x is disabled in the BIOS for all CPU modes (VERR_VMX_MSR_ALL_VMX_DISABLED)\n"


def said(output, system):
    return explain(output, "up", system)


def test_kernel_module_not_loaded_gets_each_systems_fix():
    linux = said(KERNEL_MODULE, "Linux")
    assert linux.message == "vagrant up failed: VirtualBox's kernel driver is not loaded"
    assert "sudo /sbin/vboxconfig" in linux.fix and "Secure Boot" in linux.fix
    assert "Privacy & Security" in said(KERNEL_MODULE, "Darwin").fix
    assert said(KERNEL_MODULE, "Windows").fix == "reinstall VirtualBox as administrator, then reboot"


def test_an_incomplete_install_is_the_kernel_module_trap():
    # en.yml virtualbox_install_incomplete
    text = ("VirtualBox is complaining that the installation is incomplete. Please\n"
            "run `VBoxManage --version` to see the error message which should contain\n"
            "instructions on how to fix this error.\n")
    assert "sudo /sbin/vboxconfig" in said(text, "Linux").fix


def test_host_only_failures_are_told_apart_by_cause_and_system():
    mac = said(MAC_VBOXNETCTL, "Darwin")
    assert "kernel extension" in mac.fix and "Vagrant to 2.3.3" in mac.fix and "networks.conf" not in mac.fix
    assert said(MAC_NO_HOSTONLY_ADAPTERS, "Darwin").fix == "upgrade Vagrant to 2.3.3 or newer"
    windows = said(WINDOWS_ADAPTER, "Windows")
    assert windows.message == "vagrant up failed: VirtualBox could not create the host-only adapter"
    assert "Host-Only Networking" in windows.fix and "networks.conf" not in windows.fix
    linux = said(LINUX_RANGE, "Linux")
    assert "/etc/vbox/networks.conf" in linux.fix and "outside /etc/vbox/networks.conf" in linux.message


def test_kvm_errors_on_linux():
    assert said(KVM_HOLDS_VTX, "Linux").fix.startswith("unload KVM: sudo modprobe -r kvm_intel kvm_amd kvm")
    assert "enable_virt_at_load=0" in said(SVME_NOT_ENABLED, "Linux").fix


def test_hyperv_and_firmware_messages_on_windows():
    refused = said(HYPERV_REFUSED, "Windows")  # Vagrant up to 2.3.4 (check_virtualbox.rb)
    assert refused.message == "vagrant up failed: this Vagrant refuses VirtualBox while Hyper-V (or WSL2/Memory integrity) is on"
    assert refused.fix.startswith("upgrade Vagrant to 2.3.5 or newer") and refused.fix.endswith(laptops.HYPERV_OFF)
    assert said(BIOS_OFF, "Windows").message.endswith("hardware virtualization is turned off in the firmware")
    assert said("VBoxManage.exe: error: Call to WHvSetupPartition failed: ERROR_SUCCESS (Last=0xc000000d/87) "
                "(VERR_NEM_VM_CREATE_FAILED)", "Windows").message.endswith("owns the CPU's virtualization")
    vtx = said(VTX_BIOS_OFF, "Windows")
    assert vtx.message == "vagrant up failed: hardware virtualization is turned off in the firmware"
    assert "BIOS/UEFI" in vtx.fix and "bcdedit" in vtx.fix
    assert "bcdedit" not in said(VTX_BIOS_OFF, "Linux").fix


def test_an_unknown_virtualbox_is_sent_to_doctor():
    # en.yml virtualbox_invalid_version
    text = ("Vagrant has detected that you have a version of VirtualBox installed\n"
            "that is not supported by this version of Vagrant. Please install one of\n"
            "the supported versions listed below to use Vagrant:\n\n4.0, 4.1, 4.2, 4.3, 5.0, 5.1, 5.2, 6.0, 6.1, 7.0, 7.1\n")
    assert said(text, "Windows").fix.startswith("run invoke doctor")


# --- box_installed: both layouts ------------------------------------------------------------------

def make_box(home, *parts):
    folder = home.joinpath("boxes", "ubuntu-VAGRANTSLASH-xenial64", *parts)
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text('{"provider": "virtualbox"}')  # what Vagrant writes with every box
    return folder


@pytest.mark.parametrize("layout", [("20211001.0.0", "virtualbox"),            # Vagrant <= 2.3
                                    ("20211001.0.0", "amd64", "virtualbox")])   # Vagrant 2.4: per architecture
def test_box_installed_reads_both_box_trees(tmp_path, layout):
    env = {"VAGRANT_HOME": str(tmp_path)}
    assert not box_installed("ubuntu/xenial64", "virtualbox", env)
    make_box(tmp_path, *layout)
    assert box_installed("ubuntu/xenial64", "virtualbox", env)
    assert not box_installed("ubuntu/xenial64", "libvirt", env)


def test_a_leftover_empty_provider_folder_is_not_a_box(tmp_path):
    (tmp_path / "boxes" / "ubuntu-VAGRANTSLASH-xenial64" / "0" / "amd64" / "virtualbox").mkdir(parents=True)
    assert not box_installed("ubuntu/xenial64", "virtualbox", {"VAGRANT_HOME": str(tmp_path)})
