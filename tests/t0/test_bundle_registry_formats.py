"""The registry client on recorded responses of the real formats (Docker Hub, registry.k8s.io through
Artifact Registry, OCI indexes with attestations). The live network is not reachable here; the wire
shapes below are the documented ones (distribution spec, Docker Hub, Artifact Registry challenges)."""
from __future__ import annotations

import hashlib
import json

import pytest
from requests.structures import CaseInsensitiveDict

from labkit.bundle import registry
from labkit.bundle.registry import RegistryError

LIST = registry.DOCKER_LIST
SCHEMA2 = registry.DOCKER_MANIFEST


def digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Response:
    def __init__(self, status=200, body=b"", headers=None, url=""):
        self.status_code = status
        self.content = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = CaseInsensitiveDict(headers or {})
        self.url = url

    def json(self):
        return json.loads(self.content)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Session:
    """Replays answers by URL; records what was asked (URL, Authorization, params)."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = []

    def get(self, url, headers=None, params=None, stream=False, timeout=None, allow_redirects=True):
        assert not allow_redirects or "token" in url  # the client follows registry redirects itself
        self.asked.append((url, (headers or {}).get("Authorization"), params))
        return self.answer(url, headers or {}, params or {})


def client(answer):
    session = Session(answer)
    return registry.Client(lambda: session), session


# a schema2 manifest and its config, in the shape Docker Hub serves for library images
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
    "sha256:" + "1" * 64]}}).encode()
AMD64 = json.dumps({"schemaVersion": 2, "mediaType": SCHEMA2,
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                               "size": len(CONFIG), "digest": digest(CONFIG)},
                    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                "size": 22489470, "digest": "sha256:" + "2" * 64}]}, indent=3).encode()
ARM64 = AMD64.replace(b"22489470", b"20334138")
NGINX_LIST = json.dumps({"schemaVersion": 2, "mediaType": LIST, "manifests": [
    {"mediaType": SCHEMA2, "size": len(ARM64), "digest": digest(ARM64),
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": SCHEMA2, "size": len(AMD64), "digest": digest(AMD64),
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": SCHEMA2, "size": 1, "digest": "sha256:" + "3" * 64,
     "platform": {"architecture": "386", "os": "linux"}}]}, indent=3).encode()

HUB_CHALLENGE = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                 'scope="repository:library/nginx:pull"')


@pytest.mark.parametrize("ref, want", [
    ("nginx:1.17.1", ("docker.io", "library/nginx", "1.17.1", None)),
    ("docker.io/library/nginx:1.17.1", ("docker.io", "library/nginx", "1.17.1", None)),
    ("weaveworks/weave-kube:2.8.1", ("docker.io", "weaveworks/weave-kube", "2.8.1", None)),
    ("registry.k8s.io/kube-apiserver:v1.15.12", ("registry.k8s.io", "kube-apiserver", "v1.15.12", None)),
    ("127.0.0.1:5000/labkit/tiny:1", ("127.0.0.1:5000", "labkit/tiny", "1", None)),
    ("localhost/x:y", ("localhost", "x", "y", None)),
    ("k8s.gcr.io/pause@sha256:" + "f" * 64, ("k8s.gcr.io", "pause", None, "sha256:" + "f" * 64)),
])
def test_parse_ref(ref, want):
    r = registry.parse_ref(ref)
    assert (r.registry, r.repository, r.tag, r.digest) == want


def test_base_urls_use_tls_except_on_this_machine():
    assert registry.parse_ref("nginx:1").base_url == "https://registry-1.docker.io/v2/library/nginx"
    assert registry.parse_ref("registry.k8s.io/pause:3.1").base_url == "https://registry.k8s.io/v2/pause"
    assert registry.parse_ref("127.0.0.1:5000/a:1").base_url == "http://127.0.0.1:5000/v2/a"
    assert registry.parse_ref("localhost:5000/a:1").base_url == "http://localhost:5000/v2/a"
    assert registry.parse_ref("192.168.1.5:5000/a:1").base_url.startswith("https://")


def test_parse_challenges_of_docker_hub_and_artifact_registry():
    assert registry.parse_challenge(HUB_CHALLENGE) == ("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull"})
    ar = ('Bearer realm="https://us-west2-docker.pkg.dev/v2/token", service="us-west2-docker.pkg.dev", '
          'scope="repository:k8s-artifacts-prod/images/pause:pull"')
    scheme, params = registry.parse_challenge(ar)
    assert scheme == "bearer" and params["scope"] == "repository:k8s-artifacts-prod/images/pause:pull"
    assert registry.parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


def test_pick_platform_skips_attestations_and_prefers_no_variant():
    oci = {"schemaVersion": 2, "mediaType": registry.OCI_INDEX, "manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"architecture": "unknown", "os": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"architecture": "amd64", "os": "linux", "variant": "v3"}},
        {"digest": "sha256:" + "c" * 64, "platform": {"architecture": "amd64", "os": "linux"}},
        {"digest": "sha256:" + "d" * 64, "platform": {"architecture": "amd64", "os": "windows"}}]}
    assert registry.pick_platform(oci)["digest"] == "sha256:" + "c" * 64
    with pytest.raises(RegistryError, match=r"no linux/amd64 variant \(it has: linux/arm64\)"):
        registry.pick_platform({"manifests": [{"digest": "x", "platform": {"os": "linux", "architecture": "arm64"}}]})


def hub(url, headers, params):
    """Docker Hub: anonymous requests get 401 + challenge; the token service hands out a token."""
    if url.startswith("https://auth.docker.io/token"):
        return Response(200, {"token": "T1", "access_token": "T1", "expires_in": 300,
                              "issued_at": "2026-05-01T10:00:00.000000000Z"})
    if headers.get("Authorization") != "Bearer T1":
        return Response(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": HUB_CHALLENGE}, url)
    if url.endswith("/manifests/1.17.1") or url.endswith("/manifests/" + digest(NGINX_LIST)):
        return Response(200, NGINX_LIST, {"Content-Type": LIST}, url)
    if url.endswith("/manifests/" + digest(AMD64)):
        return Response(200, AMD64, {"Content-Type": SCHEMA2}, url)
    return Response(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, {}, url)


def test_docker_hub_token_dance_and_list_to_amd64():
    c, session = client(hub)
    image = c.resolve(registry.parse_ref("nginx:1.17.1"))
    assert image.digest == digest(NGINX_LIST)          # what the lock pins
    assert image.manifest_digest == digest(AMD64)      # what the archive is built from
    assert image.layers[0]["size"] == 22489470
    token_calls = [a for a in session.asked if a[0].startswith("https://auth.docker.io")]
    assert token_calls == [("https://auth.docker.io/token", None,
                            {"service": "registry.docker.io", "scope": "repository:library/nginx:pull"})]
    # the second manifest request reuses the token: no second 401
    assert session.asked[-1] == ("https://registry-1.docker.io/v2/library/nginx/manifests/" + digest(AMD64),
                                 "Bearer T1", None)


def test_a_pinned_digest_is_fetched_by_digest_and_checked():
    c, session = client(hub)
    image = c.resolve(registry.parse_ref("nginx:1.17.1"), pinned=digest(NGINX_LIST))
    assert image.digest == digest(NGINX_LIST)
    assert not any(u.endswith("/manifests/1.17.1") for u, _, _ in session.asked)  # never by tag

    def liar(url, headers, params):
        resp = hub(url, headers, params)
        if resp.status_code == 200 and "/manifests/sha256:" in url:
            resp.content = resp.content.replace(b"amd64", b"AMD64")
        return resp

    c, _ = client(liar)
    with pytest.raises(RegistryError, match="whose sha256 is"):
        c.resolve(registry.parse_ref("nginx:1.17.1"), pinned=digest(NGINX_LIST))


def test_registry_k8s_io_redirect_then_artifact_registry_challenge():
    """registry.k8s.io answers with a 307 to Artifact Registry, which asks for its own token; blobs go on
    to a storage bucket (signed URL) that must get no token. One token serves every request after it."""
    ar = "https://us-west2-docker.pkg.dev/v2/k8s-artifacts-prod/images/pause"
    bucket = "https://storage.googleapis.com/artifacts-bucket/blob?X-Goog-Signature=abc"
    challenge = ('Bearer realm="https://us-west2-docker.pkg.dev/v2/token",service="us-west2-docker.pkg.dev",'
                 'scope="repository:k8s-artifacts-prod/images/pause:pull"')
    layer = "sha256:" + "2" * 64

    def k8s(url, headers, params):
        if url == "https://us-west2-docker.pkg.dev/v2/token":
            return Response(200, {"token": "AR"})
        if url.startswith("https://registry.k8s.io/v2/pause/"):
            return Response(307, b"", {"Location": ar + url.split("/v2/pause", 1)[1]}, url)
        if url.startswith(ar):
            if headers.get("Authorization") != "Bearer AR":
                return Response(401, b"", {"WWW-Authenticate": challenge}, url)
            if url == f"{ar}/blobs/{layer}":
                return Response(302, b"", {"Location": bucket}, url)
            return Response(200, AMD64, {"Content-Type": SCHEMA2}, url)
        if url == bucket:
            assert "Authorization" not in headers  # a signed URL refuses a second credential
            return Response(200, b"layer bytes", {}, url)
        return Response(404, b"", {}, url)

    c, session = client(k8s)
    ref = registry.parse_ref("registry.k8s.io/pause:3.1")
    image = c.resolve(ref)
    assert image.digest == digest(AMD64)
    assert c.get(c.blob_url(ref, layer)).content == b"layer bytes"
    assert session.asked[:4] == [
        ("https://registry.k8s.io/v2/pause/manifests/3.1", None, None), (f"{ar}/manifests/3.1", None, None),
        ("https://us-west2-docker.pkg.dev/v2/token", None,
         {"service": "us-west2-docker.pkg.dev", "scope": "repository:k8s-artifacts-prod/images/pause:pull"}),
        (f"{ar}/manifests/3.1", "Bearer AR", None)]  # retried where the 401 came from
    assert session.asked[4:] == [(f"https://registry.k8s.io/v2/pause/blobs/{layer}", None, None),
                                 (f"{ar}/blobs/{layer}", "Bearer AR", None), (bucket, None, None)]


def test_a_token_service_answering_a_web_page_is_one_line():
    def portal(url, headers, params):
        if "token" in url:
            return Response(200, b"<html>Please log in</html>")
        return Response(401, b"", {"WWW-Authenticate": HUB_CHALLENGE}, url)

    c, _ = client(portal)
    with pytest.raises(RegistryError, match="sent no token"):
        c.resolve(registry.parse_ref("nginx:1.17.1"))


@pytest.mark.parametrize("status, words", [
    (404, "no such manifest (HTTP 404)"), (429, "rate-limiting"), (500, "answered HTTP 500")])
def test_registry_errors_are_one_clear_line(status, words):
    c, _ = client(lambda url, h, p: Response(status, b"{}", {}, url))
    with pytest.raises(RegistryError) as exc:
        c.resolve(registry.parse_ref("registry.k8s.io/etcd:3.3.10"))
    assert words in exc.value.message and exc.value.fix


def test_basic_auth_and_refused_tokens_are_explained():
    c, _ = client(lambda url, h, p: Response(401, b"", {"WWW-Authenticate": 'Basic realm="x"'}, url))
    with pytest.raises(RegistryError, match="wants a login"):
        c.resolve(registry.parse_ref("127.0.0.1:5000/a:1"))

    def never(url, headers, params):
        if "token" in url:
            return Response(200, {"token": "nope"})
        return Response(401, b"", {"WWW-Authenticate": HUB_CHALLENGE}, url)

    c, _ = client(never)
    with pytest.raises(RegistryError, match="refused the anonymous token"):
        c.resolve(registry.parse_ref("nginx:1.17.1"))


@pytest.mark.parametrize("media, words", [
    ("application/vnd.docker.distribution.manifest.v1+prettyjws", "old schema 1 image"),
    ("application/vnd.oci.image.layer.v1.tar+zstd", "cannot load"),
])
def test_formats_docker_18_09_cannot_load_are_refused(media, words):
    if "schema" in words:
        body = json.dumps({"schemaVersion": 1, "mediaType": media, "fsLayers": []}).encode()
    else:
        body = AMD64.replace(b"application/vnd.docker.image.rootfs.diff.tar.gzip", media.encode())
    c, _ = client(lambda url, h, p: Response(200, body, {"Content-Type": media}, url))
    with pytest.raises(RegistryError, match=words):
        c.resolve(registry.parse_ref("127.0.0.1:5000/old:1"))
