"""The provisioning part of the T2 test bundle, made from Debian's own packages and a local image.

The real bundle carries Ubuntu 16.04 .debs; the T2 VM is Debian bookworm, so its bundle carries
what *that* guest lacks, computed exactly: apt runs on this machine against the test box's own
package database and sources (read from the box's rootfs.tar), so "what would the guest install"
is answered without booting it, without root and without unpacking the 800 MB tree.

    debs/base/*.deb     socat, conntrack, ebtables, ethtool and whatever they pull in
    debs/docker/*.deb   docker.io and its dependencies (minus what base brings)
    images/*.tar        a FROM-scratch busybox image, built by the test dockerd, `docker save`d

Downloads go through apt (Debian's client) and are cached under ~/.cache/labkit-tests, so later
runs work offline. Run by hand: python -m tests.support.provision OUT_DIR --docker-host unix://...
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from labkit.bundle.hashing import file_digest as digest

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit-tests"
ROOTFS = CACHE / "debian-test-box" / "rootfs.tar"
ARM64_ROOTFS = CACHE / "debian-arm64-test-box" / "rootfs.tar"  # scripts/build-test-box arm64
BASE_PACKAGES = ["socat", "conntrack", "ebtables", "ethtool"]
# apparmor: Debian's kernel enables AppArmor, and dockerd refuses to start containers without
# apparmor_parser (docker.io Recommends it; ubuntu/xenial64 ships it). Recommends are not installed.
DOCKER_PACKAGES = ["docker.io", "apparmor"]
IMAGE_REPO = "labkit-test/busybox"
# apt-get --print-uris: 'URL' FILE SIZE ALGO:HEX (apt shows one of the Release file's hashes).
PRINT_URI = re.compile(r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) (?P<algo>\w+):(?P<hex>[0-9a-f]+)$")
APT_ALGOS = {"MD5Sum": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    file: Path  # in the download cache
    url: str  # where Debian serves it (kept in the lock as `origin`)
    algo: str  # the hash apt printed for it (checked after the download)
    hex: str
    size: int

    def intact(self) -> bool:
        return self.file.is_file() and self.file.stat().st_size == self.size and digest(self.file, self.algo) == self.hex


class Apt:
    """apt-get with the test box's dpkg status and sources, its own lists and cache: the guest's view
    (its architecture too: without it apt on this amd64 machine would pick amd64 .debs for an arm64 box)."""

    def __init__(self, rootfs_tar: Path, work: Path, arch: str = "amd64"):
        self.work = work
        self.arch = arch
        for d in ("lists/partial", "archives/partial", "trusted.gpg.d", "sources.list.d"):
            (work / d).mkdir(parents=True, exist_ok=True)
        members = {"./var/lib/dpkg/status": work / "status", "./etc/apt/sources.list": work / "sources.list"}
        with tarfile.open(rootfs_tar) as tar:
            for name, dest in members.items():
                dest.write_bytes(tar.extractfile(name).read())
            for m in tar.getmembers():  # the box's archive keys: apt trusts what the guest trusts
                if m.name.startswith("./etc/apt/trusted.gpg.d/") and m.isfile():
                    (work / "trusted.gpg.d" / Path(m.name).name).write_bytes(tar.extractfile(m).read())
        (work / "extended_states").touch()

    def run(self, *args: str, archives: str = "archives") -> str:
        w = self.work
        opts = {
            "Dir::State::status": w / "status", "Dir::State::Lists": w / "lists",
            "Dir::State::extended_states": w / "extended_states",
            "Dir::Cache": w, "Dir::Cache::archives": w / archives,
            "Dir::Etc::SourceList": w / "sources.list", "Dir::Etc::SourceParts": w / "sources.list.d",
            "Dir::Etc::TrustedParts": w / "trusted.gpg.d", "Debug::NoLocking": "1",
            "APT::Install-Recommends": "false",
            "APT::Architecture": self.arch, "APT::Architectures": self.arch,
        }
        cmd = ["apt-get", "-q", *[f"-o{k}={v}" for k, v in opts.items()], *args]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return out.stdout

    def update(self) -> None:
        self.run("update")

    def needed(self, packages: list[str]) -> list[Deb]:
        """The .debs the guest would install for `packages` (exact versions, with Debian's hashes)."""
        debs = []
        # apt leaves out what its archives directory already holds: ask with an empty one.
        (self.work / "empty-archives" / "partial").mkdir(parents=True, exist_ok=True)
        listing = self.run("install", "--print-uris", "-qq", "--no-install-recommends", *packages, archives="empty-archives")
        for line in listing.splitlines():
            m = PRINT_URI.match(line.strip())
            if m:
                package, version = m["file"].split("_")[:2]
                debs.append(Deb(package, version.replace("%3a", ":"), self.work / "archives" / m["file"],
                                m["url"], APT_ALGOS[m["algo"]], m["hex"], int(m["size"])))
        return debs

    def download(self, packages: list[str]) -> None:
        self.run("install", "--download-only", "-y", "--no-install-recommends", *packages)


def sha256(path: Path) -> str:
    return digest(path, "sha256")


def guest_debs(rootfs_tar: Path = ROOTFS, arch: str = "amd64") -> tuple[list[Deb], list[Deb]]:
    """(base debs, docker debs) the test box lacks, downloaded once into the cache."""
    key = hashlib.sha256(_box_identity(rootfs_tar).encode()).hexdigest()[:16]
    apt = Apt(rootfs_tar, CACHE / "provision-debs" / key, arch)
    if not any((apt.work / "lists").glob("*Packages*")):
        apt.update()
    base = apt.needed(BASE_PACKAGES)
    everything = apt.needed(BASE_PACKAGES + DOCKER_PACKAGES)
    base_files = {d.file for d in base}
    docker = [d for d in everything if d.file not in base_files]
    if not all(d.intact() for d in everything):
        apt.download(BASE_PACKAGES + DOCKER_PACKAGES)  # apt checks each file against the signed index
    for d in everything:
        if not d.intact():
            raise RuntimeError(f"{d.file.name} does not match the {d.algo} apt announced")
    return base, docker


def _box_identity(rootfs_tar: Path) -> str:
    """What decides the package set: the box's installed packages and its sources."""
    with tarfile.open(rootfs_tar) as tar:
        return "".join(tar.extractfile(n).read().decode() for n in ("./var/lib/dpkg/status", "./etc/apt/sources.list"))


def upstream_version(debian_version: str) -> str:
    """'20.10.24+dfsg1-1+b3' -> '20.10.24': what `docker version` starts with."""
    version = debian_version.split(":", 1)[-1]
    return re.split(r"[+~-]", version, maxsplit=1)[0]


def arm64_busybox(rootfs_tar: Path) -> tuple[Path, str]:
    """Debian's arm64 busybox-static (the host's is x86-64 and would not run in an arm64 guest),
    downloaded through apt with the arm64 box's view, unpacked once. Returns (binary, version)."""
    key = hashlib.sha256(_box_identity(rootfs_tar).encode()).hexdigest()[:16]
    apt = Apt(rootfs_tar, CACHE / "provision-debs" / key, "arm64")
    if not any((apt.work / "lists").glob("*Packages*")):
        apt.update()
    (deb,) = apt.needed(["busybox-static"])
    if not deb.intact():
        apt.download(["busybox-static"])
    unpacked = apt.work / f"busybox-static-{deb.version}"
    if not (unpacked / "bin/busybox").is_file():
        subprocess.run(["dpkg-deb", "-x", str(deb.file), str(unpacked)], check=True, capture_output=True)
    return unpacked / "bin/busybox", upstream_version(deb.version)


def busybox_image(docker_url: str, out: Path, arch: str = "amd64", rootfs_tar: Path = ROOTFS) -> tuple[str, str]:
    """A FROM-scratch image with a static busybox for `arch`, as a docker-archive. Returns (tag, image ID)."""
    if arch == "amd64":
        busybox = shutil.which("busybox")
        if not busybox:
            raise RuntimeError("busybox (Debian busybox-static) is not installed")
        banner = subprocess.run([busybox], capture_output=True, text=True).stdout.splitlines()[0]
        version = re.search(r"v(\d+\.\d+\.\d+)", banner).group(1)
    else:
        busybox, version = arm64_busybox(rootfs_tar)
    tag = f"{IMAGE_REPO}:{version}"
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    if arch == "amd64":
        subprocess.run(["docker", "--host", docker_url, "import", "-c", 'CMD ["/bin/sh"]', "-", tag],
                       input=layer.getvalue(), check=True, capture_output=True)
        save_image(docker_url, tag, out)
        image_id = subprocess.run(["docker", "--host", docker_url, "image", "inspect", "--format", "{{.Id}}", tag],
                                  check=True, capture_output=True, text=True).stdout.strip()
        return tag, image_id
    # `docker import --platform` is ignored by a daemon without a multi-platform image store (this one):
    # the arm64 image is written by labkit's own archive writer, its config saying arm64.
    return tag, _foreign_image(layer.getvalue(), arch, tag, out)


def _foreign_image(layer: bytes, arch: str, tag: str, out: Path) -> str:
    """A one-layer image for `arch` as a docker-archive (labkit.bundle.archive.write). Returns its image ID."""
    import json
    import tempfile

    from labkit.bundle import archive
    from labkit.bundle.registry import TAR_LAYERS

    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}, sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        blobs = {config_digest: Path(tmp, "config"), layer_digest: Path(tmp, "layer")}
        blobs[config_digest].write_bytes(config)
        blobs[layer_digest].write_bytes(layer)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            archive.write(fh, tag, {"digest": config_digest},
                          [{"digest": layer_digest, "mediaType": TAR_LAYERS[1], "size": len(layer)}],
                          blobs.__getitem__, arch=arch)
    return config_digest


