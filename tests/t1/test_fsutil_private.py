"""T1: private files really are private here: another user cannot read what write_private wrote,
from the first byte, and make_private takes back a file someone widened."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from labkit import fsutil

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/sbin/runuser"),
                                reason="needs root to read as another user (runuser)")


def read_as_nobody(path):
    return subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)], capture_output=True, text=True)


@pytest.fixture
def shared():
    """A folder anyone may enter (pytest's tmp_path sits under a 0700 folder): only the file's own mode
    may stop another user."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        Path(folder).chmod(0o755)
        yield Path(folder)


def test_write_private_is_unreadable_for_another_user(shared):
    path = shared / "kubeconfig"
    fsutil.write_private(path, "client-key-data: c2VjcmV0\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    denied = read_as_nobody(path)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    open_ = shared / "report.json"
    fsutil.write_atomic(open_, "{}")  # the contrast: an ordinary file is readable, so the test can fail
    assert read_as_nobody(open_).stdout == "{}"


def test_make_private_takes_back_a_widened_file(shared):
    path = shared / "kubeconfig"
    path.write_text("client-key-data: c2VjcmV0\n")
    path.chmod(0o644)
    assert read_as_nobody(path).returncode == 0
    fsutil.make_private(path)
    assert read_as_nobody(path).returncode != 0
