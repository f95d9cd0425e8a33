"""Images taken from a release tarball instead of a registry (lock entries with `source:` and `member:`).

Kubernetes 1.15 ships its control-plane images inside `kubernetes-server-linux-amd64.tar.gz` as
`docker save` tarballs (kubernetes/server/bin/<name>.tar), and the 1.15 changelog publishes that
tarball's sha512: the images are pinned by the publisher through it, not by a registry tag on first
use. One streaming pass over the (already verified) source spools each wanted member to disk and
rewrites it as labkit's archive under the name kubeadm expects (archive.from_save). What name the
v1.15.12 members carry is known only from the release tooling's history, not from the file itself:
before kubernetes PR #80047 (merged July 2019 for 1.16) build/lib/release.sh saved the amd64 image as
<registry>/<name>:<version>, so k8s.gcr.io/kube-apiserver:v1.15.12 is the most likely name; that PR gave
amd64 the `-amd64` suffix the other architectures had (kubernetes/sig-release PR #728: the suffix starts
at 1.16). A build with KUBE_DOCKER_REGISTRY set could also carry <registry>/<name>-amd64 as a second tag
(the example in PR #80000). kubeadm 1.15 asks for k8s.gcr.io/<name>:<version>. So the name inside the
member is checked with or without the suffix, any of its tags, and replaced by the lock's `tag`.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from labkit.bundle import archive, download
from labkit.bundle.registry import RegistryError
from labkit.errors import LabkitError


def take(source_file: Path, images, dest: Path, on_bytes: Optional[Callable[[str, int], None]] = None,
         cancel=None) -> dict:
    """{image name: (image ID, archive sha256, size) or LabkitError} for each image taken from `source_file`.
    An image whose lock entry has an id: gets its archive only if the ID matches."""
    def one(a, spool: Path):
        return _one(spool, a, dest, on_bytes)

    return _each_member(source_file, images, dest, one, cancel)


def image_ids(source_file: Path, images, dest: Path) -> dict:
    """{image name: image ID or LabkitError}, read from the source without writing any archive (the audit)."""
    import hashlib
    import json

    def one(a, spool: Path):
        try:
            with tarfile.open(spool, "r:") as tar:
                entry = json.loads(tar.extractfile("manifest.json").read())[0]
                return "sha256:" + hashlib.sha256(tar.extractfile(entry["Config"]).read()).hexdigest()
        except (tarfile.TarError, KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
            return LabkitError(f"{a.member} in its source is not a readable docker save tarball ({exc})",
                               "check member: in the lock")

    return _each_member(source_file, images, dest, one)


def _each_member(source_file: Path, images, dest: Path, one, cancel=None) -> dict:
    """One streaming pass over the source: each wanted member spooled to disk next to its image's archive,
    handed to one(artifact, spool path), and removed again."""
    wanted = {PurePosixPath(a.member).as_posix(): a for a in images}
    done: dict = {}
    try:
        with tarfile.open(source_file, "r|gz") as tar:
            for m in tar:
                a = wanted.get(PurePosixPath(m.name).as_posix())
                if a is None or a.name in done:
                    continue
                if cancel is not None and cancel.is_set():
                    raise download.Cancelled()
                spool = a.file(dest).with_name(PurePosixPath(a.path).name + ".save" + download.PART)
                spool.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with tar.extractfile(m) as src, open(spool, "wb") as out:
                        shutil.copyfileobj(src, out, 1024 * 1024)
                    done[a.name] = one(a, spool)
                finally:
                    spool.unlink(missing_ok=True)
    except (tarfile.TarError, EOFError, zlib.error) as exc:  # reading; a full disk goes up to fetch
        problem = LabkitError(f"its source {source_file.name} could not be read to the end ({exc})",
                              "run invoke bundle.verify (it names a damaged source), then bundle.fetch again")
        return {**{a.name: problem for a in images if a.name not in done}, **done}
    for a in images:
        done.setdefault(a.name, LabkitError(f"its source {source_file.name} has no member {a.member}",
                                            "check member: in the lock against the release tarball's listing"))
    return done


def _one(spool: Path, a, dest: Path, on_bytes):
    target = a.file(dest)
    work = target.with_name(target.name + ".blobs" + download.PART)
    part = download.part_of(target)
    try:
        name = PurePosixPath(a.image_tag.rsplit(":", 1)[0]).name
        with open(part, "wb") as out:
            image_id, sha256, size = archive.from_save(
                spool, a.image_tag, out, work, name, (lambda n: on_bytes(a.name, n)) if on_bytes else None,
                a.platform_arch)
        if a.id and image_id != a.id:
            return LabkitError(f"{a.member} in its source is image {image_id[:19]}…, the lock pins {a.id[:19]}…",
                               "the source is the pinned release tarball, so the lock's id is wrong: "
                               "re-pin with invoke bundle.lock --only " + a.name)
        os.replace(part, target)
        return image_id, sha256, size
    except RegistryError as exc:
        return LabkitError(f"{a.member} in its source {exc.message}", exc.fix)
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