def save_image(docker_url: str, tag: str, out: Path) -> None:
    """`docker save` one image of the test dockerd as a docker-archive (what the bundle carries)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["docker", "--host", docker_url, "save", "-o", str(out), tag], check=True, capture_output=True)


def entries(bundle: Path, mirror: str, docker_url: str, images: tuple = (),
            rootfs_tar: Path = ROOTFS, arch: str = "amd64") -> tuple[list[dict], dict]:
    """Put the debs and the images into `bundle`; return their lock entries and facts for the tests.

    `images`: tags already in the test dockerd (stand-ins for the real bundle's images) to save too.
    `arch`: the test box's; an arm64 bundle keeps its files under arm64/ as the real lock does.
    """
    base, docker = guest_debs(rootfs_tar, arch)
    top = "" if arch == "amd64" else f"{arch}/"
    out = []
    for group, debs in (("base", base), ("docker", docker)):
        for d in debs:
            path = f"{top}debs/{group}/{d.file.name.replace('%3a', '_')}"  # no epoch escape: URLs stay plain
            dest = bundle / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(d.file, dest)
            out.append({"name": f"deb-{_safe(d.package)}", "kind": "file", "urls": [f"{mirror}/{path}"],
                        "sha256": sha256(dest), "size": d.size, "path": path, "origin": d.url})
    image = bundle / f"{top}images" / "busybox.tar"
    busybox_tag, busybox_id = busybox_image(docker_url, image, arch, rootfs_tar)
    archives = [(busybox_tag, "busybox", busybox_id)]
    for tag in images:
        name = _safe(tag.rsplit("/", 1)[-1].replace(":", "-"))
        save_image(docker_url, tag, bundle / f"{top}images" / f"{name}.tar")
        archives.append((tag, name, subprocess.run(
            ["docker", "--host", docker_url, "image", "inspect", "--format", "{{.Id}}", tag],
            check=True, capture_output=True, text=True).stdout.strip()))
    for tag, name, image_id in archives:
        path = f"{top}images/{name}.tar"
        # Built here, never pushed: no registry manifest digest exists, so the image ID (the digest
        # of its config, which names every layer) pins it instead.
        out.append({"name": f"image-{name}", "kind": "image", "ref": tag, "digest": image_id, "urls": [f"{mirror}/{path}"],
                    "sha256": sha256(bundle / path), "size": (bundle / path).stat().st_size, "path": path})
    engine = next(d for d in docker if d.package == "docker.io")
    facts = {"docker_version": upstream_version(engine.version), "image_tags": [t for t, _, _ in archives],
             "base_packages": {d.package: d.version for d in base},
             "docker_packages": {d.package: d.version for d in docker}}
    return out, facts


def _safe(package: str) -> str:
    return re.sub(r"[^a-z0-9._-]", "-", package.lower())


if __name__ == "__main__":  # build a stand-alone provisioning bundle by hand
    import argparse

    import yaml

    from labkit.bundle import checksums, lock as lockmod

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="directory for bundle/ and test-bundle.lock.yaml")
    p.add_argument("--docker-host", required=True, help="a running dockerd to build the image with (unix://...)")
    p.add_argument("--rootfs", type=Path, default=ROOTFS, help="the test box's rootfs.tar")
    a = p.parse_args()
    bundle_dir = a.out / "bundle"
    found, info = entries(bundle_dir, "http://127.0.0.1:8000", a.docker_host, rootfs_tar=a.rootfs)
    lock_file = a.out / "test-bundle.lock.yaml"
    lock_file.write_text(yaml.safe_dump({"artifacts": found, "count": len(found)}, sort_keys=False))
    checksums.write(lockmod.load(lock_file), bundle_dir)
    print(yaml.safe_dump(info, sort_keys=False))


# --- stand-ins for what cannot be downloaded here ---------------------------------------------

STAND_IN = """#!/bin/sh
# labkit T2 stand-in for {name} {version}: Kubernetes 1.15's binaries cannot be downloaded on the
# test machine. It answers the version queries provision/kubernetes.sh makes, nothing else.
case "$*" in
  "version -o short") echo {version} ;;
  "--version") echo "Kubernetes {version}" ;;
  "version --client --short") echo "Client Version: {version}" ;;
  *) echo "{name}: labkit T2 stand-in" >&2; exit 1 ;;
