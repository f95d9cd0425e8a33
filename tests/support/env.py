"""Where the repo is and what this machine can run.

Rule: a test that needs something this machine lacks (libvirt, dockerd, root) is *skipped with the
reason* on a developer laptop, but *fails* in CI (CI=true), where scripts/host-setup installed it all.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit-tests"


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip (laptop) or fail (CI) when a prerequisite is missing."""
    if condition:
        return
    if is_ci():
        pytest.fail(f"CI must run this test but: {reason} (scripts/host-setup should have provided it)")
    pytest.skip(reason)


def need_root() -> None:
    need(hasattr(os, "geteuid") and os.geteuid() == 0, "needs root (network namespaces, dockerd, libvirt)")


def need_binary(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"`{name}` is not installed")
    return path


def default_sigint() -> None:
    """preexec_fn for a child the test will send Ctrl-C (SIGINT): SIGINT's default disposition, as in a
    terminal, even when the suite itself was started with SIGINT ignored (`nohup ... &`, some CI
    runners), a disposition every child would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_rootfs_tarball() -> Path:
    """A Debian minbase root filesystem with python3, as a tarball (debootstrap once, then cached).

    It stands in for the bundle's pinned base image, which cannot be pulled here.
    """
    tarball = CACHE / "bookworm-python3-rootfs.tar"
    if tarball.exists():
        return tarball
    need_binary("debootstrap")
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE / f"rootfs-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(rootfs)],
                       check=True, capture_output=True)
        for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/lib/apt/lists", "var/cache/apt"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        partial = tarball.with_suffix(".part")
        with tarfile.open(partial, "w") as tar:
            tar.add(rootfs, arcname=".")
        partial.rename(tarball)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tarball
