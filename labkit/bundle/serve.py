"""bundle.serve: a verified bundle over HTTP for a classroom (`bundle.fetch --from URL` on each laptop).

Serves exactly the lock's artifacts and CHECKSUMS (nothing else in the directory, no listing of the
disk), with single-range requests so students resume, HTTP/1.1 keep-alive and a thread per client.
The body goes out with sendfile where the OS has it (socket.sendfile falls back to send elsewhere).
"""
from __future__ import annotations

import re
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from labkit.bundle.lock import CHECKSUMS_FILE

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class BundleServer(ThreadingHTTPServer):
    daemon_threads = True           # a stuck client never blocks shutdown
    request_queue_size = 128        # a room of laptops connecting at once
    allow_reuse_address = True

    def __init__(self, address, files: dict, quiet: bool = True):
        self.files = files  # URL path ("/k8s/x.tar.gz") -> Path on disk
        self.quiet = quiet
        self.served_bytes = 0
        self._count_lock = threading.Lock()
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        """A student who hangs up mid-file is normal in a classroom: no traceback for that."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def count(self, n: int) -> None:
        with self._count_lock:
            self.served_bytes += n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: one connection per student for many files
    server_version = "labkit-bundle"

    def log_message(self, fmt, *args):  # noqa: D401 (http.server API)
        if not self.server.quiet:
            super().log_message(fmt, *args)

    def do_HEAD(self):  # noqa: N802 (http.server API)
        self._serve(body=False)

    def do_GET(self):  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/":
            return self._index(body)
        f = self.server.files.get(path)
        if f is None or not f.is_file():
            return self._plain(HTTPStatus.NOT_FOUND, "not in this bundle\n", body)
        size = f.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted:
            span = _parse_range(wanted, size)
            if span == "unsatisfiable":
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if span is not None:  # None: a form we do not serve (multi-range): send it all, as RFC 9110 allows
                start, end = span
                status = HTTPStatus.PARTIAL_CONTENT
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body and length:
            with open(f, "rb") as fh:
                sent = self.connection.sendfile(fh, start, length)
            self.server.count(sent)

    def _index(self, body: bool) -> None:
        lines = [f"{p.lstrip('/')}\n" for p in sorted(self.server.files)]
        self._plain(HTTPStatus.OK, "".join(lines), body)

    def _plain(self, status, text: str, body: bool) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


def _parse_range(value: str, size: int):
    """(start, end) for one byte range; "unsatisfiable"; or None for forms we answer with the whole file."""
    m = RANGE.match(value.strip())
    if not m:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return max(size - n, 0), size - 1
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return start, end


def files_of(artifacts, bundle_dir: Path) -> dict:
    """URL path -> file for every artifact (and CHECKSUMS): the only things the server will hand out."""
    files = {"/" + a.path: a.file(bundle_dir) for a in artifacts}
    files["/" + CHECKSUMS_FILE] = Path(bundle_dir) / CHECKSUMS_FILE
    return files


def lan_addresses() -> list[str]:
    """Addresses students can reach: the one with the default route first; loopback as a last resort."""
    found = []
    try:  # no packet is sent: connect() on UDP only picks the outgoing interface
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    except OSError:
        pass
    unique = [a for i, a in enumerate(found) if a not in found[:i] and not a.startswith("127.")]
    return unique or ["127.0.0.1"]


def start(files: dict, host: str = "0.0.0.0", port: int = 8787, quiet: bool = True) -> BundleServer:
    """A running server (serve_forever in a daemon thread): for tests and the benchmark."""
    server = BundleServer((host, port), files, quiet)
    threading.Thread(target=server.serve_forever, name="bundle-serve", daemon=True).start()
    return server
