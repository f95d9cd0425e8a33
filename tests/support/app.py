"""Shared by the app tests: a throw-away copy of the project, and running invoke in it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.env import REPO


def copy_project(dest: Path) -> Path:
    """What the app tasks read: settings, provision/ (settings checks it), inv/, manifests/, tasks.py."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("settings.yaml", "tasks.py"):
        shutil.copy(REPO / name, dest / name)
    for name in ("provision", "inv", "manifests"):
        shutil.copytree(REPO / name, dest / name)
    return dest


def invoke(project: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=project, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
