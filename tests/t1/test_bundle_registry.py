"""Images without a Docker daemon: a REAL registry (Debian's docker-registry) fed by a real dockerd,
fetched by the kit through the registry HTTP API into docker-archive tarballs that the same dockerd
then `docker load`s and runs. Also a manifest list and real token auth (the registry checks our JWTs).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from tests.support.bundle import invoke, write_lock
from tests.support.env import free_port, need_binary, need_root, stop_process
from labkit.bundle import fetch, lock
from labkit.bundle import archive
from labkit.bundle.archive import MANIFESTS_DIR
from tests.support.dockerd import docker, load_and_run

pytestmark = pytest.mark.t1

MESSAGE = "hello from the offline bundle"


class Registry:
    """docker-registry on 127.0.0.1 with its own storage; optional token auth."""

    def __init__(self, workdir: Path, storage: Path, auth: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {"version": 0.1, "log": {"level": "error"},
                  "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
                  "http": {"addr": self.host}}
        if auth:
            config["auth"] = {"token": auth}
        self.config = workdir / f"config-{self.port}.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = open(workdir / f"registry-{self.port}.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.url + "/v2/", timeout=1).status_code in (200, 401):
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / f"registry-{self.port}.log").read_text())
            time.sleep(0.1)

    def stop(self):
        stop_process(self.proc)
        self.log.close()


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory):
    need_root()
    need_binary("docker-registry")
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def registry(registry_dir):
    reg = Registry(registry_dir, registry_dir / "storage")
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def pushed(dockerd, registry, tmp_path_factory):
    """A tiny image FROM scratch (busybox-static) built by the real dockerd and pushed to the registry."""
    busybox = need_binary("busybox")
    ctx = tmp_path_factory.mktemp("tiny-image")
    shutil.copy(busybox, ctx / "busybox")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\nCOPY hello.txt /hello.txt\n"
                                    'CMD ["/bin/busybox", "cat", "/hello.txt"]\n')
    (ctx / "hello.txt").write_text(MESSAGE + "\n")
    client = dockerd.client()
    repo = f"{registry.host}/labkit/tiny"
    client.images.build(path=str(ctx), tag=f"{repo}:1", network_mode="host", rm=True)
    for line in client.images.push(repo, tag="1", stream=True, decode=True):
        assert "error" not in line, line
    # gone from the daemon again: every `docker load` below must read its layers from our archive
    client.images.remove(f"{repo}:1", force=True)
    return repo


def image_entry(name, ref, tag, path, digest=None):
    return "\n".join([f"- name: {name}", "  kind: image", f"  ref: {ref}", f"  tag: {tag}"]
                     + ([f"  digest: {digest}"] if digest else []) + [f"  path: {path}"])


def test_bundle_lock_pins_an_image_that_docker_loads_and_runs(dockerd, registry, pushed, tmp_path):
    lock_file = write_lock(tmp_path / "lock.yaml", [
        image_entry("tiny", f"{pushed}:1", "k8s.gcr.io/tiny:1.0", "images/tiny-1.0.tar")])
    dest = tmp_path / "bundle"
    proc = invoke("bundle.lock", "--lock", str(lock_file), "--dest", str(dest))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "trust on first use" in proc.stderr  # loud: the digest came from the tag, not a publisher
    pinned = lock.load(lock_file).get("tiny")
    assert pinned.pinned and pinned.digest.startswith("sha256:")
    archive = dest / "images/tiny-1.0.tar"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == pinned.sha256
    assert archive.stat().st_size == pinned.size
    # the digest is what the registry itself says the tag points to
    head = requests.head(f"{registry.url}/v2/labkit/tiny/manifests/1",
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert head.headers["Docker-Content-Digest"] == pinned.digest
    assert f"tiny sha256 {pinned.sha256} images/tiny-1.0.tar" in (dest / "CHECKSUMS").read_text()
    assert invoke("bundle.verify", "--lock", str(lock_file), "--dest", str(dest)).returncode == 0
    assert load_and_run(dockerd, archive, "k8s.gcr.io/tiny:1.0") == MESSAGE


def test_archives_are_byte_for_byte_reproducible(registry, pushed, tmp_path):
    lock_file = write_lock(tmp_path / "lock.yaml", [
        image_entry("tiny", f"{pushed}:1", "k8s.gcr.io/tiny:1.0", "images/tiny.tar")])
    lk = lock.load(lock_file)
    sums = []
    for run in ("one", "two"):
        outcomes = fetch.fetch(lk, lk.artifacts, tmp_path / run, fetch.Options(allow_unpinned=True))
        assert outcomes[0].error is None
        sums.append(hashlib.sha256((tmp_path / run / "images/tiny.tar").read_bytes()).hexdigest())
        assert not list((tmp_path / run).rglob("*.part"))  # blob cache and partial archive cleaned up
    assert sums[0] == sums[1] == outcomes[0].sha256


def test_a_pinned_digest_that_the_registry_lacks_is_one_clear_line(registry, pushed, tmp_path):
    lock_file = write_lock(tmp_path / "lock.yaml", [
        image_entry("etcd", f"{pushed}:1", "k8s.gcr.io/etcd:3.3.10", "images/etcd.tar", digest="sha256:" + "0" * 64)])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"), "--allow-unpinned")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("labkit: etcd: ") and "no such manifest (HTTP 404)" in last and "Fix: " in last
    assert not (tmp_path / "b/images/etcd.tar").exists()


def _put_blob(reg_url: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"{reg_url}/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    location = location if location.startswith("http") else reg_url + location
    done = requests.put(location, params={"digest": digest}, data=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def _put_manifest(reg_url: str, repo: str, ref: str, body: bytes, media: str) -> str:
    resp = requests.put(f"{reg_url}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media})
    assert resp.status_code == 201, resp.text
    return resp.headers["Docker-Content-Digest"]


def _push_multi_arch(registry, tag: str) -> tuple[str, str, str]:
    """A real multi-arch list in the real registry under `tag`: arm64 listed first (the tiny image with
    its config saying arm64), amd64 second. Returns the list's, the arm64 and the amd64 manifest digests."""
    repo = "labkit/tiny"
    schema2 = "application/vnd.docker.distribution.manifest.v2+json"
    amd64 = requests.get(f"{registry.url}/v2/{repo}/manifests/1", headers={"Accept": schema2})
    manifest = amd64.json()
    config = requests.get(f"{registry.url}/v2/{repo}/blobs/{manifest['config']['digest']}").json()
    config["architecture"] = "arm64"
    config_bytes = json.dumps(config).encode()
    arm_manifest = dict(manifest, config=dict(manifest["config"], digest=_put_blob(registry.url, repo, config_bytes),
                                              size=len(config_bytes)))
    arm_body = json.dumps(arm_manifest).encode()
    arm_digest = _put_manifest(registry.url, repo, "1-arm64", arm_body, schema2)
    listed = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
              "manifests": [
                  {"mediaType": schema2, "digest": arm_digest, "size": len(arm_body),
                   "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                  {"mediaType": schema2, "digest": amd64.headers["Docker-Content-Digest"],
                   "size": len(amd64.content), "platform": {"architecture": "amd64", "os": "linux"}}]}
    list_digest = _put_manifest(registry.url, repo, tag, json.dumps(listed).encode(), listed["mediaType"])
    return list_digest, arm_digest, amd64.headers["Docker-Content-Digest"]


