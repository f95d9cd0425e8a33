"""Registry HTTP API v2, read-only: what bundle.fetch needs to get an image without a Docker daemon.

Handles anonymous token auth the way Docker Hub and registry.k8s.io (via Artifact Registry) ask
for it (401 + `WWW-Authenticate: Bearer realm=...,service=...,scope=...`), manifest lists and OCI
indexes (picks linux/amd64, or the architecture asked for), and checks every manifest and blob against its sha256 digest.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import threading
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urljoin

from labkit.errors import LabkitError

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
LISTS = (DOCKER_LIST, OCI_INDEX)
ACCEPT = ", ".join([DOCKER_LIST, OCI_INDEX, DOCKER_MANIFEST, OCI_MANIFEST])
# Layers Docker 18.09 can `docker load` (gzip or plain tar). zstd came to Docker only in 23.0.
GZIP_LAYERS = ("application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.oci.image.layer.v1.tar+gzip")
TAR_LAYERS = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DOCKER_HUB = "registry-1.docker.io"
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10


class RegistryError(LabkitError):
    pass


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port] as written ("docker.io" for Docker Hub)
    repository: str
    tag: Optional[str]
    digest: Optional[str] = None

    @property
    def base_url(self) -> str:
        host = DOCKER_HUB if self.registry == "docker.io" else self.registry
        return f"{'http' if _loopback(host) else 'https'}://{host}/v2/{self.repository}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


def parse_ref(ref: str) -> ImageRef:
    """docker.io/library/nginx:1.17.1, nginx:1.17.1, registry.k8s.io/pause:3.1, 127.0.0.1:5000/x@sha256:..."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", ref
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return ImageRef(registry, path, tag, digest)


