"""A laptop's facts for doctor (a Probe other than this machine's), and the settings doctor reads."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit import doctor
from labkit import settings
from tests.support.env import REPO


GIB = 1024 ** 3


class Laptop(doctor.Probe):
    """A laptop's facts, as the checks would read them."""

    def __init__(self, system="Linux", machine="x86_64", tools=None, outputs=None, available=8 * GIB,
                 total=16 * GIB, cpus=4, free_disk=100 * GIB, flags=frozenset({"vmx"}), hyperv=False,
                 rosetta=False, networks_conf=None, addresses=frozenset({"127.0.0.1"}), kvm=True, env=None,
                 files=frozenset(), registry=None, kernel="6.8.0-45-generic", modules="ext4 1003520 1 - Live 0x0000000000000000\n",
                 params=None, resolv_conf="nameserver 192.168.1.1\n", disks=None):
        self.system, self.machine = system, machine
        self.tools = tools if tools is not None else {"vagrant": "/usr/bin/vagrant", "VBoxManage": "/usr/bin/VBoxManage"}
        self.outputs = outputs if outputs is not None else {"vagrant": "Vagrant 2.4.1", "VBoxManage": "7.0.14r161095"}
        self._available, self._total, self._cpus, self._disk = available, total, cpus, free_disk
        self._flags, self._hyperv, self._rosetta = flags, hyperv, rosetta
        self._conf, self._addresses, self._kvm = networks_conf, addresses, kvm
        self.env, self._files, self._registry = env or {}, files, registry
        self._kernel = kernel
        self._files_text = {"/proc/modules": modules, "/etc/resolv.conf": resolv_conf,
                            **{f"/sys/module/kvm/parameters/{k.split('.', 1)[1]}": v + "\n" for k, v in (params or {}).items()}}
        self._disks = disks  # {folder: (disk name, free bytes)}; None: one disk with free_disk

    def which(self, name):
        found = self.tools.get(name)
        if found is None and self.system == "Windows" and name == "VBoxManage":  # the real search, on this laptop's facts
            found = doctor.windows_vboxmanage(self.env, self.is_file)
        return found

    def is_file(self, path):
        return path in self._files

    def output(self, cmd):
        name = Path(cmd[0].replace("\\", "/")).name.removesuffix(".exe")
        if name == "VBoxManage" and cmd[1:] == ["list", "systemproperties"]:
            name = "VBoxManage list systemproperties"
        return self.outputs.get(name)

    def registry_virtualbox_dir(self):
        return self._registry

    def kernel_release(self):
        return self._kernel

    def read_text(self, path):
        return self._files_text.get(path)

    def vagrant_home(self):
        return Path(self.env.get("VAGRANT_HOME", "/home/student/.vagrant.d"))

    def home(self):
        return Path("/home/student")

    def _disk_of(self, path):
        if self._disks is None:
            return ("disk", self._disk)
        folder = max((f for f in self._disks if str(path).startswith(f)), key=len)
        return self._disks[folder]

    def disk_free(self, path):
        return self._disk_of(path)[1]

    def same_disk(self, a, b):
        return self._disk_of(a)[0] == self._disk_of(b)[0]

    def memory_available(self):
        return self._available

    def memory_total(self):
        return self._total

    def cpus(self):
        return self._cpus

    def cpu_flags(self):
        return self._flags

    def kvm_usable(self):
        return self._kvm

    def rosetta(self):
        return self._rosetta

    def hyperv_running(self):
        return self._hyperv

    def vbox_networks_conf(self):
        return self._conf

    def host_addresses(self):
        return set(self._addresses)


@pytest.fixture
def s(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return settings.load(tmp_path, {})


def check(fn, s, **facts):
    return fn(s, Laptop(**facts))
