"""T0: the Invoke namespace is what README promises, and every task explains itself."""
from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO

EXPECTED = {
    "lab", "doctor", "verify", "acceptance",
    "vm.up", "vm.halt", "vm.destroy", "vm.ssh", "vm.status", "vm.snapshot", "vm.provision",
    "cluster.init", "cluster.join", "cluster.status", "cluster.reset",
    "app.build", "app.deploy", "app.delete",
    "section.start", "section.show", "section.check", "section.solve", "section.progress",
    "bundle.fetch", "bundle.verify", "bundle.serve", "bundle.status", "bundle.lock",
    "class.serve", "class.join", "class.send",
}


def namespace():
    spec = importlib.util.spec_from_file_location("labkit_tasks_file", REPO / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ns


def all_tasks(collection, prefix=""):
    for name, task in collection.tasks.items():
        yield prefix + name, task
    for name, sub in collection.collections.items():
        yield from all_tasks(sub, f"{prefix}{name}.")


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
