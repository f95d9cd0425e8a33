"""The steps of app.build, app.deploy and app.delete, one file each (labkit.steps.Step); --dry-run prints the same list."""
from __future__ import annotations

from labkit.app import build as build_mod
from labkit.app import objects
from labkit.app.actions.delete import DeleteObjects
from labkit.app.actions.image import BuildImage
from labkit.app.actions.manifests import ApplyManifests
from labkit.app.actions.wait import WaitRollout


def build_plan(settings, nodes, force: bool = False) -> list:
    plan = build_mod.plan(settings)
    return [BuildImage(plan, n.name, force) for n in nodes]


def deploy_plan(settings) -> list:
    """Build where needed (pods never pull the image: every node needs it), apply, wait."""
    plan, images = build_mod.plan(settings), build_mod.images(settings)
    objs = objects.load(settings, images, plan.digest)
    return [*(BuildImage(plan, n.name) for n in settings.nodes), ApplyManifests(objs), WaitRollout(objs, images)]


def delete_plan(settings) -> list:
    """The lab's objects, last applied first."""
    return [DeleteObjects(objects.load(settings, build_mod.images(settings), build_mod.plan(settings).digest))]
