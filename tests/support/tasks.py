"""The task names the CLI must offer, and the project's tasks as invoke loads them."""
from __future__ import annotations

import importlib.util

from tests.support.env import REPO


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
