"""Fixtures shared by every tier: the repo, a real Docker engine, a stand-in base image.

Helpers (need, free_port, Dockerd, ...) live in tests/support/; this file holds fixtures only.
"""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.dockerd import Dockerd
from tests.support.env import REPO, need_binary, need_root, python_rootfs_tarball


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# --- a real Docker engine -------------------------------------------------------------------

@pytest.fixture(scope="session")
def dockerd():
    need_root()
    need_binary("dockerd")
    need_binary("docker")
    daemon = Dockerd(Path("/tmp") / f"labkit-dockerd-{uuid.uuid4().hex[:8]}")
    daemon.start()
    yield daemon
    daemon.stop()


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
