"""The lock file: every artifact the lab needs, pinned. Its YAML shape is a contract (see docs/bundle.md).

    artifacts:
      - name: kubernetes-node          # unique
        kind: file                     # file | image
        urls: [https://..., ...]       # mirrors, tried in order
        sha512: <hex>                  # or sha256; a file without either is unpinned
        size: 123456                   # optional
        path: k8s/kubernetes-node-linux-amd64.tar.gz   # inside the bundle directory
      - name: weave-kube
        kind: image
        ref: docker.io/weaveworks/weave-kube:2.8.1
        digest: sha256:<manifest digest>
        path: images/weave-kube-2.8.1.tar
Box files also carry `box: <name>` and `provider: <provider>` so vm.up can `vagrant box add` them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

from labkit.errors import LabkitError

KINDS = ("file", "image")
HEX = {"sha256": 64, "sha512": 128}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class LockError(LabkitError):
    pass


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str
    path: str
    urls: tuple = ()
    sha256: Optional[str] = None
    sha512: Optional[str] = None
    size: Optional[int] = None
    ref: Optional[str] = None
    digest: Optional[str] = None
    box: Optional[str] = None
    provider: Optional[str] = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def pinned(self) -> bool:
        if self.kind == "image":
            return bool(self.digest) and bool(self.sha256 or self.sha512)
        return bool(self.sha256 or self.sha512)

    def file(self, bundle_dir: Path) -> Path:
        return Path(bundle_dir, *PurePosixPath(self.path).parts)

    def present(self, bundle_dir: Path) -> bool:
        """Cheap presence check (exists, and the size if the lock knows it). Hashes: bundle.verify."""
        f = self.file(bundle_dir)
        return f.is_file() and (self.size is None or f.stat().st_size == self.size)


@dataclass(frozen=True)
class Lock:
    path: Path
    artifacts: tuple

    def get(self, name: str) -> Artifact:
        for a in self.artifacts:
            if a.name == name:
                return a
        raise LockError(f"{self.path.name} has no artifact named '{name}'",
                        "use a name from: " + ", ".join(a.name for a in self.artifacts))

    def box_for(self, box: str, provider: str) -> Optional[Artifact]:
        return next((a for a in self.artifacts if a.box == box and a.provider == provider), None)


def load(path: Path | str) -> Lock:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise LockError(f"lock file {path} does not exist", "pass --lock with the path of a lock file")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise LockError(f"{path.name} is not valid YAML", "restore it from git or fix the syntax") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("artifacts"), list):
        raise LockError(f"{path.name} has no 'artifacts' list", "see docs/bundle.md for the lock's shape")
    artifacts = tuple(_artifact(path.name, i, e) for i, e in enumerate(tree["artifacts"]))
    for attr in ("name", "path"):
        seen: set = set()
        for a in artifacts:
            value = getattr(a, attr)
            if value in seen:
                raise LockError(f"{path.name} lists {attr} '{value}' twice", f"give every artifact its own {attr}")
            seen.add(value)
    return Lock(path=path, artifacts=artifacts)


def _artifact(lock_name: str, index: int, entry) -> Artifact:
    where = f"{lock_name} artifact #{index + 1}"
    if not isinstance(entry, dict):
        raise LockError(f"{where} is not a mapping", "each artifact is a mapping with name, kind and path")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise LockError(f"{where} has no valid name ({name!r})", "use lower-case letters, digits, '.', '_' and '-'")
    where = f"{lock_name} artifact '{name}'"
    kind = entry.get("kind")
    if kind not in KINDS:
        raise LockError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}", "set kind: file or kind: image")
    path = entry.get("path")
    if not isinstance(path, str) or not _inside(path):
        raise LockError(f"{where}: path {path!r} escapes the bundle directory",
                        "use a relative path without '..', like k8s/kubeadm")
    for algo, length in HEX.items():
        value = entry.get(algo)
        if value is not None and not (isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{length}}}", value)):
            raise LockError(f"{where}: {algo} is not {length} lower-case hex digits", f"copy the {algo} exactly")
    urls = entry.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) and re.match(r"^https?://", u) for u in urls):
        raise LockError(f"{where}: urls must be a list of http(s) URLs", "write urls: [https://...]")
    if kind == "file" and not urls:
        raise LockError(f"{where}: a file needs at least one URL", "add urls: [https://...]")
    if kind == "image":
        if not isinstance(entry.get("ref"), str):
            raise LockError(f"{where}: an image needs ref (like docker.io/library/nginx:1.17.10)", "add ref: ...")
        digest = entry.get("digest")
        if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)):
            raise LockError(f"{where}: digest must look like sha256:<64 hex>", "copy the manifest digest exactly")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise LockError(f"{where}: size must be a whole number of bytes", "remove size or correct it")
    known = {"name", "kind", "path", "urls", "sha256", "sha512", "size", "ref", "digest", "box", "provider"}
    return Artifact(name=name, kind=kind, path=path, urls=tuple(urls), sha256=entry.get("sha256"),
                    sha512=entry.get("sha512"), size=size, ref=entry.get("ref"), digest=entry.get("digest"),
                    box=entry.get("box"), provider=entry.get("provider"),
                    extra={k: v for k, v in entry.items() if k not in known})


def _inside(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and "\\" not in path and not p.is_absolute() and ".." not in p.parts and not re.match(r"^[A-Za-z]:", path)
