"""`vagrant ssh-config` read with paramiko's parser, bytes decoded as Vagrant writes them (UTF-8), and the
facts cache that follows the VM's machine id. Output shape: Vagrant 2.x's `ssh-config` (the format
python-vagrant's own docstring quotes), with the key path of a Windows user folder holding non-ASCII letters."""
from __future__ import annotations

import json
import shutil

import pytest

from labkit import backends, settings as settings_mod
from labkit.errors import LabkitError
from labkit.vagrant import SshFacts, machine_id, parse_ssh_config
from tests.support.env import REPO

WINDOWS_KEY = "C:/Users/Łukasz/lab7/.vagrant/machines/ubuntu/virtualbox/private_key"
SSH_CONFIG = f"""Host ubuntu
  HostName 127.0.0.1
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile {WINDOWS_KEY}
  IdentitiesOnly yes
  LogLevel FATAL
"""


def test_utf8_output_gives_the_key_path_unharmed():
    assert parse_ssh_config(SSH_CONFIG.encode("utf-8")) == SshFacts("127.0.0.1", 2222, "vagrant", WINDOWS_KEY)


def test_output_in_the_ansi_code_page_is_read_with_it(monkeypatch):
    """Not valid UTF-8 (é in cp1252 is one byte 0xE9): read in the laptop's code page rather than refused."""
    import locale

    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "cp1252")
    text = SSH_CONFIG.replace("Łukasz", "René")
    assert parse_ssh_config(text.encode("cp1252")).key_file == WINDOWS_KEY.replace("Łukasz", "René")


def test_a_quoted_key_path_with_spaces_and_crlf_lines():
    text = SSH_CONFIG.replace(f"IdentityFile {WINDOWS_KEY}", 'IdentityFile "C:/Users/Anna Maria/key"').replace("\n", "\r\n")
    assert parse_ssh_config(text.encode()).key_file == "C:/Users/Anna Maria/key"


def test_output_without_a_host_is_one_line():
    with pytest.raises(LabkitError, match="named no host, user and key"):
        parse_ssh_config(b"")


def test_cached_facts_are_used_only_for_the_same_vm(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "settings.yaml", root)
    shutil.copytree(REPO / "provision", root / "provision")
    s = settings_mod.load(root, {})
    asked = []

    class Vagrant:
        def __init__(self, root, env=None):
            pass

        def ssh_facts(self, node):
            asked.append(node)
            return SshFacts("192.168.121.5", 22, "vagrant", f"/keys/{len(asked)}")

    monkeypatch.setattr("labkit.vagrant.Vagrant", Vagrant)  # no VM here: Vagrant's answers stand in
    ids = root / ".vagrant/machines/ubuntu/libvirt/id"
    ids.parent.mkdir(parents=True)
    ids.write_text("6f1c")
    facts = backends.node_facts(s, "ubuntu", env={})
    assert facts(False)["key_file"] == "/keys/1" and facts(False)["key_file"] == "/keys/1"  # cached
    assert json.loads(backends.ssh_cache_file(s, "ubuntu").read_text())["machine_id"] == "6f1c"
    ids.write_text("a9d2")  # the VM was destroyed and created again
    assert machine_id(root, "ubuntu", {}) == "a9d2"
    assert facts(False)["key_file"] == "/keys/2"
    assert facts(True)["key_file"] == "/keys/3"  # a failed connection asks again
    assert asked == ["ubuntu"] * 3
