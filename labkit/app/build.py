"""The trash-can/inv image, built from inv/ by the Docker daemon inside the VM (it is never pulled).

The image carries a label with a digest of what went into it (base image name, inventory image
name, every file of the build context). The same digest means nothing changed: app.build and
app.deploy then skip the build, and the Deployment's pods stay as they are. A new digest means a new
image, and app.deploy puts it in the pod template so Kubernetes rolls the pods over to it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from labkit.errors import LabkitError

CONTEXT_LABEL = "io.labkit.context"
IMAGE_KEYS = ("inv", "inv_base", "web", "client")


def images(settings) -> dict:
    """settings.yaml `images:` (inv, inv_base, web, client): the one place image names come from."""
    found = settings.data.get("images") or {}
    missing = [k for k in IMAGE_KEYS if not isinstance(found.get(k), str) or not found[k]]
    if missing:
        raise LabkitError(f"settings lack images.{missing[0]}", "restore the images section of settings.yaml")
    return found


def context_dir(settings) -> Path:
    return settings.root / "inv"


def context_files(ctx: Path) -> list[str]:
    """The files Docker receives as build context (after .dockerignore), as sorted relative paths."""
    from docker.utils.build import exclude_paths

    ignore = ctx / ".dockerignore"
    patterns = []
    if ignore.is_file():
        patterns = [ln.strip() for ln in ignore.read_text(encoding="utf-8").splitlines()
                    if ln.strip() and not ln.strip().startswith("#")]
    return sorted(p for p in exclude_paths(str(ctx), patterns) if (ctx / p).is_file())


def context_digest(settings) -> str:
    """sha256 over the image names and the build context: equal digest, equal image."""
    ctx = context_dir(settings)
    if not (ctx / "Dockerfile").is_file():
        raise LabkitError(f"{ctx / 'Dockerfile'} is missing", "restore inv/ from the project (git checkout inv)")
    names = images(settings)
    h = hashlib.sha256()
    h.update(f"base={names['inv_base']}\ntag={names['inv']}\n".encode())
    for rel in context_files(ctx):
        data = (ctx / rel).read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Plan:
    tag: str
    base: str
    context: Path
    digest: str
    files: list


def plan(settings) -> Plan:
    names = images(settings)
    ctx = context_dir(settings)
    return Plan(names["inv"], names["inv_base"], ctx, context_digest(settings), context_files(ctx))


def current(client, tag: str) -> Optional[str]:
    """The context digest of the image `tag` in that daemon, "" for an image without one, None if absent."""
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(CONTEXT_LABEL, "")


def require_base(client, base: str, node: str) -> None:
    import docker

    try:
        client.images.get(base)
    except docker.errors.ImageNotFound:
        raise LabkitError(f"the base image {base} is not loaded in {node}'s Docker (the build would try to pull it)",
                          "it comes from the bundle: run invoke bundle.fetch, then invoke vm.provision to load it") from None


def build(client, p: Plan, node: str, log: Callable[[str], None], network_mode: Optional[str] = None) -> str:
    """Build p.tag in the daemon `client` talks to, streaming its output to `log`. Returns the image id."""
    import docker

    require_base(client, p.base, node)
    image_id = None
    try:
        # Low-level API: it streams the build output as it happens (images.build returns it at the end).
        for chunk in client.api.build(path=str(p.context), tag=p.tag, buildargs={"BASE": p.base},
                                      labels={CONTEXT_LABEL: p.digest}, rm=True, forcerm=True, pull=False,
                                      decode=True, network_mode=network_mode):
            if "error" in chunk:
                detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                raise LabkitError(f"docker build of {p.tag} failed in {node}: {detail.strip()}",
                                  "read the build output above; fix inv/Dockerfile or inv/app.py")
            for line in chunk.get("stream", "").splitlines():
                log(line)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except docker.errors.APIError as exc:
        raise LabkitError(f"docker build of {p.tag} failed in {node}: {exc.explanation or exc}",
                          "read the build output above") from None
    if current(client, p.tag) != p.digest:
        raise LabkitError(f"the build of {p.tag} in {node} ended without the new image",
                          "read the build output above; run invoke app.build again")
    return image_id or client.images.get(p.tag).id
