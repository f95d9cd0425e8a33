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
        tag: weaveworks/weave-kube:2.8.1   # optional: the name written into the archive (default: ref)
        provenance: recorded-digest    # where the pin came from (PROVENANCE below); bundle.lock writes it
    count: 2                           # the last line: how many artifacts are listed (a cut file lacks it)
Box files also carry `box: <name>` and `provider: <provider>` so vm.up can `vagrant box add` them.
`arch: amd64|arm64` marks what only one guest architecture needs (an image's arch also picks its child
of a multi-arch list); an artifact without it serves both (a YAML manifest).
A file may name `published: <URL>`, a checksum list (sha256sum format or a Debian Packages index)
that `bundle.lock` reads its pin from instead of trusting the first download.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

from labkit.errors import LabkitError

KINDS = ("file", "image")
# Where a pin came from, strongest first. publisher-checksum: the publisher's own checksum list or
# release table; signed-index: an apt index checked through its archive's signed InRelease; changelog:
# the project's release notes; recorded-digest: the hash or digest as recorded in another public source
# (a build system, a package recipe, a registry record); first-use: the first download (trust on first use).
PROVENANCE = ("publisher-checksum", "signed-index", "changelog", "recorded-digest", "first-use")
HEX = {"sha256": 64, "sha512": 128}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PROVIDERS = ("virtualbox", "libvirt")
ARCHS = ("amd64", "arm64")       # guest architectures (settings.yaml limits.archs)
RESERVED_SUFFIX = ".part"   # partial downloads; the Vagrantfile's rsync skips them
CHECKSUMS_FILE = "CHECKSUMS"
# [registry/]repository[:tag] | [registry/]repository@sha256:<hex>, lower-case path components
IMAGE_REF = re.compile(r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
                       r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$")


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
    tag: Optional[str] = None        # image: name written into the archive (default: ref)
    published: Optional[str] = None  # file: checksum list bundle.lock reads the pin from
    provenance: Optional[str] = None  # where the pin came from: one of PROVENANCE
    source: Optional[str] = None     # image: the lock's file artifact it is taken from (no registry)
    member: Optional[str] = None     # image: the `docker save` tarball's path inside that source
    id: Optional[str] = None         # image taken from a source: its image ID (sha256 of its config), the pin
    arch: Optional[str] = None       # only this guest architecture needs it (None: every one)
    child: Optional[str] = None      # image with arch: the digest its list's entry for arch must have

    @property
    def platform_arch(self) -> str:
        """The architecture an image's archive holds: its child of a multi-arch list."""
        return self.arch or "amd64"

    @property
    def image_tag(self) -> str:
        """The name `docker load` gives this image: `tag`, else `ref` in Docker's short form."""
        name = self.tag or self.ref or ""
        for prefix in ("docker.io/library/", "docker.io/"):
            if name.startswith(prefix):
                return name[len(prefix):]
        return name

    @property
    def pinned(self) -> bool:
        if self.kind == "image":  # the digest (or the image ID) pins every blob; archive.check_image checks it
            return bool(self.digest or self.id)
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

    def needed(self, provider: Optional[str] = None, archs=None) -> tuple:
        """What a laptop with this provider and guest architecture(s) needs: everything but the other
        providers' box files, the other architectures' artifacts and the sources images are taken from
        (bundle.fetch gets a source itself when it has an image to take). None: every one."""
        sources = {a.source for a in self.artifacts if a.source}
        archs = (archs,) if isinstance(archs, str) else archs
        return tuple(a for a in self.artifacts
                     if (provider is None or a.provider in (None, provider)) and a.name not in sources
                     and (archs is None or a.arch is None or a.arch in archs))

    def select(self, names=None) -> tuple:
        """The artifacts named (comma-separated string or list), in lock order; all if none named."""
        if not names:
            return self.artifacts
        wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
        for n in wanted:
            self.get(n)  # unknown name → LockError listing the known ones
        return tuple(a for a in self.artifacts if a.name in wanted)


def load_for(settings, lock: Optional[str] = None, dest: Optional[str] = None) -> tuple["Lock", Path]:
    """The lock a task works on (--lock, else settings' bundle.lock) and its bundle directory (--dest, else bundle.dir)."""
    return load(Path(lock) if lock else settings.lock_file), Path(dest).resolve() if dest else settings.bundle_dir


def load(path: Path | str) -> Lock:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise LockError(f"lock file {path} does not exist", "pass --lock with the path of a lock file")
    try:
        tree = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise LockError(f"{path.name} is not UTF-8 text", "restore it from git (git checkout -- <lock>)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LockError(f"{path.name}{where} is not valid YAML (it may be truncated)",
                        "restore it from git or fix the syntax there") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("artifacts"), list):
        raise LockError(f"{path.name} has no 'artifacts' list", "see docs/bundle.md for the lock's shape")
    _check_count(path, tree)
    artifacts = tuple(_artifact(path.name, i, e) for i, e in enumerate(tree["artifacts"]))
    for attr in ("name", "path"):
        seen: set = set()
        for a in artifacts:
            value = getattr(a, attr)
            if value in seen:
                raise LockError(f"{path.name} lists {attr} '{value}' twice", f"give every artifact its own {attr}")
            seen.add(value)
    for a in artifacts:
        if a.source is not None and not any(s.name == a.source and s.kind == "file" for s in artifacts):
            raise LockError(f"{path.name}: artifact '{a.name}' is taken from '{a.source}', which is not a file "
                            "artifact of this lock", "add the source file, or fix source:")
    files = {a.path for a in artifacts}
    for a in artifacts:  # "k8s" as a file and "k8s/x" inside it cannot both exist
        for parent in PurePosixPath(a.path).parents:
            if str(parent) in files:
                raise LockError(f"{path.name}: artifact '{a.name}' ({a.path}) lies inside the file {parent}",
                                "give the two artifacts paths that do not nest")
    return Lock(path=path, artifacts=artifacts)


