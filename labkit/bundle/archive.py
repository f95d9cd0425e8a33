"""docker-archive tarballs (the `docker save` format that Docker 18.09 `docker load`s), byte-for-byte
reproducible: the same image and name always give the same file, so its sha256 can be pinned.

    manifest.json                      [{"Config": "<hex>.json", "RepoTags": ["k8s.gcr.io/pause:3.1"],
    <config hex>.json                    "Layers": ["<hex>.tar.gz", ...]}]
    <layer blob hex>.tar.gz | .tar     the registry's blobs as they are (docker load decompresses)

Every tar header has mtime 0, owner 0/0, mode 0644; members in the order above.
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


def write(out: BinaryIO, repo_tag: str, config: dict, layers, blob: Callable[[str], Path],
          on_bytes: Optional[Callable[[int], None]] = None) -> tuple[str, int]:
    """Write the archive to `out`; returns (sha256 hex, size). blob(digest) -> path of a verified blob."""
    config_path = blob(config["digest"])
    config_json = json.loads(config_path.read_bytes())
    diff_ids = (config_json.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise RegistryError(f"{repo_tag}: the image config lists {len(diff_ids)} layers but the manifest {len(layers)}",
                            "the registry serves an inconsistent image: pin another digest")
    if config_json.get("os", "linux") != "linux" or config_json.get("architecture", "amd64") != "amd64":
        raise RegistryError(f"{repo_tag} is built for {config_json.get('os')}/{config_json.get('architecture')}, "
                            "not linux/amd64", "pin the linux/amd64 image")
    config_name = config["digest"].split(":", 1)[1] + ".json"
    names = [layer_name(d) for d in layers]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [repo_tag], "Layers": names}],
                          separators=(",", ":"), sort_keys=True).encode() + b"\n"
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
    return sink.sha256.hexdigest(), sink.size
