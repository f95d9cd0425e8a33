"""The shape of the project itself: every task a message or document names exists, and starting a command
stays light (the heavy libraries load only in the task that needs them)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.env import REPO
from tests.support.tasks import all_tasks, namespace

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


# --- the tests' own layout (tests/support/ holds helpers; conftest.py files hold fixtures) -----------

TEST_MODULE = re.compile(r"^tests(\.t\d+)?\.(test_\w+|conftest)$")


def imported_test_modules(source: str) -> list[str]:
    """Test modules and conftest files that `source` imports (`from tests.t0.test_x import y`,
    `from tests.t2.conftest import z`, `from tests.t1 import test_x`, `import tests.conftest`)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if TEST_MODULE.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [node.module] if TEST_MODULE.match(node.module) else []
            found += [f"{node.module}.{a.name}" for a in node.names if TEST_MODULE.match(f"{node.module}.{a.name}")]
    return found


def test_no_test_module_imports_a_test_module_or_a_conftest():
    """Shared names live in tests/support/, shared fixtures in the nearest conftest.py."""
    offenders = {str(p.relative_to(REPO)): found for p in sorted((REPO / "tests").rglob("*.py"))
                 if (found := imported_test_modules(p.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_the_import_scan_catches_each_form():
    bad = ("from tests.t0.test_doctor import GIB\nfrom tests.t2.conftest import strip_ansi\n"
           "from tests.t1 import test_cli\nimport tests.conftest\n")
    assert imported_test_modules(bad) == ["tests.t0.test_doctor", "tests.t2.conftest", "tests.t1.test_cli",
                                          "tests.conftest"]
    assert imported_test_modules("from tests.support.laptop import GIB\nfrom tests import support\n") == []


def test_helpers_live_in_tests_support():
    """Outside tests/support/, a Python file under tests/ is a test module, a conftest.py or an __init__.py."""
    stray = [str(p.relative_to(REPO)) for p in sorted((REPO / "tests").rglob("*.py"))
             if "support" not in p.relative_to(REPO / "tests").parts[:1]
             and not (p.name.startswith("test_") or p.name in ("conftest.py", "__init__.py"))]
    assert stray == []
