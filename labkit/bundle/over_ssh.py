"""The bundle copied into a VM over the kit's own SSH connection: the fallback when the VirtualBox
shared folder does not mount (the box's Guest Additions do not fit this VirtualBox).

Every laptop has this transport (paramiko, Vagrant's key: labkit.backends), where Vagrant's rsync
folder needs an rsync on the host, which Windows does not have. What is copied is what the VM reads:
CHECKSUMS and every artifact it lists, except the box files and the instructor's sources (the
Vagrantfile's rsync excludes the same). The copy is

  resumable   each file goes to `<file>.part` in the VM, appended from the size already there; a
              connection that breaks is opened again (ATTEMPTS times) and the file goes on from there;
  checked     each file's hash is computed in the VM (sha256sum/sha512sum) and compared with its line
              in CHECKSUMS before `<file>.part` becomes `<file>`; verified files are listed in the
              VM's `.labkit-copied`, so a second copy sends only what changed;
  exact       files the bundle no longer lists are removed (provisioning refuses unpinned files).
"""
from __future__ import annotations

import posixpath
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labkit.bundle.checksums import FILE_NAME, Checksum, parse
from labkit.errors import LabkitError

EXCLUDED = ("boxes/", "sources/")  # the VM never needs them (the Vagrantfile's rsync excludes them too)
PART = ".part"
MANIFEST = ".labkit-copied"  # "<algo> <hex> <path>" per verified file, in the VM's bundle folder
CHUNK = 256 * 1024
ATTEMPTS = 5
PAUSE = 2.0  # seconds between attempts (a VM's sshd restarting, a laptop's Wi-Fi, a cut cable)
TIMEOUT = 120.0  # seconds without progress on one command


class Broken(Exception):
    """The SSH connection broke under a command: open it again and go on."""


@dataclass
class Copied:
    files: int = 0  # sent (in part or whole)
    skipped: int = 0  # already in the VM, verified before
    removed: int = 0
    bytes: int = 0  # sent over the connection
    resumed: int = 0  # bytes found in a .part and not sent again


def copy(settings, node: str, log: Callable[[str], None]) -> Copied:
    """Copy settings.bundle_dir into `node` at bundle.guest_dir over SSH (labkit.backends' node connection)."""
    from labkit.backends import get_backend

    backend = get_backend(f"node:{node}", settings)
    try:
        return copy_tree(backend, Path(settings.bundle_dir), settings.data["bundle"]["guest_dir"], log)
    finally:
        backend.close()


def wanted(bundle_dir: Path) -> list[Checksum]:
    sums = bundle_dir / FILE_NAME
    if not sums.is_file():
        raise LabkitError(f"the bundle at {bundle_dir} has no {FILE_NAME} file", "run invoke bundle.fetch (or copy the "
                          "bundle from the USB stick), then invoke vm.up")
    out = [c for c in parse(sums.read_text(encoding="utf-8")) if not c.path.startswith(EXCLUDED)]
    for c in out:
        if posixpath.isabs(c.path) or ".." in c.path.split("/"):
            raise LabkitError(f"{FILE_NAME} names {c.path}, outside the bundle", "run invoke bundle.fetch to write it again")
        if not (bundle_dir / c.path).is_file():
            raise LabkitError(f"bundle artifact {c.name} ({c.path}) is missing", f"run invoke bundle.fetch --only {c.name}")
    return out


def copy_tree(backend, bundle_dir: Path, guest: str, log: Callable[[str], None]) -> Copied:
    """The copy itself, on any labkit.backends.Ssh (tests give one to a local sshd)."""
    files = wanted(bundle_dir)
    sums = Checksum(FILE_NAME, "sha256", _sha256(bundle_dir / FILE_NAME), FILE_NAME)
    done = Copied()
    session = _Session(backend, log)
    session.call(lambda c: _prepare(c, guest))
    present, verified = session.call(lambda c: _inventory(c, guest))
    total = sum((bundle_dir / f.path).stat().st_size for f in files)
    log(f"copying the bundle into {backend.name}:{guest} over SSH: {len(files)} files, {total / 2**20:.1f} MB "
        "(resumable; each file checked against CHECKSUMS in the VM)")
    for item in [*files, sums]:  # CHECKSUMS last: the VM's copy is complete once it is there
        local = bundle_dir / item.path
        size = local.stat().st_size
        if present.get(item.path) == size and verified.get(item.path) == (item.algo, item.hex):
            done.skipped += 1
            continue
        session.call(lambda c, item=item: _send(c, guest, local if item is not sums else bundle_dir / FILE_NAME,
                                                item, size, done, log))
        done.files += 1
    keep = {f.path for f in files} | {FILE_NAME, MANIFEST}
    extra = sorted(p for p in present if p not in keep)
    if extra:
        session.call(lambda c: _remove(c, guest, extra))
        done.removed = len(extra)
        log(f"removed {len(extra)} file(s) the bundle no longer lists: {', '.join(extra[:3])}"
            + (" ..." if len(extra) > 3 else ""))
    log(f"bundle copied: {done.files} file(s) sent ({done.bytes / 2**20:.1f} MB"
        + (f", {done.resumed / 2**20:.1f} MB resumed" if done.resumed else "") + f"), {done.skipped} already there")
    return done


