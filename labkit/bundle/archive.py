"""docker-archive tarballs (the `docker save` format that Docker 18.09 `docker load`s), byte-for-byte
reproducible: the same image and name always give the same file, so its sha256 can be pinned.

    manifest.json                      [{"Config": "<hex>.json", "RepoTags": ["k8s.gcr.io/pause:3.1"],
    <config hex>.json                    "Layers": ["<hex>.tar.gz", ...]}]
    <layer blob hex>.tar.gz | .tar     the registry's blobs as they are (docker load decompresses)
    labkit-manifests/<hex>.json        the registry's manifest list (if any) and manifest, as sent

Every tar header has mtime 0, owner 0/0, mode 0644; members in the order above. `docker load`
ignores labkit-manifests/; they make the archive checkable offline against the lock's digest alone
(check()): the digest pins the list, the list the manifest, the manifest every blob.

An image taken from a release tarball (`docker save` output, no registry) is rewritten by from_save()
into the same layout without labkit-manifests/: its layers gzip-compressed as `<diff_id hex>.tar.gz`.
It is pinned by its image ID, the sha256 of its config, which lists every layer's diff_id (the sha256
of the uncompressed layer, what `docker load` itself checks); check_taken() checks exactly that chain.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from labkit.bundle.registry import GZIP_LAYERS, RegistryError


class HashingWriter(io.RawIOBase):
    """Write-through file wrapper that hashes and counts what passes."""

    def __init__(self, fh: BinaryIO, on_bytes: Optional[Callable[[int], None]] = None):
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.fh.write(data)
        self.sha256.update(data)
        self.size += len(data)
        if self.on_bytes:
            self.on_bytes(len(data))
        return len(data)


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def layer_name(descriptor: dict) -> str:
    hexdigest = descriptor["digest"].split(":", 1)[1]
    return f"{hexdigest}.tar.gz" if descriptor.get("mediaType") in GZIP_LAYERS else f"{hexdigest}.tar"


MANIFESTS_DIR = "labkit-manifests/"


def _docker_manifest(repo_tag: str, config: dict, layers) -> bytes:
    return json.dumps([{"Config": config["digest"].split(":", 1)[1] + ".json", "RepoTags": [repo_tag],
                        "Layers": [layer_name(d) for d in layers]}], separators=(",", ":"), sort_keys=True).encode() + b"\n"


def write(out: BinaryIO, repo_tag: str, config: dict, layers, blob: Callable[[str], Path],
          on_bytes: Optional[Callable[[int], None]] = None, documents: tuple = (), arch: str = "amd64"
          ) -> tuple[str, int]:
    """Write the archive to `out`; returns (sha256 hex, size). blob(digest) -> path of a verified blob.
    `arch`: the architecture the image must be built for (the guest's)."""
    config_path = blob(config["digest"])
    config_json = json.loads(config_path.read_bytes())
    diff_ids = (config_json.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise RegistryError(f"{repo_tag}: the image config lists {len(diff_ids)} layers but the manifest {len(layers)}",
                            "the registry serves an inconsistent image: pin another digest")
    if config_json.get("os", "linux") != "linux" or config_json.get("architecture", "amd64") != arch:
        raise RegistryError(f"{repo_tag} is built for {config_json.get('os')}/{config_json.get('architecture')}, "
                            f"not linux/{arch}", f"pin the linux/{arch} image")
    config_name = config["digest"].split(":", 1)[1] + ".json"
    names = [layer_name(d) for d in layers]
    manifest = _docker_manifest(repo_tag, config, layers)
    sink = HashingWriter(out, on_bytes)
    # GNU format: no pax headers with host-dependent fields; all our names are short anyway
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_member("manifest.json", len(manifest)), io.BytesIO(manifest))
        with open(config_path, "rb") as fh:
            tar.addfile(_member(config_name, config_path.stat().st_size), fh)
        done = set()
        for desc, name in zip(layers, names):
            if name in done:  # the same blob twice in one image (empty layers): store it once
                continue
            done.add(name)
            path = blob(desc["digest"])
            with open(path, "rb") as fh:
                tar.addfile(_member(name, path.stat().st_size), fh)
        for doc in documents:
            tar.addfile(_member(f"{MANIFESTS_DIR}{hashlib.sha256(doc).hexdigest()}.json", len(doc)), io.BytesIO(doc))
    return sink.sha256.hexdigest(), sink.size


def check_image(path: Path, artifact) -> Optional[str]:
    """check() or check_taken(), whichever pins the lock's image: None if the archive is that image."""
    if artifact.source:
        return check_taken(path, artifact.id, artifact.image_tag)
    return check(path, artifact.digest, artifact.image_tag, artifact.platform_arch, artifact.child)


TAKEN_LAYER = GZIP_LAYERS[0]  # the media type from_save's layers get (gzip, named by their diff_id)


def from_save(save: Path, repo_tag: str, out: BinaryIO, work: Path, expect_name: str,
              on_bytes: Optional[Callable[[int], None]] = None, arch: str = "amd64") -> tuple[str, str, int]:
    """Rewrite a `docker save` tarball holding one image as labkit's archive named `repo_tag`.
    Returns (image ID, sha256 hex of the archive, size). `expect_name`: the repository's last path
    component the image must carry in save's RepoTags (with or without an architecture suffix), so a
    member mapped to the wrong name is caught. Layers are compressed into `work` first."""
    import gzip

    try:
        with tarfile.open(save, "r:") as tar:
            entries = json.loads(tar.extractfile("manifest.json").read())
            if not isinstance(entries, list) or len(entries) != 1:
                raise RegistryError(f"holds {len(entries)} images, not one", "check member: in the lock")
            entry = entries[0]
            tags = entry.get("RepoTags") or []
            names = {t.rsplit(":", 1)[0].rsplit("/", 1)[-1] for t in tags}
            if not names & {expect_name, f"{expect_name}-{arch}"}:
                raise RegistryError(f"is tagged {', '.join(tags) or 'nothing'}, not {expect_name}",
                                    "check member: in the lock")
            config = tar.extractfile(entry["Config"]).read()
            image_id = "sha256:" + hashlib.sha256(config).hexdigest()
            diff_ids = ((json.loads(config).get("rootfs") or {}).get("diff_ids")) or []
            if len(diff_ids) != len(entry["Layers"]):
                raise RegistryError(f"lists {len(entry['Layers'])} layers but its config {len(diff_ids)}",
                                    "the tarball is damaged: fetch its source again")
            work.mkdir(parents=True, exist_ok=True)
            (work / image_id.split(":", 1)[1]).write_bytes(config)
            for layer, diff_id in zip(entry["Layers"], diff_ids):
                packed = work / diff_id.split(":", 1)[1]
                h, fh = hashlib.sha256(), tar.extractfile(layer)
                # level 6, gzip's and Docker's default; Python's 9 took 3x as long in benchmarks/take_images.py
                # for the same archive size (8.2 MB from 20 MB of layers either way)
                with open(packed, "wb") as raw, \
                        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                    for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                        h.update(chunk)
                        gz.write(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                if "sha256:" + h.hexdigest() != diff_id:
                    raise RegistryError(f"has a layer {layer} that does not match its config",
                                        "the tarball is damaged: fetch its source again")
    except (tarfile.TarError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RegistryError(f"is not a readable docker save tarball ({exc})", "check member: in the lock") from None
    layers = [{"digest": d, "mediaType": TAKEN_LAYER} for d in diff_ids]
    sha256, size = write(out, repo_tag, {"digest": image_id}, layers, lambda d: work / d.split(":", 1)[1], arch=arch)
    return image_id, sha256, size


def check_taken(path: Path, image_id: str, repo_tag: str) -> Optional[str]:
    """None if the archive holds exactly the image `image_id` pins (config, every layer by its diff_id,
    decompressed), named `repo_tag`; else what is wrong, as a phrase."""
    import gzip
    import zlib

    want_config = image_id.split(":", 1)[1] + ".json"
    try:
        with tarfile.open(path, "r:") as tar:
            members = {m.name: m for m in tar if m.isfile()}
            if len(members) != len(tar.getmembers()):
                return "has an unexpected member that is not a file"
            if "manifest.json" not in members:
                return "lacks manifest.json"
            if want_config not in members:
                return "does not carry the config of the pinned image ID (fetch it again)"
            config = tar.extractfile(members[want_config]).read()
            if hashlib.sha256(config).hexdigest() != image_id.split(":", 1)[1]:
                return f"has a {want_config} that does not match the image ID"
            diff_ids = (json.loads(config).get("rootfs") or {}).get("diff_ids") or []
            layers = [{"digest": d, "mediaType": TAKEN_LAYER} for d in diff_ids]
            want = {"manifest.json", want_config, *(layer_name(d) for d in layers)}
            extra = sorted(set(members) - want)
            if extra:
                return f"has members the image does not name ({extra[0]})"
            for d in {d["digest"] for d in layers}:
                name = layer_name({"digest": d, "mediaType": TAKEN_LAYER})
                if name not in members:
                    return f"lacks {name}"
                h = hashlib.sha256()
                with gzip.GzipFile(fileobj=tar.extractfile(members[name])) as gz:
                    for chunk in iter(lambda: gz.read(1024 * 1024), b""):
                        h.update(chunk)
                if "sha256:" + h.hexdigest() != d:
                    return f"has a {name} that does not match its diff_id"
            if tar.extractfile(members["manifest.json"]).read() != _docker_manifest(
                    repo_tag, {"digest": image_id}, layers):
                return f"is not tagged {repo_tag} as the lock says"
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, AttributeError) as exc:
        return f"not a readable image archive ({exc})"
    return None


def check(path: Path, digest: str, repo_tag: str, arch: str = "amd64", child: Optional[str] = None) -> Optional[str]:
    """None if the archive holds exactly the linux/<arch> image that `digest` pins, named `repo_tag`;
    else what is wrong, as a phrase. Reads the whole file once: measured on a 220 MB archive, 1.3 s against
    0.8 s for a plain sha256 of the file (one core; bundle.verify runs several at once)."""
    from labkit.bundle.registry import pick_platform

    sums, small = {}, {}
    try:
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                if not m.isfile():
                    return f"has an unexpected member {m.name}"
                h, fh, kept = hashlib.sha256(), tar.extractfile(m), bytearray()
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    h.update(chunk)
                    if m.name.endswith(".json") and len(kept) < 4 * 1024 * 1024:
                        kept += chunk
                sums[m.name], small[m.name] = h.hexdigest(), bytes(kept)
    except (tarfile.TarError, OSError, EOFError) as exc:
        return f"not a readable image archive ({exc})"
    docs = {name[len(MANIFESTS_DIR):-5]: data for name, data in small.items() if name.startswith(MANIFESTS_DIR)}
    top = docs.get(digest.split(":", 1)[1])
    if top is None:
        return "does not carry the manifest of the pinned digest (fetch it again)"
    try:
        manifest = json.loads(top)
        if "manifests" in manifest:  # a list: its linux/<arch> entry names the manifest
            entry = pick_platform(manifest, arch=arch)
            if child and entry["digest"] != child:
                return f"holds the list's linux/{arch} entry {entry['digest'][:19]}…, not the child the lock records"
            manifest = json.loads(docs[entry["digest"].split(":", 1)[1]])
        config, layers = manifest["config"], manifest["layers"]
        want = {"manifest.json": None, config["digest"].split(":", 1)[1] + ".json": config["digest"]}
        want.update({layer_name(d): d["digest"] for d in layers})
    except (ValueError, KeyError, TypeError, RegistryError):
        return f"carries a manifest that does not lead to a linux/{arch} image"
    for name, pinned in want.items():
        if name not in sums:
            return f"lacks {name}"
        if pinned is not None and sums[name] != pinned.split(":", 1)[1]:
            return f"has a {name} that does not match its digest"
    extra = [n for n in sums if n not in want and not n.startswith(MANIFESTS_DIR)]
    if extra:
        return f"has members the image does not name ({extra[0]})"
    if small["manifest.json"] != _docker_manifest(repo_tag, config, layers):
        return f"is not tagged {repo_tag} as the lock says"
    return None