def _check_count(path: Path, tree: dict) -> None:
    """`count:` is the lock's last line: a lock cut anywhere (lost entries or fields) lacks it or disagrees."""
    listed, count = len(tree["artifacts"]), tree.get("count")
    restore = f"restore it from git (git checkout -- {path.name})"
    if count is None:
        raise LockError(f"{path.name} has no 'count:' line after its {listed} artifact(s), so it looks truncated",
                        f"{restore}; a lock you wrote by hand ends with count: {listed}")
    if isinstance(count, bool) or not isinstance(count, int) or count != listed:
        raise LockError(f"{path.name} says count: {count} but lists {listed} artifact(s): it looks truncated or "
                        "an entry was lost", f"{restore}; if you added or removed an entry, set count: {listed}")
    if list(tree)[-1] != "count":
        raise LockError(f"{path.name}: 'count:' must be the last key of the file (so a cut file loses it)",
                        "move count: to the end of the file")


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
    if path.endswith(RESERVED_SUFFIX) or PurePosixPath(path).parts in ((CHECKSUMS_FILE,),):
        raise LockError(f"{where}: path {path!r} is reserved (partial downloads end in {RESERVED_SUFFIX}; "
                        f"{CHECKSUMS_FILE} is written by labkit)", "pick another file name")
    for algo, length in HEX.items():
        value = entry.get(algo)
        if value is not None and not (isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{length}}}", value)):
            raise LockError(f"{where}: {algo} is not {length} lower-case hex digits", f"copy the {algo} exactly")
    urls = entry.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) and re.match(r"^https?://", u) for u in urls):
        raise LockError(f"{where}: urls must be a list of http(s) URLs", "write urls: [https://...]")
    if kind == "file" and not urls:
        raise LockError(f"{where}: a file needs at least one URL", "add urls: [https://...]")
    if kind == "image" and entry.get("source") is not None:
        _taken_image(where, entry)
    elif kind == "image":
        if not isinstance(entry.get("ref"), str) or not IMAGE_REF.match(entry["ref"]):
            raise LockError(f"{where}: an image needs ref (like docker.io/library/nginx:1.17.10)", "add ref: ...")
        tag = entry.get("tag")
        if tag is None and "@" in entry["ref"]:
            raise LockError(f"{where}: ref names a digest, so the archive needs tag: <name:tag>",
                            "put the digest in digest: and a tagged name in ref:")
        if tag is not None and not (isinstance(tag, str) and IMAGE_REF.match(tag) and "@" not in tag
                                    and ":" in tag.rsplit("/", 1)[-1]):
            raise LockError(f"{where}: tag {tag!r} is not an image name with a tag", "write tag: k8s.gcr.io/pause:3.1")
        digest = entry.get("digest")
        if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)):
            raise LockError(f"{where}: digest must look like sha256:<64 hex>", "copy the manifest digest exactly")
        child = entry.get("child")
        if child is not None and not (isinstance(child, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", child)
                                      and digest and entry.get("arch")):
            raise LockError(f"{where}: child must be a sha256:<64 hex> manifest digest, beside digest: and arch:",
                            "copy the architecture's manifest digest from the list the digest pins")
    size = entry.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise LockError(f"{where}: size must be a whole number of bytes", "remove size or correct it")
    box, provider = entry.get("box"), entry.get("provider")
    if (box is None) != (provider is None) or (provider is not None and provider not in PROVIDERS):
        raise LockError(f"{where}: a box file needs both box: <name> and provider: one of {', '.join(PROVIDERS)}",
                        "add the missing key, e.g. box: ubuntu/xenial64 and provider: virtualbox")
    published = entry.get("published")
    if published is not None and not (isinstance(published, str) and re.match(r"^https?://", published)):
        raise LockError(f"{where}: published must be an http(s) URL of a checksum list", "write published: https://...")
    arch = entry.get("arch")
    if arch is not None and arch not in ARCHS:
        raise LockError(f"{where}: arch {arch!r} is not one of {', '.join(ARCHS)}",
                        "write arch: arm64 for what only arm64 guests need, or leave it out for both")
    provenance = entry.get("provenance")
    if provenance is not None and provenance not in PROVENANCE:
        raise LockError(f"{where}: provenance {provenance!r} is not one of {', '.join(PROVENANCE)}",
                        "say where the pin came from with one of those words")
    known = {"name", "kind", "path", "urls", "sha256", "sha512", "size", "ref", "digest", "box", "provider",
             "tag", "published", "provenance", "source", "member", "id", "arch", "child"}
    return Artifact(name=name, kind=kind, path=path, urls=tuple(urls), sha256=entry.get("sha256"),
                    sha512=entry.get("sha512"), size=size, ref=entry.get("ref"), digest=entry.get("digest"),
                    box=box, provider=provider, tag=entry.get("tag"), published=published, provenance=provenance,
                    source=entry.get("source"), member=entry.get("member"), id=entry.get("id"), arch=arch,
                    child=entry.get("child"),
                    extra={k: v for k, v in entry.items() if k not in known})


def _taken_image(where: str, entry: dict) -> None:
    """An image taken from another artifact of the lock (a release tarball) rather than a registry."""
    if not isinstance(entry["source"], str) or not NAME.match(entry["source"]):
        raise LockError(f"{where}: source must name a file artifact of this lock", "write source: <its name>")
    member = entry.get("member")
    if not isinstance(member, str) or not _inside(member):
        raise LockError(f"{where}: an image taken from {entry['source']} needs member: the path of its tarball "
                        "inside it", "write member: kubernetes/server/bin/<name>.tar")
    tag = entry.get("tag")
    if not (isinstance(tag, str) and IMAGE_REF.match(tag) and "@" not in tag and ":" in tag.rsplit("/", 1)[-1]):
        raise LockError(f"{where}: an image taken from {entry['source']} needs tag: the name kubeadm expects",
                        "write tag: k8s.gcr.io/<name>:<version>")
    for key in ("ref", "digest"):
        if entry.get(key) is not None:
            raise LockError(f"{where}: an image taken from {entry['source']} has no registry {key}",
                            f"remove {key}: (the image ID in id: pins it)")
    image_id = entry.get("id")
    if image_id is not None and not (isinstance(image_id, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)):
        raise LockError(f"{where}: id must look like sha256:<64 hex> (the image ID)", "copy the image ID exactly")


def _inside(path: str) -> bool:
    p = PurePosixPath(path)
    return (bool(path) and "\\" not in path and not p.is_absolute() and ".." not in p.parts
            and len(p.parts) > 0 and not path.endswith("/") and not re.match(r"^[A-Za-z]:", path))


# Where each setting's version shows in the lock: (what the pattern reads, the pattern); group 1 is the version.
VERSION_SPOTS = {
    "kubernetes": ("urls", re.compile(r"/(v[0-9][^/]*)/kubernetes-(?:node|server)-linux-amd64\.tar\.gz$")),
    "docker": ("paths", re.compile(r"^debs/docker/docker-ce_([^~_]+)~")),
    "cni": ("paths", re.compile(r"^cni/cni-plugins-amd64-v(.+)\.tgz$")),
    "crictl": ("paths", re.compile(r"^k8s/crictl-v(.+)-linux-amd64\.tar\.gz$")),
    "weave": ("tags", re.compile(r"^weaveworks/weave-kube:(.+)$")),
    "etcd": ("tags", re.compile(r"^k8s\.gcr\.io/etcd:(.+)$")),
    "coredns": ("tags", re.compile(r"^k8s\.gcr\.io/coredns:(.+)$")),
    "pause": ("tags", re.compile(r"^k8s\.gcr\.io/pause:(.+)$")),
}


def version_drift(versions: dict, lock: Lock) -> list[str]:
    """The settings' versions whose component the lock carries at another version, one phrase each.

    settings.yaml says which versions the lab runs (kubeadm's kubernetesVersion, the apt pins); the lock
    holds the bytes of exactly those versions (docs/design.md, "Versions: which, and the bytes"). An
    override such as LABKIT_VERSIONS__KUBERNETES=v1.15.11 without a matching lock would render a kubeadm
    config for binaries the bundle does not have. A component the lock does not carry at all (a test's
    small lock) is not judged here: doctor's missing-artifact count speaks for it."""
    seen = {"urls": [u for a in lock.artifacts for u in a.urls], "paths": [a.path for a in lock.artifacts],
            "tags": [a.image_tag for a in lock.artifacts if a.kind == "image"]}
    out = []
    for name, (where, pattern) in VERSION_SPOTS.items():
        found = sorted({m.group(1) for text in seen[where] for m in [pattern.search(text)] if m})
        if found and str(versions.get(name)) not in found:
            out.append(f"{name} {versions.get(name)} (the lock has {', '.join(found)})")
    return out
