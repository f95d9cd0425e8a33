"""T1: what the real Vagrantfile gives VirtualBox, read through a recording stand-in for Vagrant's
configuration DSL (tests/t1/vagrantfile_calls.rb): VirtualBox cannot run here, and `vagrant validate`
stops before it reads the VirtualBox provider block."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit import vm
from labkit import settings as settings_mod
from tests.support.env import REPO, need_binary

pytestmark = pytest.mark.t1


def declared(root: Path, **env) -> list[dict]:
    need_binary("ruby")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    out = subprocess.run(["ruby", str(Path(__file__).with_name("vagrantfile_calls.rb")), str(root)],
                         env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def calls(log: list[dict], call: str, provider: str, node: str = "ubuntu") -> list[dict]:
    return [c for c in log if c["call"] == call and f"define({node})" in c["path"] and f"provider({provider})" in c["path"]]


@pytest.fixture
def project(tmp_path):
    for name in ("Vagrantfile", "settings.yaml"):
        shutil.copy(REPO / name, tmp_path)
    for name in ("vagrant", "provision"):
        shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path


def test_the_serial_console_goes_to_a_file_in_the_project(project):
    (custom,) = calls(declared(project), "customize", "virtualbox")
    args = custom["args"][0]
    assert args[:2] == ["modifyvm", "id"]
    mode = args.index("--uartmode1")
    # the acceptance report quotes it (labkit/acceptance.py console_log has the same path)
    assert args[mode + 1:mode + 3] == ["file", str(project / ".labkit" / "console-ubuntu.log")]
    assert "disconnected" not in args  # stalls the xenial guest's boot on VirtualBox 6+
    assert args[args.index("--uart1") + 1:args.index("--uart1") + 3] == ["0x3F8", "4"]  # COM1 stays enabled
    assert (project / ".labkit").is_dir()  # VirtualBox creates the file, not its folder
    assert sorted(p.name for p in project.iterdir()) == [".labkit", "Vagrantfile", "bundle", "provision", "settings.yaml",
                                                         "vagrant"]


def test_a_node_whose_share_failed_has_no_shared_folder_to_mount(project):
    log = declared(project)
    (shared,) = calls(log, "synced_folder", "virtualbox")
    assert "type" not in shared["options"] and shared["options"]["mount_options"] == ["ro"]  # vboxsf

    marker = vm.bundle_copied(settings_mod.load(project, {}), "ubuntu")  # what vm.up writes on a failed mount
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    (copied,) = calls(declared(project), "synced_folder", "virtualbox")
    assert copied["options"] == {"disabled": "true"} and copied["args"] == shared["args"]  # vm.up copies over SSH
    # only that node: a worker keeps its share
    (worker,) = calls(declared(project, LABKIT_WORKERS="1"), "synced_folder", "virtualbox", node="worker-1")
    assert "type" not in worker["options"]


@pytest.mark.parametrize("provider", ["virtualbox", "libvirt"])
def test_an_arm64_guest_gets_the_arm64_box_and_no_x86_serial_port(project, provider):
    log = declared(project, LABKIT_ARCH="arm64")
    wanted = settings_mod.load(project, {"LABKIT_ARCH": "arm64"}).data["arm64_boxes"][provider]
    assert [c["args"] for c in calls(log, "box=", provider)] == [[wanted]]
    assert wanted != settings_mod.load(project, {}).data["boxes"][provider]
    if provider == "virtualbox":
        (custom,) = calls(log, "customize", provider)  # COM1 at 0x3F8 is an x86 port: the output only
        assert custom["args"][0] == ["modifyvm", "id", "--uartmode1", "file", str(project / ".labkit" / "console-ubuntu.log")]
    (step,) = [c for c in log if c["call"] == "provision" and c["args"][0] == "base" and "define(ubuntu)" in c["path"]]
    assert re.search(r'"LABKIT_ARCH"\s*=>\s*"arm64"', step["options"]["env"])  # provision/lib.sh reads it
