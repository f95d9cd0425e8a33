"""The T2 test bundle: what the Debian test VM gets instead of the real (Ubuntu 16.04) bundle.

It has the same layout and the same CHECKSUMS as a real bundle, so vm.up and provision/ take the
real code paths: the box is added from the bundle after its hash is checked, and every artifact is
checked in the VM before use.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from labkit.bundle import checksums, lock as lockmod
from labkit.bundle.hashing import file_digest

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit-tests"
BOX_FILE = CACHE / "debian-test-box" / "labkit-debian-test.box"
BOX_NAME = "labkit/debian-test"
ARM64_BOX_FILE = CACHE / "debian-arm64-test-box" / "labkit-debian-test.box"  # scripts/build-test-box arm64
ARM64_BOX_NAME = "labkit/debian-arm64-test"


def sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def place(src: Path, dest: Path) -> None:
    """Hard-link when possible (the box is 400 MB), copy otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def file_entry(bundle: Path, mirror: str, src: Path, name: str, path: str, **extra) -> dict:
    """Seed the bundle with `src` (as a USB-stick copy would) and describe it as the lock does."""
    place(src, bundle / path)
    return {"name": name, "kind": "file", "urls": [f"{mirror}/{path}"], "sha256": sha256(src),
            "size": src.stat().st_size, "path": path, **extra}


def build(bundle: Path, mirror: str, docker_url: str, images: tuple = (), arch: str = "amd64") -> tuple[Path, dict]:
    """Fill `bundle` and write its lock beside it; returns the lock's path and facts for the tests.

    `mirror` is the URL of a local HTTP server serving the same files (the lock's urls).
    `docker_url`: the test dockerd, which builds the bundle's image archives; `images` are tags in
    it to carry too (see provision_bundle.entries).
    """
    from tests.support import provision as provision_bundle

    if arch == "amd64":
        entries = [file_entry(bundle, mirror, BOX_FILE, "box-libvirt", "boxes/labkit-debian-test.box",
                              box=BOX_NAME, provider="libvirt")]
        provisioning, facts = provision_bundle.entries(bundle, mirror, docker_url, images)
    else:  # the arm64 test box and its .debs, under arm64/ as in the real lock
        entries = [file_entry(bundle, mirror, ARM64_BOX_FILE, "box-libvirt-arm64", "arm64/boxes/labkit-debian-test.box",
                              box=ARM64_BOX_NAME, provider="libvirt", arch="arm64")]
        provisioning, facts = provision_bundle.entries(bundle, mirror, docker_url, images,
                                                       provision_bundle.ARM64_ROOTFS, arch)
        for e in provisioning:
            e["arch"] = arch
    entries += provisioning
    lock_path = bundle.parent / "test-bundle.lock.yaml"
    lock_path.write_text(yaml.safe_dump({"artifacts": entries, "count": len(entries)}, sort_keys=False))
    checksums.write(lockmod.load(lock_path), bundle)
    return lock_path, facts
