"""manifests/ as the API objects app.deploy sends.

The files are what a student holds next to the lab text, so they stay plain manifests that
`kubectl apply -f manifests/` also accepts. Two things are filled in at deploy time:
  * every container image comes from settings.yaml `images:` (tests/t1/test_manifests.py keeps the
    files equal to the defaults; a settings.local.yaml override then still deploys what the VM has);
  * the inventory pod template gets an annotation with the build context's digest, so a rebuilt image
    rolls the pods over, and an unchanged one leaves them alone.
"""
from __future__ import annotations

import copy
from pathlib import Path

from labkit.errors import LabkitError

NAMESPACE = "default"
CONTEXT_ANNOTATION = "labkit.io/inv-context"

# (kind, object name, container name) → settings images key. Every container in manifests/ must be here.
IMAGE_KEYS = {
    ("Deployment", "can-inventory", "inv"): "inv",
    ("Pod", "web", "web"): "web",
    ("Pod", "client", "client"): "client",
}
KINDS = {"Service": "v1", "Deployment": "apps/v1", "Pod": "v1"}  # kind → apiVersion, in apply order


def manifest_dir(settings) -> Path:
    return settings.root / "manifests"


def read(directory: Path) -> list[tuple[str, dict]]:
    """(file name, object) for every document in directory/*.yaml, files in name order."""
    import yaml

    found = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise LabkitError(f"manifests/{path.name}{where} is not valid YAML", "fix it, or git checkout manifests") from None
        found += [(path.name, doc) for doc in docs if doc is not None]
    if not found:
        raise LabkitError(f"no manifests in {directory}", "restore them: git checkout manifests")
    return found


def containers(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Deployment":
        spec = (spec.get("template") or {}).get("spec") or {}
    return spec.get("containers") or []


def load(settings, images: dict, context_digest: str = "") -> list[dict]:
    """The objects to apply, in apply order, with images from settings and the context annotation."""
    objs = []
    for name, doc in read(manifest_dir(settings)):
        kind = doc.get("kind")
        if KINDS.get(kind) != doc.get("apiVersion"):
            raise LabkitError(f"manifests/{name}: app.deploy does not handle {doc.get('apiVersion')} {kind}",
                              "use apps/v1 Deployment, v1 Service or v1 Pod objects")
        obj = copy.deepcopy(doc)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", NAMESPACE) != NAMESPACE:
            raise LabkitError(f"manifests/{name}: the lab's objects live in namespace {NAMESPACE}",
                              "remove metadata.namespace")
        for c in containers(obj):
            key = IMAGE_KEYS.get((kind, meta.get("name"), c.get("name")))
            if key is None:
                raise LabkitError(f"manifests/{name}: no image setting for container {c.get('name')} of {kind} {meta.get('name')}",
                                  "add it to IMAGE_KEYS in labkit/app/objects.py and to images: in settings.yaml")
            c["image"] = images[key]
        if kind == "Deployment" and context_digest:
            template_meta = obj["spec"]["template"].setdefault("metadata", {})
            template_meta.setdefault("annotations", {})[CONTEXT_ANNOTATION] = context_digest[:16]
        objs.append(obj)
    order = list(KINDS)
    return sorted(objs, key=lambda o: order.index(o["kind"]))


def ref(obj: dict) -> str:
    """kubectl's way to name an object: deployment.apps/can-inventory, service/inv, pod/web."""
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def to_yaml(objs: list[dict]) -> str:
    import yaml

    return yaml.safe_dump_all(objs, sort_keys=False, default_flow_style=False)
