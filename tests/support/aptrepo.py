"""A bundle for the local apt repository (provision/aptrepo.sh), built here for T1 and T2.

The Kubernetes 1.15 binaries cannot be downloaded on this machine: the kubernetes-node, CNI and crictl
tarballs hold stand-in programs (tests/support/provision.kubernetes_stand_ins) at the real paths.
debs/base holds real Debian packages: what the guest (a Debian bookworm root filesystem) lacks for
the kubelet's Depends, downloaded once with Debian's apt into the test cache.
"""
from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

import yaml

from labkit.bundle import checksums, lock as lockmod
from tests.support.env import CACHE
from tests.support import provision as provision_bundle

# The kubelet's Depends beyond what a Debian minbase has.
KUBELET_DEPENDS = ["iptables", "iproute2", "socat", "ebtables", "ethtool", "conntrack"]


def base_debs(rootfs_tar: Path, packages: list[str]) -> list[provision_bundle.Deb]:
    """The .debs `rootfs_tar`'s system lacks for `packages`, downloaded once (apt checks their hashes)."""
    with tarfile.open(rootfs_tar) as tar:
        status = tar.extractfile("./var/lib/dpkg/status").read()
    key = hashlib.sha256(status + " ".join(packages).encode()).hexdigest()[:16]
    apt = provision_bundle.Apt(rootfs_tar, CACHE / "student-debs" / key)
    if not any((apt.work / "lists").glob("*Packages*")):
        apt.update()
    debs = apt.needed(packages)
    if not all(d.intact() for d in debs):
        apt.download(packages)
    return debs


def build(bundle: Path, version: str, debs: list) -> Path:
    """Stand-in Kubernetes tarballs and `debs` (as debs/base) in `bundle`, with its CHECKSUMS."""
    entries = provision_bundle.kubernetes_stand_ins(bundle, version)
    for d in debs:
        path = f"debs/base/{d.file.name.replace('%3a', '_')}"
        (bundle / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(d.file, bundle / path)
        entries.append({"name": f"deb-{d.package}", "kind": "file", "urls": [f"http://127.0.0.1:8787/{path}"],
                        "sha256": provision_bundle.sha256(bundle / path), "path": path})
    lock = bundle.parent / f"{bundle.name}.lock.yaml"
    lock.write_text(yaml.safe_dump({"artifacts": entries, "count": len(entries)}, sort_keys=False))
    checksums.write(lockmod.load(lock), bundle)
    return lock
