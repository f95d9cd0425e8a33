#!/usr/bin/env python3
"""labkit's registry mirror inside the VM: the bundle's Docker Hub images, read-only, for the local
Docker daemon only (127.0.0.1), so the lab's own untagged pulls work offline.

The lab runs `kubectl run web --image nginx` and `... --image busybox`: untagged means :latest, which
Kubernetes pulls on every start (imagePullPolicy Always), and the VM is offline. Docker asks its
registry-mirrors (provision/files/docker-daemon.json) first for any Docker Hub image; this server
answers from the bundle's image archives (labkit/bundle/archive.py: the registry's own manifest and
blobs, byte for byte, under labkit-manifests/ and <digest hex>.tar.gz), under the names they were
taken with and, for a repository the bundle has one tag of, as :latest too (nginx -> nginx:1.17.1).
Anything else is 404 and Docker goes on to Docker Hub as usual.

Registry API v2, the part a pull uses: GET/HEAD /v2/, /v2/<name>/manifests/<tag or digest>,
/v2/<name>/blobs/<digest>. Nothing can be pushed. Python 3.5 and the standard library only (xenial's
python3). Installed and started by provision/docker.sh as labkit-mirror.service.

    labkit-mirror.py IMAGES_DIR [HOST:PORT]      (default 127.0.0.1:5000)
"""
import hashlib
import json
import os
import re
import shutil
import socketserver
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.oci.image.manifest.v1+json")
MANIFESTS_DIR = "labkit-manifests/"
NAME = re.compile(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$")


def hub_repository(repo_tag):
    """'nginx:1.17.1' -> ('library/nginx', '1.17.1'); None for another registry's image."""
    repo, _, tag = repo_tag.rpartition(":")
    if not repo or "/" in tag:
        return None
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return None  # k8s.gcr.io/..., quay.io/...: not Docker Hub
    return ("library/" + repo if "/" not in repo else repo), tag


def read_archive(path):
    """[(repo_tag, manifest bytes, {digest: member name})] of one docker-archive from the bundle."""
    out = []
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        top = json.loads(tar.extractfile("manifest.json").read().decode("utf-8"))
        stored = [tar.extractfile(n).read() for n in sorted(names) if n.startswith(MANIFESTS_DIR)]
        for entry in top:
            config_hex = entry["Config"][:-len(".json")]
            for doc in stored:
                manifest = json.loads(doc.decode("utf-8"))
                if (manifest.get("config") or {}).get("digest") != "sha256:" + config_hex:
                    continue
                members = {"sha256:" + config_hex: entry["Config"]}
                for layer in manifest.get("layers") or []:
                    hexdigest = layer["digest"].split(":", 1)[1]
                    member = next((n for n in (hexdigest + ".tar.gz", hexdigest + ".tar") if n in names), None)
                    if member is None:
                        break
                    members[layer["digest"]] = member
                else:
                    for repo_tag in entry.get("RepoTags") or []:
                        out.append((repo_tag, doc, members))
                break
    return out


class Index:
    """What the bundle's archives hold, read once and again when the folder changes (the bundle
    folder may be mounted after this service starts)."""

    def __init__(self, images_dir):
        self.images_dir = images_dir
        self.lock = threading.Lock()
        self.seen = None
        self.manifests = {}  # (repository, tag or digest) -> (media type, bytes, digest)
        self.blobs = {}  # digest -> (archive path, member name)

    def _stamp(self):
        try:
            return sorted((n, os.stat(os.path.join(self.images_dir, n)).st_mtime)
                          for n in os.listdir(self.images_dir) if n.endswith(".tar"))
        except OSError:
            return []

    def refresh(self):
        with self.lock:
            stamp = self._stamp()
            if stamp == self.seen:
                return
            manifests, blobs, tags = {}, {}, {}
            for name, _ in stamp:
                path = os.path.join(self.images_dir, name)
                try:
                    found = read_archive(path)
                except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
                    sys.stderr.write("labkit-mirror: skipping %s: %s\n" % (name, exc))
                    continue
                for repo_tag, doc, members in found:
                    where = hub_repository(repo_tag)
                    if where is None:
                        continue
                    repo, tag = where
                    media = json.loads(doc.decode("utf-8")).get("mediaType") or MANIFEST_TYPES[0]
                    digest = "sha256:" + hashlib.sha256(doc).hexdigest()
                    answer = (media, doc, digest)
                    manifests[(repo, tag)] = manifests[(repo, digest)] = answer
                    tags.setdefault(repo, set()).add(tag)
                    for blob, member in members.items():
                        blobs[blob] = (path, member)
            for repo, have in tags.items():  # the lab's untagged name: the bundle's one tag of it
                if "latest" not in have and len(have) == 1:
                    manifests[(repo, "latest")] = manifests[(repo, next(iter(have)))]
            self.manifests, self.blobs, self.seen = manifests, blobs, stamp


class Handler(BaseHTTPRequestHandler):
    server_version = "labkit-mirror"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("labkit-mirror: %s\n" % (fmt % args))

    def _send(self, status, body=b"", media="application/json", digest=None, length=None):
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _unknown(self, code):
        body = json.dumps({"errors": [{"code": code, "message": code.lower().replace("_", " ")}]}).encode()
        self._send(404, body)

    def do_GET(self):
        index = self.server.index
        path = self.path.split("?", 1)[0]
        if path in ("/v2", "/v2/"):
            return self._send(200, b"{}")
        found = NAME.match(path)
        if not found:
            return self._unknown("NAME_UNKNOWN")
        repo, kind, ref = found.groups()
        index.refresh()
        if kind == "manifests":
            answer = index.manifests.get((repo, ref))
            if answer is None:
                return self._unknown("MANIFEST_UNKNOWN")
            media, doc, digest = answer
            return self._send(200, doc, media, digest)
        where = index.blobs.get(ref)
        if where is None:
            return self._unknown("BLOB_UNKNOWN")
        archive, member = where
        with tarfile.open(archive) as tar:
            info = tar.getmember(member)
            self._send(200, b"", "application/octet-stream", ref, length=info.size)
            if self.command != "HEAD":
                shutil.copyfileobj(tar.extractfile(info), self.wfile, 1024 * 1024)

    do_HEAD = do_GET

    def _read_only(self):
        self._send(405, json.dumps({"errors": [{"code": "UNSUPPORTED", "message": "read-only mirror"}]}).encode())

    do_POST = do_PUT = do_PATCH = do_DELETE = _read_only


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: labkit-mirror.py IMAGES_DIR [HOST:PORT]\n")
        return 2
    host, _, port = (argv[2] if len(argv) == 3 else "127.0.0.1:5000").rpartition(":")
    server = Server((host, int(port)), Handler)
    server.index = Index(argv[1])
    server.index.refresh()
    sys.stderr.write("labkit-mirror: serving %d Docker Hub image name(s) from %s on %s:%s\n"
                     % (len([k for k in server.index.manifests if not k[1].startswith("sha256:")]), argv[1], host, port))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
