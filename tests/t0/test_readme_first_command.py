"""T0: README's first command for Windows PowerShell 5.1 (which rejects `&&`) is the same three steps
as the Linux/macOS line, one per line."""
from __future__ import annotations
from tests.support.readme import block


def test_powershell_lines_are_the_main_command_one_step_per_line():
    lines = block("powershell").strip().splitlines()
    assert not any("&&" in ln for ln in lines)
    assert lines == ["py -m venv .venv", r".venv\Scripts\pip install -e .", r".venv\Scripts\invoke lab"]


def test_the_offline_linux_line_never_needs_ensurepip():
    line = block("sh").strip()
    assert line.startswith("python3 -m venv --without-pip .venv && ") and "--no-index" in line
