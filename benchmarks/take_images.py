#!/usr/bin/env python3
"""How long bundle.fetch takes to take the four control-plane images out of a server tarball
(labkit/bundle/derive.py: one streaming pass, layers checked and gzip-compressed), against the time
`gzip -6` alone needs for the same layer bytes (the dominant cost; goal: <= 1.5x).

A stand-in kubernetes-server-linux-amd64.tar.gz is built first from real ELF files of this machine
(/usr/bin, /usr/lib, /usr/libexec: they compress like the Go binaries in the real images), four
`docker save` tarballs of the given total size, split like the 1.15 images (apiserver the largest).
usage (from a fresh clone, after `python3 -m venv .venv && .venv/bin/pip install -e .`):
    .venv/bin/python benchmarks/take_images.py [TOTAL_MB]        (default 400)
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SPLIT = {"kube-apiserver": 0.38, "kube-controller-manager": 0.30, "kube-scheduler": 0.16, "kube-proxy": 0.16}


def elf_files():
    for top in ("/usr/bin", "/usr/lib", "/usr/libexec", "/usr/sbin"):
        for p in sorted(Path(top).rglob("*")):
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_size > 200_000:
                    with open(p, "rb") as fh:
                        if fh.read(4) == b"\x7fELF":
                            yield p
            except OSError:
                continue


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def layer_of(files, size):
    buf, used = io.BytesIO(), 0
    with tarfile.open(fileobj=buf, mode="w") as t:
        while used < size:
            p = next(files)
            data = p.read_bytes()[: size - used]
            add(t, f"usr/local/bin/{used}-{p.name}", data)
            used += len(data)
    return buf.getvalue()


def docker_save(name, layers):
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]}}).encode()
    cid = hashlib.sha256(config).hexdigest()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        paths = []
        for i, x in enumerate(layers):
            paths.append(f"{i:02d}{cid[:60]}/layer.tar")
            add(t, paths[-1], x)
        add(t, f"{cid}.json", config)
        add(t, "manifest.json", json.dumps([{"Config": f"{cid}.json", "Layers": paths,
                                             "RepoTags": [f"k8s.gcr.io/{name}-amd64:v1.15.12"]}]).encode())
    return buf.getvalue()


def main():
    from labkit.bundle import derive, lock

    total = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    with tempfile.TemporaryDirectory(prefix="labkit-take-bench-") as tmp:
        tmp = Path(tmp)
        files = iter(list(elf_files()) * 50)
        layers = {n: [layer_of(files, int(total * share * 1e6 * 0.95)), layer_of(files, int(total * share * 1e6 * 0.05))]
                  for n, share in SPLIT.items()}
        raw = tmp / "layers.bin"
        with open(raw, "wb") as fh:
            for pair in layers.values():
                for x in pair:
                    fh.write(x)
        source = tmp / "sources/kubernetes-server-linux-amd64.tar.gz"
        source.parent.mkdir()
        with tarfile.open(source, "w:gz") as t:
            for n, pair in layers.items():
                add(t, f"kubernetes/server/bin/{n}.tar", docker_save(n, pair))
        entries = "".join(f"""  - name: {n}
    kind: image
    source: kubernetes-server
    member: kubernetes/server/bin/{n}.tar
    tag: k8s.gcr.io/{n}:v1.15.12
    path: images/{n}-v1.15.12.tar
""" for n in SPLIT)
        (tmp / "lock.yaml").write_text(f"""artifacts:
  - name: kubernetes-server
    kind: file
    urls: [https://example.invalid/kubernetes-server-linux-amd64.tar.gz]
    sha512: {hashlib.sha512(source.read_bytes()).hexdigest()}
    path: sources/kubernetes-server-linux-amd64.tar.gz
{entries}count: {len(SPLIT) + 1}
""")
        lk = lock.load(tmp / "lock.yaml")
        images = [lk.get(n) for n in SPLIT]
        started = time.perf_counter()
        got = derive.take(source, images, tmp)
        took = time.perf_counter() - started
        bad = [n for n, r in got.items() if not isinstance(r, tuple)]
        assert not bad, got
        out = sum(r[2] for r in got.values())
        started = time.perf_counter()
        subprocess.run(["gzip", "-6", "-c", str(raw)], check=True, stdout=subprocess.DEVNULL)
        ref = time.perf_counter() - started
        size = raw.stat().st_size
        print(f"layers (uncompressed)      {size / 1e6:8.1f} MB in 4 images, source {source.stat().st_size / 1e6:.1f} MB")
        print(f"labkit derive.take         {took:8.1f} s   {size / 1e6 / took:6.1f} MB/s  -> archives {out / 1e6:.1f} MB")
        print(f"gzip -6 of the same bytes  {ref:8.1f} s   {size / 1e6 / ref:6.1f} MB/s")
        print(f"ratio                      {took / ref:8.2f}x  (goal <= 1.5x)")


if __name__ == "__main__":
    main()
