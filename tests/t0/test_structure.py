"""The shape of the project itself: every task a message or document names exists, and starting a command
stays light (the heavy libraries load only in the task that needs them)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.env import REPO
from tests.t0.test_tasks_wiring import all_tasks, namespace

MENTION = re.compile(r"\binvoke ([a-z][\w-]*\.[a-z][\w-]*)")  # `invoke vm.up`, in a message, script or document
WHERE = ["labkit", "provision", "vagrant", "docs", "README.md", "Vagrantfile", "tasks.py"]
HEAVY = ("kubernetes", "paramiko", "requests", "rich")


def mentions() -> dict:
    found = {}
    for where in WHERE:
        path = REPO / where
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and p.suffix != ".pyc"]
        for f in files:
            for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                for m in MENTION.finditer(line):
                    found.setdefault(m.group(1), f"{f.relative_to(REPO)}:{n}")
    return found


def test_every_task_named_anywhere_exists():
    tasks = set(dict(all_tasks(namespace())))
    found = mentions()
    assert len(found) > 20  # the scan reads the files it should
    assert {name: where for name, where in found.items() if name not in tasks} == {}


def test_the_mention_scan_catches_a_task_that_does_not_exist():
    assert MENTION.findall("then invoke vm.reload or vm.up; from invoke import Exit") == ["vm.reload"]


@pytest.mark.parametrize("module", ["tasks", "labkit.tasks.cluster", "labkit.tasks.app", "labkit.steps"])
def test_loading_the_tasks_loads_no_heavy_library(module):
    code = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert "labkit" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