class _Session:
    """Commands over the backend's connection; a broken one is opened again, ATTEMPTS times in all."""

    def __init__(self, backend, log):
        self.backend, self.log, self.failures = backend, log, 0

    def call(self, op):
        while True:
            from labkit.vagrant import NodeDown

            try:
                return op(self.backend.connect())
            except NodeDown as exc:  # the VM cannot be reached (again)
                reason = exc.message
            except (Broken, EOFError, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            except Exception as exc:  # paramiko.SSHException and its kind
                if type(exc).__module__.split(".")[0] != "paramiko":
                    raise
                reason = str(exc) or type(exc).__name__
            self.backend.close()
            self.failures += 1
            if self.failures >= ATTEMPTS:
                raise LabkitError(f"copying the bundle into {self.backend.name} over SSH failed {ATTEMPTS} times "
                                  f"(last: {reason})", "run invoke vm.up again: the copy goes on where it stopped")
            self.log(f"the SSH connection broke ({reason}); connecting again")
            time.sleep(PAUSE)


def _exec(client, command: str, data=None, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Run `command` in the VM, feeding it `data` (an iterable of bytes); (exit code, output). A broken
    connection raises Broken, whatever paramiko calls it."""
    from labkit.proc import text

    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise Broken("the connection is closed")
    chan = transport.open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.set_combine_stderr(True)
        chan.exec_command(command)
        for chunk in data or ():
            chan.sendall(chunk)
        chan.shutdown_write()
        out = bytearray()
        while True:
            got = chan.recv(65536)
            if not got:
                break
            out += got
        code = chan.recv_exit_status()
    finally:
        chan.close()
    if code == -1 or not transport.is_active():  # closed without an exit status: the connection went
        raise Broken("the connection closed during a command")
    return code, text(bytes(out))


def _check(client, command: str, what: str, data=None) -> str:
    code, out = _exec(client, command, data)
    if code != 0:
        raise LabkitError(f"{what} failed in the VM: {out.strip()[-200:] or f'exit code {code}'}",
                          "run invoke vm.up again; if it repeats, invoke vm.destroy, then invoke vm.up")
    return out


def _prepare(client, guest: str) -> None:
    """The bundle folder, owned by the SSH user (root makes it; a sudo-less root login needs none)."""
    q = shlex.quote(guest)
    root = _check(client, "id -u", "id -u").strip() == "0"
    make = f"mkdir -p {q} && chown \"$(id -un)\" {q}" if root else \
        f"sudo -n mkdir -p {q} && sudo -n chown \"$(id -un)\" {q}"
    _check(client, make, f"creating {guest}")


def _inventory(client, guest: str) -> tuple[dict, dict]:
    """What the VM has: {path: size} (.part files included) and {path: (algo, hex)} of verified files."""
    q = shlex.quote(guest)
    out = _check(client, f"cd {q} && find . -type f -printf '%s %P\\n' && echo '--' && cat {MANIFEST} 2>/dev/null; true",
                 f"listing {guest}")
    listing, _, manifest = out.partition("--\n")
    present = {}
    for line in listing.splitlines():
        size, _, path = line.partition(" ")
        if size.isdigit() and path:
            present[path] = int(size)
    verified = {}
    for line in manifest.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            verified[parts[2]] = (parts[0], parts[1])  # the last line for a path wins
    return present, verified


def _send(client, guest: str, local: Path, item: Checksum, size: int, done: Copied, log) -> None:
    """One file into `<guest>/<path>.part` from where it stopped, checked, then renamed."""
    target = posixpath.join(guest, item.path)
    part, q_part = target + PART, shlex.quote(target + PART)
    code, out = _exec(client, f"stat -c %s {q_part} 2>/dev/null || echo 0")
    have = int(out.strip()) if code == 0 and out.strip().isdigit() else 0
    if have > size:
        have = 0
    if have:
        log(f"{item.path}: resuming at {have / 2**20:.1f} of {size / 2**20:.1f} MB")
        done.resumed += have
    elif size > 8 * CHUNK:
        log(f"{item.path}: {size / 2**20:.1f} MB")

    def chunks():
        with open(local, "rb") as fh:
            fh.seek(have)
            while True:
                block = fh.read(CHUNK)
                if not block:
                    return
                done.bytes += len(block)
                yield block

    write = f"mkdir -p {shlex.quote(posixpath.dirname(target))} && " + \
        (f"cat >> {q_part}" if have else f"cat > {q_part}")
    _check(client, write, f"writing {item.path}", chunks())
    if item.algo not in ("sha256", "sha512"):
        raise LabkitError(f"CHECKSUMS pins {item.name} with '{item.algo}', which the VM cannot check",
                          f"run invoke bundle.fetch --only {item.name}")
    got = _check(client, f"{item.algo}sum < {q_part}", f"checking {item.path}").split()[:1]
    if got != [item.hex]:  # sent again from the start, as after a broken connection
        _exec(client, f"rm -f {q_part}")
        raise Broken(f"{item.path} arrived in the VM with another {item.algo} than CHECKSUMS says")
    line = shlex.quote(f"{item.algo} {item.hex} {item.path}")
    _check(client, f"mv -f {q_part} {shlex.quote(target)} && printf '%s\\n' {line} >> "
                   f"{shlex.quote(posixpath.join(guest, MANIFEST))}", f"placing {item.path}")


def _remove(client, guest: str, paths: list[str]) -> None:
    _check(client, "cd " + shlex.quote(guest) + " && rm -f -- " + " ".join(shlex.quote(p) for p in paths),
           "removing old bundle files")


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
