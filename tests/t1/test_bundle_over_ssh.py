"""T1: the bundle copied into a "VM" over SSH (labkit/bundle/over_ssh.py) against a real OpenSSH sshd
(tests/sshd.py), through a TCP relay that cuts the first connection in the middle of a file: the copy
connects again and goes on from the bytes the VM already has, and every file is checked against
CHECKSUMS where it landed."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from labkit.backends import Ssh
from labkit.bundle import over_ssh
from labkit.errors import LabkitError
from tests.support.env import stop_process
from tests.support.sshd import start_sshd

pytestmark = pytest.mark.t1

MB = 2 ** 20


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    proc, facts = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield facts
    stop_process(proc)


class Relay:
    """127.0.0.1:<port> -> the sshd; the first connection is closed after `cut` bytes from the client."""

    def __init__(self, target_port: int, cut: int):
        self.target, self.cut = target_port, cut
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[int] = []  # bytes client -> server, per connection
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            index = len(self.connections)
            self.connections.append(0)
            server = socket.create_connection(("127.0.0.1", self.target))
            limit = self.cut if index == 0 else None
            threading.Thread(target=self._pump, args=(client, server, index, limit), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None, None), daemon=True).start()

    def _pump(self, src, dst, index, limit):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if index is not None:
                    if limit is not None and self.connections[index] + len(data) > limit:
                        break  # the cable is pulled: both ends see the connection drop
                    self.connections[index] += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


def pin(bundle: Path, name: str, rel: str, data: bytes, algo: str = "sha256") -> None:
    f = bundle / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    with open(bundle / "CHECKSUMS", "a") as fh:
        fh.write(f"{name} {algo} {hashlib.new(algo, data).hexdigest()} {rel}\n")


@pytest.fixture
def bundle(tmp_path):
    b = tmp_path / "bundle"
    b.mkdir()
    pin(b, "kubernetes-node", "k8s/kubernetes-node-linux-amd64.tar.gz", os.urandom(6 * MB), "sha512")
    pin(b, "socat", "debs/base/socat_1.7.3.1-1_amd64.deb", os.urandom(300 * 1024))
    pin(b, "etcd", "images/etcd-3.3.10.tar", os.urandom(2 * MB))
    pin(b, "box-virtualbox", "boxes/xenial.box", b"a box the VM never needs")
    (b / "images" / "weave.tar.blobs.part").mkdir()  # a download in progress: not pinned, not sent
    return b


def backend(facts, port=None) -> Ssh:
    return Ssh("ubuntu", facts["host"], port or facts["port"], facts["user"], facts["key_file"])


def guest_files(guest: Path) -> dict:
    return {p.relative_to(guest).as_posix(): p.read_bytes() for p in guest.rglob("*") if p.is_file()}


def test_a_cut_connection_is_resumed_and_every_file_checked(sshd, bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(over_ssh, "PAUSE", 0.1)
    guest = tmp_path / "vm" / "opt" / "labkit" / "bundle"
    relay = Relay(sshd["port"], cut=3 * MB)  # in the middle of the 6 MB tarball
    said = []
    try:
        done = over_ssh.copy_tree(backend(sshd, relay.port), bundle, str(guest), said.append)
    finally:
        relay.close()
    assert len(relay.connections) == 2, said  # cut once, connected again once
    files = guest_files(guest)
    expected = {p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*")
                if p.is_file() and not p.relative_to(bundle).as_posix().startswith("boxes/")}
    assert {k: v for k, v in files.items() if k != over_ssh.MANIFEST} == expected  # CHECKSUMS too; no box, no .part
    pins = [line.split() for line in (bundle / "CHECKSUMS").read_text().splitlines()]
    assert sorted(files[over_ssh.MANIFEST].decode().split("\n")[:-1]) == sorted(
        [f"{algo} {hexd} {path}" for _, algo, hexd, path in pins if not path.startswith("boxes/")]
        + [f"sha256 {hashlib.sha256((bundle / 'CHECKSUMS').read_bytes()).hexdigest()} CHECKSUMS"])
    assert any(line.startswith("the SSH connection broke") for line in said), said
    resumed = [line for line in said if ": resuming at " in line]
    assert resumed and resumed[0].startswith("k8s/kubernetes-node-linux-amd64.tar.gz: resuming at "), said
    total = sum(len(v) for v in expected.values())
    # resumed, not started again: what reached the VM before the cut is not sent twice. Started again, the
    # second connection would carry the whole bundle plus SSH's own bytes; resumed, it carries less.
    assert done.resumed >= 256 * 1024
    assert relay.connections[1] < total

    again = over_ssh.copy_tree(backend(sshd), bundle, str(guest), said.append)
    assert (again.files, again.bytes, again.skipped) == (0, 0, 4)  # idempotent: nothing sent twice


def test_a_changed_bundle_sends_only_what_changed_and_drops_what_is_gone(sshd, bundle, tmp_path):
    guest = tmp_path / "vm"
    over_ssh.copy_tree(backend(sshd), bundle, str(guest), lambda line: None)
    (guest / "leftover.deb").write_bytes(b"from an older bundle")
    lines = (bundle / "CHECKSUMS").read_text().splitlines()
    (bundle / "CHECKSUMS").write_text("".join(line + "\n" for line in lines if " etcd " not in f" {line} "))
    (bundle / "images" / "etcd-3.3.10.tar").unlink()
    pin(bundle, "etcd", "images/etcd-3.3.15.tar", b"a newer etcd")
    said = []
    done = over_ssh.copy_tree(backend(sshd), bundle, str(guest), said.append)
    assert (done.files, done.removed) == (2, 2), said  # the new etcd and CHECKSUMS; the old etcd and the stray file
    assert not (guest / "images" / "etcd-3.3.10.tar").exists() and not (guest / "leftover.deb").exists()
    assert (guest / "images" / "etcd-3.3.15.tar").read_bytes() == b"a newer etcd"


def test_a_file_that_does_not_match_checksums_is_never_placed(sshd, bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(over_ssh, "PAUSE", 0)
    monkeypatch.setattr(over_ssh, "ATTEMPTS", 2)
    (bundle / "debs/base/socat_1.7.3.1-1_amd64.deb").write_bytes(b"not the pinned socat")
    guest = tmp_path / "vm"
    with pytest.raises(LabkitError) as info:
        over_ssh.copy_tree(backend(sshd), bundle, str(guest), lambda line: None)
    assert info.value.message.startswith("copying the bundle into ubuntu over SSH failed 2 times (last: "
                                         "debs/base/socat_1.7.3.1-1_amd64.deb arrived in the VM with another sha256")
    assert info.value.fix == "run invoke vm.up again: the copy goes on where it stopped"
    assert not (guest / "debs/base/socat_1.7.3.1-1_amd64.deb").exists()


def test_a_missing_artifact_is_named_before_anything_is_sent(sshd, bundle, tmp_path):
    (bundle / "images" / "etcd-3.3.10.tar").unlink()
    with pytest.raises(LabkitError) as info:
        over_ssh.copy_tree(backend(sshd), bundle, str(tmp_path / "vm"), lambda line: None)
    assert info.value.line() == ("labkit: bundle artifact etcd (images/etcd-3.3.10.tar) is missing. "
                                 "Fix: run invoke bundle.fetch --only etcd")
    assert not (tmp_path / "vm").exists()


def test_an_unreachable_vm_is_one_line(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(over_ssh, "PAUSE", 0)
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(LabkitError) as info:
        over_ssh.copy_tree(Ssh("ubuntu", "127.0.0.1", port, "vagrant", str(tmp_path / "no-key")), bundle,
                           str(tmp_path / "vm"), lambda line: None)
    assert info.value.message.startswith("copying the bundle into ubuntu over SSH failed 5 times (last: cannot reach ubuntu")
