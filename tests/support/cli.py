"""Running the project's CLI as a user would (`invoke ...` in a subprocess), for T1's CLI tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.env import REPO
from tests.support.vagrantfile import NO_MACHINES


def run(*args, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    full["VAGRANT_DOTFILE_PATH"] = NO_MACHINES  # this machine's answers, not a VM this checkout may hold
    full.update(env)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=120)


def one_line_error(proc) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


INVOKE = str(Path(sys.executable).with_name("invoke"))


def invoke(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, *args], cwd=project, capture_output=True, text=True, timeout=120)