esac
"""


def _tar_gz(out: Path, members: dict) -> None:
    """A .tar.gz of executable text files: {member path: content}."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))


def kubernetes_stand_ins(bundle: Path, version: str) -> list[dict]:
    """The kubernetes step's three artifacts, with stand-in programs, at the bundle contract's paths."""
    node = {f"kubernetes/node/bin/{b}": STAND_IN.format(name=b, version=version) for b in ("kubeadm", "kubelet", "kubectl")}
    cni = {f"./{p}": f"#!/bin/sh\necho 'CNI {p}: labkit T2 stand-in' >&2\nexit 1\n" for p in ("bridge", "loopback", "portmap")}
    crictl = {"crictl": "#!/bin/sh\necho 'crictl: labkit T2 stand-in' >&2\nexit 1\n"}
    out = []
    for name, path, members in (("kubernetes-node", "k8s/kubernetes-node-linux-amd64.tar.gz", node),
                                ("cni-plugins", "cni/cni-plugins-amd64-v0.7.5.tgz", cni),
                                ("crictl", "k8s/crictl-v1.13.0-linux-amd64.tar.gz", crictl)):
        _tar_gz(bundle / path, members)
        out.append({"name": name, "kind": "file", "urls": [f"http://127.0.0.1:8787/{path}"],
                    "sha512": digest(bundle / path, "sha512"), "path": path})
    return out
