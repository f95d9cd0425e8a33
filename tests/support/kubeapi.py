"""Loopback HTTP plumbing shared by the tests that talk to "the Kubernetes API".

A Kubernetes 1.15 API server cannot run here, so those tests start a small HTTP server on
127.0.0.1 that answers in its wire format (JSON bodies, `Status` objects for errors, bearer-token
auth) and point the real `kubernetes` client at it through a real kubeconfig. This module holds
only that plumbing; what each stand-in answers stays with its tests (and tests/support/apiserver.py).
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from labkit.fsutil import write_private


def status_body(code: int, reason: str, message: str = "") -> dict:
    """A failed request's body as the API server sends it: a `Status` object."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code}
    if message:
        body["message"] = message
    return body


class JsonHandler(BaseHTTPRequestHandler):
    """Base for the stand-ins' handlers: JSON replies, Status errors, bearer-token check, no access log."""

    def log_message(self, *args):
        pass

    def reply(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code: int, reason: str, message: str = "") -> None:
        self.reply(code, status_body(code, reason, message))

    def authorized(self, token: str) -> bool:
        """True if the request carries `Bearer <token>`; otherwise answers 401 Unauthorized and says False."""
        if self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self.status(401, "Unauthorized")
        return False


class Loopback:
    """`handler_cls` served on 127.0.0.1 at a free port from a daemon thread; `.url` to reach it, `.close()` to stop."""

    def __init__(self, handler_cls: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed(directory: Path, name: str, valid_from_days: float = 0, valid_days: float = 1) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files), like a kubeadm CA-signed serving cert
    as far as a client holding some other CA is concerned. valid_from_days moves its validity (negative: in the
    past, so an expired certificate; positive: not yet valid)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=valid_from_days)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def serve_tls(loopback: Loopback, cert: Path, key: Path) -> str:
    """Make `loopback` speak HTTPS with this certificate; returns its https:// URL."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    loopback.httpd.socket = ctx.wrap_socket(loopback.httpd.socket, server_side=True)
    return loopback.url.replace("http://", "https://")


def write_kubeconfig(path: Path, server: str, token: str, ca: Path | None = None) -> None:
    """A kubeconfig with one cluster at `server` (trusting `ca`, if given) and a token user, written 0600 like labkit's own."""
    import base64

    cluster = {"server": server, **({"certificate-authority-data": base64.b64encode(ca.read_bytes()).decode()} if ca else {})}
    write_private(path, json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
        "users": [{"name": "admin", "user": {"token": token}}]}))