def test_a_manifest_list_resolves_to_linux_amd64(dockerd, registry, pushed, tmp_path):
    """A real multi-arch list in the real registry: arm64 listed first, amd64 second."""
    list_digest, _, _ = _push_multi_arch(registry, "multi")
    lock_file = write_lock(tmp_path / "lock.yaml", [
        image_entry("tiny-multi", f"{pushed}:multi", "registry.example/tiny:multi", "images/multi.tar",
                    digest=list_digest)])
    lk = lock.load(lock_file)
    outcomes = fetch.fetch(lk, lk.artifacts, tmp_path / "b", fetch.Options(allow_unpinned=True))
    assert outcomes[0].error is None and outcomes[0].digest == list_digest
    assert load_and_run(dockerd, tmp_path / "b/images/multi.tar", "registry.example/tiny:multi") == MESSAGE


def _archive_arch(archive: Path) -> str:
    """The architecture the image config inside a docker-archive names."""
    with tarfile.open(archive) as tar:
        config = json.loads(tar.extractfile("manifest.json").read())[0]["Config"]
        return json.loads(tar.extractfile(config).read())["architecture"]


def test_each_architecture_takes_its_child_of_the_list(dockerd, registry, pushed, tmp_path):
    """Issue 28: one list digest pins both children; a laptop fetches its guest architecture's (settings
    arch), the instructor both (--all-boxes), a Mac's student the arm64 one from the classroom mirror."""
    from tests.support.bundle import cli_serve

    list_digest, arm_digest, amd_digest = _push_multi_arch(registry, "multi-both")
    ref, tag = f"{pushed}:multi-both", "registry.example/tiny:both"
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        image_entry("tiny", ref, tag, "images/tiny.tar", digest=list_digest) + "\n  arch: amd64",
        image_entry("tiny-arm64", ref, tag, "arm64/images/tiny.tar", digest=list_digest)
        + f"\n  arch: arm64\n  child: {arm_digest}"])
    pc = invoke("bundle.fetch", "--lock", lock_file, "--dest", tmp_path / "pc")  # this x86-64 machine: arch auto
    assert pc.returncode == 0, pc.stdout + pc.stderr
    assert "Skipping tiny-arm64" in pc.stdout + pc.stderr
    assert (tmp_path / "pc/images/tiny.tar").is_file() and not (tmp_path / "pc/arm64").exists()

    instructor = tmp_path / "instructor"
    both = invoke("bundle.fetch", "--lock", lock_file, "--dest", instructor, "--all-boxes")
    assert both.returncode == 0, both.stdout + both.stderr
    assert _archive_arch(instructor / "images/tiny.tar") == "amd64"
    assert _archive_arch(instructor / "arm64/images/tiny.tar") == "arm64"
    with tarfile.open(instructor / "arm64/images/tiny.tar") as tar:  # the list and the arm64 manifest, nothing else
        kept = {m.name[len(MANIFESTS_DIR):] for m in tar if m.name.startswith(MANIFESTS_DIR)}
    assert kept == {d.split(":", 1)[1] + ".json" for d in (list_digest, arm_digest)} and amd_digest not in str(kept)
    assert invoke("bundle.verify", "--lock", lock_file, "--dest", instructor, "--all-boxes").returncode == 0
    sums = (instructor / "CHECKSUMS").read_text()
    assert " images/tiny.tar" in sums and " arm64/images/tiny.tar" in sums

    mac = tmp_path / "mac"
    with cli_serve(lock_file, instructor) as (port, _):
        fetched = invoke("bundle.fetch", "--lock", lock_file, "--dest", mac, "--from", f"http://127.0.0.1:{port}",
                         env={"LABKIT_ARCH": "arm64"})
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (mac / "arm64/images/tiny.tar").read_bytes() == (instructor / "arm64/images/tiny.tar").read_bytes()
    assert not (mac / "images").exists()
    # the archive docker loads is the arm64 image (this daemon is x86-64: loaded, not run)
    loaded = docker(dockerd, "load", "-i", str(mac / "arm64/images/tiny.tar"))
    assert loaded.returncode == 0, loaded.stderr
    try:
        assert docker(dockerd, "image", "inspect", "--format", "{{.Architecture}}", tag).stdout.strip() == "arm64"
    finally:
        docker(dockerd, "rmi", "-f", tag)

    # a list whose arm64 entry is not the child the lock records (here: amd64's digest): nothing saved
    wrong = write_lock(tmp_path / "wrong-child.yaml", [
        image_entry("tiny-arm64", ref, tag, "arm64/images/tiny.tar", digest=list_digest)
        + f"\n  arch: arm64\n  child: {amd_digest}"])
    proc = invoke("bundle.fetch", "--lock", wrong, "--dest", tmp_path / "wrong", "--arch", "arm64")
    assert proc.returncode == 1 and "the lock records" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "wrong/arm64/images/tiny.tar").exists()
    assert "not the child the lock records" in archive.check(instructor / "arm64/images/tiny.tar", list_digest, tag,
                                                             "arm64", amd_digest)

    # an image without an arm64 child: one line naming what it has
    amd_only = write_lock(tmp_path / "amd-only.yaml", [
        image_entry("tiny-arm64", f"{pushed}:1", tag, "arm64/images/tiny.tar") + "\n  arch: arm64"])
    proc = invoke("bundle.fetch", "--lock", amd_only, "--dest", tmp_path / "none", "--allow-unpinned", "--arch", "arm64")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("labkit: tiny-arm64: ") and "Fix: " in last and "Traceback" not in proc.stderr


