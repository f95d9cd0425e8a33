"""T1: every reader of another program's output, against real processes printing bytes that are not UTF-8.

The programs are small scripts under the real names (VBoxManage, vagrant, virsh, icacls), put first on
PATH: what cannot run here (VirtualBox, a localized Windows) is only their output. Each reader must
come back with text (U+FFFD where a byte means nothing) instead of a UnicodeDecodeError, and VBoxManage
must be started in an English locale whatever the user's is."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.support.env import REPO

pytestmark = pytest.mark.t1

# "Default machine folder" under a Polish user folder as cp1250 bytes, plus a byte valid nowhere.
FOLDER = "/home/\u0141ukasz/VirtualBox VMs".encode("cp1250") + b"\xff"


def script(bin_dir: Path, name: str, body: str) -> Path:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def tools(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "folder.bin").write_bytes(b"Default machine folder:          " + FOLDER + b"\n")
    seen = tmp_path / "vboxmanage-env"
    script(bin_dir, "VBoxManage", f'echo "LC_ALL=$LC_ALL LANG=$LANG LANGUAGE=${{LANGUAGE:-}}" > {seen}\n'
                                  f'case "$1" in --version) echo 7.0.14r161095;; list) cat {tmp_path / "folder.bin"};; esac\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")  # a Russian user: VirtualBox 7 would answer in Russian
    monkeypatch.setenv("LANGUAGE", "ru")
    return bin_dir, seen


def test_doctor_reads_vboxmanage_bytes_and_runs_it_in_english(tools, tmp_path):
    from labkit import doctor, settings

    bin_dir, seen = tools
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    s = settings.load(tmp_path, {})
    probe = doctor.Probe()
    folder = doctor.machine_folder(s, probe)
    assert folder.parts[:2] == ("/", "home") and str(folder).endswith("VirtualBox VMs\ufffd")
    env = dict(part.split("=", 1) for part in seen.read_text().split())
    assert env["LC_ALL"] == env["LANG"] and env["LC_ALL"] in ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8", "C")
    assert env["LANGUAGE"] == ""  # gettext would read it before LC_ALL
    assert doctor.check_disk(s, probe).status in (doctor.PASS, doctor.WARN, doctor.FAIL)  # a row, not a traceback
    assert doctor._run(["sh", "-c", r"printf '\377\376 broken \303('"]).startswith("\ufffd")


def test_acceptance_reads_tool_bytes(tools):
    from labkit import acceptance

    assert acceptance._output(["sh", "-c", r"printf 'Vagrant 2.4.1 \377\n'"]) == "Vagrant 2.4.1 \ufffd"


def test_python_vagrant_queries_read_bytes(tools, tmp_path):
    """`vagrant status` through python-vagrant (which decodes strictly) with a non-UTF-8 byte in a ui line."""
    from labkit.vagrant import Vagrant

    bin_dir, _ = tools
    line = b"1700000000,ubuntu,ui,info,Project C:\\Users\\" + "Łukasz".encode("cp1250") + b"\\lab\n"
    (tmp_path / "status.bin").write_bytes(b"1700000000,ubuntu,metadata,provider,virtualbox\n"
                                          b"1700000000,ubuntu,provider-name,virtualbox\n"
                                          b"1700000000,ubuntu,state,running\n" + line)
    script(bin_dir, "vagrant", f'cat {tmp_path / "status.bin"}\n')
    assert Vagrant(tmp_path).status("ubuntu") == "running"


def test_virsh_bytes_become_the_one_line(tools):
    from labkit import libvirt
    from labkit.errors import LabkitError

    bin_dir, _ = tools
    script(bin_dir, "virsh", r"""case "$3" in
  dominfo) exit 0;;
  undefine) printf 'erreur : domaine \351chec \377\n' >&2; exit 1;;
esac
""")
    with pytest.raises(LabkitError) as info:
        libvirt.remove("labkit-0000000000-ubuntu")
    assert "erreur : domaine \ufffdchec \ufffd" in info.value.message


def test_an_acl_command_failing_in_a_code_page_is_one_line(tools, tmp_path):
    from labkit import fsutil
    from labkit.errors import LabkitError

    bin_dir, _ = tools
    said = tmp_path / "icacls.bin"
    said.write_bytes("Отказано в доступе.\r\n".encode("cp866"))  # a Russian console's icacls
    script(bin_dir, "icacls", f"cat {said}; exit 5\n")
    target = tmp_path / "kubeconfig"
    target.write_text("x")
    with pytest.raises(LabkitError) as info:
        fsutil.restrict(target, fsutil.owner_only_acl_command(target, {"USERNAME": "student"}))
    assert info.value.message.startswith(f"cannot restrict {target} to your user: ")
    assert "\ufffd" in info.value.message and "\n" not in info.value.message.strip()
