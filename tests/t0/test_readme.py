"""T0: README starts with the two commands, and .ci/run runs README's test command exactly."""
from __future__ import annotations

import re

from tests.support.env import REPO


def commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section, re.S)]


def test_readme_gives_exactly_two_commands_main_job_then_tests():
    main, tests = commands()
    assert main.endswith("invoke lab") and "pip install -e ." in main
    assert tests.endswith("-m pytest") and "scripts/host-setup" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = commands()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci, ".ci/run must run the exact test command README gives"


def test_every_task_in_the_readme_table_exists():
    from tests.support.tasks import EXPECTED

    text = (REPO / "README.md").read_text()
    for name in EXPECTED:
        assert f"`{name}" in text, f"README does not mention {name}"
