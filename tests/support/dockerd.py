"""A real Docker engine for the tests: a private dockerd on its own socket."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.support.env import stop_process
import json
import tarfile


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


def docker(dockerd, *args, **kw):
    return subprocess.run(["docker", "--host", dockerd.url, *args], capture_output=True, text=True, **kw)


def load_and_run(dockerd, archive: Path, tag: str) -> str:
    """`docker load` the archive into a daemon that does not have the image, run it, then remove it."""
    with tarfile.open(archive) as tar:
        image_id = "sha256:" + json.loads(tar.extractfile("manifest.json").read())[0]["Config"][:-len(".json")]
    assert docker(dockerd, "image", "inspect", image_id).returncode != 0, "the daemon already had this image"
    loaded = docker(dockerd, "load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded image: {tag}" in loaded.stdout
    try:
        ran = docker(dockerd, "run", "--rm", "--network", "host", tag)
        assert ran.returncode == 0, ran.stderr
        return ran.stdout.strip()
    finally:
        docker(dockerd, "image", "rm", "-f", tag)