# --- token auth, for real: the registry verifies the JWTs our little token service signs -----------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _libtrust_kid(public_key) -> str:
    """The key id docker/distribution derives from a public key (libtrust): base32 of a SHA-256 prefix."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


class TokenService(ThreadingHTTPServer):
    """Issues anonymous pull tokens the way Docker Hub's auth.docker.io does (JSON {token, access_token})."""

    daemon_threads = True

    def __init__(self, workdir: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        self.cert = workdir / "token-issuer.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.kid = _libtrust_kid(self.key.public_key())
        self.asked: list[dict] = []
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.realm = f"http://127.0.0.1:{self.server_address[1]}/token"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def token(self, service: str, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        if scope:
            kind, name, actions = scope.split(":")
            access = [{"type": kind, "name": name, "actions": ["pull"] if "pull" in actions.split(",") else []}]
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": "labkit-test-issuer", "sub": "", "aud": service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64(signature)}"


class _TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        self.server.asked.append(query)
        token = self.server.token(query.get("service", ""), query.get("scope", ""))
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                           "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_token_auth_against_the_real_registry(dockerd, registry_dir, registry, pushed, tmp_path):
    tokens = TokenService(tmp_path)
    guarded = Registry(registry_dir, registry_dir / "storage", auth={
        "realm": tokens.realm, "service": "labkit-test-registry", "issuer": "labkit-test-issuer",
        "rootcertbundle": str(tokens.cert)})
    try:
        plain = requests.get(f"{guarded.url}/v2/labkit/tiny/manifests/1")
        assert plain.status_code == 401 and plain.headers["WWW-Authenticate"].startswith("Bearer realm=")
        lock_file = write_lock(tmp_path / "lock.yaml", [
            image_entry("tiny", f"{guarded.host}/labkit/tiny:1", "k8s.gcr.io/tiny:auth", "images/tiny.tar")])
        lk = lock.load(lock_file)
        outcomes = fetch.fetch(lk, lk.artifacts, tmp_path / "b", fetch.Options(allow_unpinned=True))
        assert outcomes[0].error is None, outcomes[0].error
        assert {"service": "labkit-test-registry", "scope": "repository:labkit/tiny:pull"} in tokens.asked
        assert load_and_run(dockerd, tmp_path / "b/images/tiny.tar", "k8s.gcr.io/tiny:auth") == MESSAGE
    finally:
        guarded.stop()
        tokens.shutdown()
        tokens.server_close()


class Redirector(ThreadingHTTPServer):
    """A front door like registry.k8s.io: every request gets a 307 to the registry that does the auth."""

    daemon_threads = True

    def __init__(self, target: str):
        self.target = target
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.host = f"127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _RedirectHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.server.seen.append(self.path)
        self.send_response(307)
        self.send_header("Location", self.server.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_redirect_to_a_token_registry_costs_one_token_per_repository(registry_dir, registry, pushed, tmp_path):
    tokens = TokenService(tmp_path)
    guarded = Registry(registry_dir, registry_dir / "storage", auth={
        "realm": tokens.realm, "service": "labkit-test-registry", "issuer": "labkit-test-issuer",
        "rootcertbundle": str(tokens.cert)})
    front = Redirector(guarded.url)
    try:
        lock_file = write_lock(tmp_path / "lock.yaml", [
            image_entry("tiny", f"{front.host}/labkit/tiny:1", "k8s.gcr.io/tiny:1", "images/tiny.tar")])
        lk = lock.load(lock_file)
        outcomes = fetch.fetch(lk, lk.artifacts, tmp_path / "b", fetch.Options(allow_unpinned=True))
        assert outcomes[0].error is None, outcomes[0].error
        assert len(front.seen) >= 3  # the manifest, the config and the layers all went through the redirect
        assert tokens.asked == [{"service": "labkit-test-registry", "scope": "repository:labkit/tiny:pull"}]
    finally:
        for server in (front, tokens):
            server.shutdown()
            server.server_close()
        guarded.stop()


def test_a_digest_pinned_image_fetches_verifies_and_serves_without_bundle_lock(dockerd, registry, pushed, srv,
                                                                                 tmp_path):
    """Issue 11.4: the digest alone pins the image; its archive is checked against the digest (manifests
    inside it), its sha256 lands in CHECKSUMS for the VM, and a classroom mirror can serve it."""
    from tests.support.bundle import cli_serve

    head = requests.head(f"{registry.url}/v2/labkit/tiny/manifests/1",
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    digest = head.headers["Docker-Content-Digest"]
    lock_file = write_lock(tmp_path / "bundle.lock.yaml", [
        image_entry("tiny", f"{pushed}:1", "k8s.gcr.io/tiny:1.0", "images/tiny.tar", digest=digest)])
    dest, student = tmp_path / "instructor", tmp_path / "student"
    proc = invoke("bundle.fetch", "--lock", lock_file, "--dest", dest)  # no --allow-unpinned, no bundle.lock
    assert proc.returncode == 0, proc.stdout + proc.stderr
    archive = dest / "images/tiny.tar"
    assert f"tiny sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()} images/tiny.tar" in \
        (dest / "CHECKSUMS").read_text()
    assert invoke("bundle.verify", "--lock", lock_file, "--dest", dest).returncode == 0
    with cli_serve(lock_file, dest) as (port, _):
        fetched = invoke("bundle.fetch", "--lock", lock_file, "--dest", student, "--from", f"http://127.0.0.1:{port}")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (student / "images/tiny.tar").read_bytes() == archive.read_bytes()
    assert load_and_run(dockerd, student / "images/tiny.tar", "k8s.gcr.io/tiny:1.0") == MESSAGE

    # a mirror that serves other bytes (one byte of a layer changed, the tar intact) is refused
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        layer = next(m for m in tar if m.name.endswith(".tar.gz") or m.name.endswith(".tar"))
    data[layer.offset_data + layer.size // 2] ^= 0xFF
    srv.add("/images/tiny.tar", bytes(data))
    other = tmp_path / "other"
    bad = invoke("bundle.fetch", "--lock", lock_file, "--dest", other, "--from", srv.url)
    assert bad.returncode == 1
    assert "does not match its digest; nothing was saved" in bad.stderr and "Traceback" not in bad.stderr
    assert not (other / "images/tiny.tar").exists() and not list(other.rglob("*.part"))
    # and bundle.verify finds the same damage in a bundle
    archive.write_bytes(bytes(data))
    verify = invoke("bundle.verify", "--lock", lock_file, "--dest", dest)
    assert verify.returncode == 1 and "does not match its digest" in verify.stdout + verify.stderr