def _loopback(host: str) -> bool:
    """Plain HTTP only for registries on this machine (as Docker allows), TLS everywhere else."""
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_challenge(header: str) -> tuple[str, dict]:
    """'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"'."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest)}
    return scheme.lower(), params


def pick_platform(index: dict, os_name: str = "linux", arch: str = "amd64") -> dict:
    """The descriptor for os/arch in a manifest list or OCI index (skipping attestations)."""
    candidates = [m for m in index.get("manifests", [])
                  if (m.get("platform") or {}).get("os") == os_name
                  and (m.get("platform") or {}).get("architecture") == arch]
    if not candidates:
        found = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                        for m in index.get("manifests", [])})
        raise RegistryError(f"the image has no {os_name}/{arch} variant (it has: {', '.join(found) or 'none'})",
                            f"pin an image built for {os_name}/{arch}")
    # a plain entry beats one with a variant (amd64 has none; "v2"/"v3" micro-architectures are newer);
    # for arm64, Docker's lists say "v8" (the only arm64 variant), others say nothing
    return sorted(candidates, key=lambda m: (m.get("platform") or {}).get("variant") not in (None, "v8"))[0]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    """A resolved linux/amd64 image: what the archive is built from."""

    ref: ImageRef
    digest: str           # what the ref resolves to (a list's digest if it is a list): the lock's pin
    manifest_digest: str  # the linux/amd64 manifest
    config: dict          # descriptor
    layers: tuple         # descriptors, base first
    documents: tuple = () # the manifest bytes as sent: the list (if any), then the linux/amd64 manifest


class Client:
    """Read-only registry client. `session()` gives this thread's requests.Session."""

    def __init__(self, session, timeout=(10, 60)):
        self._session = session
        self.timeout = timeout
        self._tokens: dict = {}
        self._lock = threading.Lock()

    def get(self, url: str, headers: Optional[dict] = None, stream: bool = True):
        """GET with the registry's token dance: on 401 Bearer, fetch a token for the challenge's scope
        and retry. Redirects are followed here, not by requests: it would drop the token at a host
        change, so registry.k8s.io -> Artifact Registry would ask for a new token on every request."""
        headers = dict(headers or {})
        renewed = set()
        for _ in range(MAX_REDIRECTS):
            resp = self._session().get(url, headers=self._with_token(url, headers), stream=stream,
                                       timeout=self.timeout, allow_redirects=False)
            if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])  # a bucket gets no token: none is cached for it
                resp.close()
                continue
            if resp.status_code != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()
            scheme, params = parse_challenge(challenge)
            if scheme != "bearer" or "realm" not in params:
                raise RegistryError(f"{_host(url)} wants a login ({challenge or 'no challenge'})",
                                    "labkit fetches public images anonymously: pin an image that needs no login")
            key = _scope_key(url)
            if key in renewed:
                raise RegistryError(f"{_host(url)} refused the anonymous token for {params.get('scope', '?')}",
                                    "check the image name: private or missing repositories answer like this")
            token = self._token(params)
            with self._lock:
                self._tokens[key] = token  # per repository of the host that asked
            renewed.add(key)
        raise RegistryError(f"{_host(url)}: more than {MAX_REDIRECTS} redirects", "try again later, or fetch "
                            "from a classroom mirror with --from")

    def _with_token(self, url: str, headers: dict) -> dict:
        with self._lock:
            token = self._tokens.get(_scope_key(url))
        return {**headers, "Authorization": f"Bearer {token}"} if token else headers

    def _token(self, params: dict) -> str:
        query = {k: params[k] for k in ("service", "scope") if params.get(k)}
        resp = self._session().get(params["realm"], params=query, timeout=self.timeout)
        with resp:
            if resp.status_code != 200:
                raise RegistryError(f"the token service {params['realm']} answered HTTP {resp.status_code}",
                                    "try again later, or fetch from a classroom mirror with --from")
            try:
                body = resp.json()
            except ValueError:  # a captive portal or proxy page instead of the token service
                body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not token:
            raise RegistryError(f"the token service {params['realm']} sent no token",
                                "try again later (log in to the network if a portal asks), or fetch from a "
                                "classroom mirror with --from")
        return token

    def manifest(self, ref: ImageRef, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest; the digest is computed, never trusted."""
        url = f"{ref.base_url}/manifests/{reference}"
        resp = self.get(url, {"Accept": ACCEPT}, stream=False)
        with resp:
            _raise_for(resp, ref, "manifest")
            body = resp.content
            media = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and digest != reference:  # checked first: a portal page is not JSON
            raise RegistryError(f"{ref}: the registry sent a manifest whose sha256 is {digest}, not {reference}",
                                "the registry, a proxy or a captive portal is changing data: log in to the "
                                "network if it asks, or fetch from another mirror")
        return body, _document(body, ref).get("mediaType") or media, digest

    def resolve(self, ref: ImageRef, pinned: Optional[str] = None, arch: str = "amd64",
                child: Optional[str] = None) -> Image:
        """Follow ref (or its pinned digest) to the linux/<arch> manifest (`child`: the digest it must have)."""
        body, media, digest = self.manifest(ref, pinned or ref.digest or ref.tag or "latest")
        top, documents = digest, (body,)
        if media in LISTS:
            entry = pick_platform(_document(body, ref), arch=arch)
            if not DIGEST.match(str(entry.get("digest", ""))):
                raise RegistryError(f"{ref}: the manifest list names its linux/{arch} entry without a sha256 digest",
                                    "pin another image")
            if child and entry["digest"] != child:
                raise RegistryError(f"{ref}: the list's linux/{arch} entry is {entry['digest'][:19]}…, the lock "
                                    f"records {child[:19]}…", "check the lock's digest and child against their source")
            body, media, digest = self.manifest(ref, entry["digest"])
            documents += (body,)
        if media in SCHEMA1:
            raise RegistryError(f"{ref} is an old schema 1 image that Docker 18.09 cannot `docker load` from an archive",
                                "pin a newer tag of the image (schema 2)")
        if media not in (DOCKER_MANIFEST, OCI_MANIFEST):
            raise RegistryError(f"{ref}: unexpected manifest type {media or 'unknown'}", "pin another image")
        manifest = _document(body, ref)
        layers = tuple(manifest.get("layers", []))
        for layer in layers:
            if layer.get("mediaType") not in GZIP_LAYERS + TAR_LAYERS:
                raise RegistryError(f"{ref} has a {layer.get('mediaType')} layer that Docker 18.09 cannot load",
                                    "pin a tag built with gzip layers")
        for d in (manifest.get("config"), *layers):
            if not isinstance(d, dict) or not DIGEST.match(str(d.get("digest", ""))) or not isinstance(
                    d.get("size", 0), int):
                raise RegistryError(f"{ref}: manifest names a blob without a sha256 digest (or lacks its config)",
                                    "pin another image")
        return Image(ref, top, digest, manifest["config"], layers, documents)

    def blob_url(self, ref: ImageRef, digest: str) -> str:
        return f"{ref.base_url}/blobs/{digest}"


def _host(url: str) -> str:
    return url.split("/")[2] if "//" in url else url


def _scope_key(url: str) -> str:
    """Tokens are per repository: key them by host + the path before /manifests/ or /blobs/."""
    path = url.split("?", 1)[0]
    for marker in ("/manifests/", "/blobs/"):
        if marker in path:
            return path.split(marker, 1)[0]
    return path


def _document(body: bytes, ref: ImageRef) -> dict:
    """A manifest as a JSON object, or one line saying the registry sent something else."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        start = " ".join(body[:40].decode("utf-8", "replace").split())  # one line, whatever was sent
        raise RegistryError(f"{ref}: the registry answered with something that is not a manifest "
                            f"(\"{start}…\": a captive portal or proxy page?)",
                            "log in to the network if it asks, check the ref, or fetch from a classroom mirror "
                            "with --from")
    return doc


def _raise_for(resp, ref: ImageRef, what: str) -> None:
    if resp.status_code == 200:
        return
    if resp.status_code in (404, 410):
        raise RegistryError(f"{ref}: the registry has no such {what} (HTTP {resp.status_code})",
                            "check ref and digest in the lock; the tag may have been deleted upstream")
    if resp.status_code == 429:
        raise RegistryError(f"{ref}: the registry is rate-limiting this address (HTTP 429)",
                            "wait and retry (Docker Hub allows about 100 anonymous pulls per 6 hours), "
                            "or fetch from a classroom mirror with --from")
    raise RegistryError(f"{ref}: the registry answered HTTP {resp.status_code} for the {what}",
                        "try again later, or fetch from a classroom mirror with --from")
