"""T0: the Invoke namespace is what README promises, and every task explains itself."""
from __future__ import annotations


import pytest

from tests.support.env import REPO
from tests.support.tasks import all_tasks, EXPECTED, namespace


def test_namespace_has_every_task_the_readme_lists():
    assert set(dict(all_tasks(namespace()))) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_task_has_a_docstring_and_help_for_every_option(name):
    task = dict(all_tasks(namespace()))[name]
    assert (task.__doc__ or "").strip(), f"{name} has no docstring"
    for arg in task.get_arguments():
        assert (arg.help or "").strip(), f"{name} --{arg.name} has no help text"


def test_the_root_is_the_project_directory():
    assert namespace().configuration()["labkit"]["root"] == str(REPO)
