"""Shared test plumbing: where the repo is, what this machine can run, real daemons on demand.

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
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
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


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# --- a real Docker engine -------------------------------------------------------------------

class Dockerd:
    """A private dockerd: own socket, data and exec roots; no bridge or iptables changes on the host."""

    def __init__(self, workdir: Path, extra: tuple = ()):
        self.workdir = workdir
        self.extra = tuple(extra)  # more dockerd flags (e.g. --registry-mirror)
        self.socket = workdir / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.url, "--data-root", str(self.workdir / "data"),
             "--exec-root", str(self.workdir / "exec"), "--pidfile", str(self.workdir / "dockerd.pid"),
             "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", *self.extra],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(self.workdir / 'dockerd.log').read_text()[-2000:]}")
            if subprocess.run(["docker", "--host", self.url, "version"], capture_output=True).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError("dockerd did not answer within 60 s")

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=300)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, 30)
        # dockerd leaves mounts under its roots (exec/netns/default is an nsfs mount): deepest first.
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(str(self.workdir) + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd():
    need_root()
    need_binary("dockerd")
    need_binary("docker")
    daemon = Dockerd(Path("/tmp") / f"labkit-dockerd-{uuid.uuid4().hex[:8]}")
    daemon.start()
    yield daemon
    daemon.stop()


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


@pytest.fixture(scope="session")
def stand_in_image(dockerd):
    """import_as(tag): the cached python3 rootfs imported into the test dockerd under `tag`."""

    def import_as(tag: str) -> str:
        with open(python_rootfs_tarball(), "rb") as fh:
            subprocess.run(["docker", "--host", dockerd.url, "import",
                            "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "-", tag], stdin=fh, check=True, capture_output=True)
        return tag

    return import_as
