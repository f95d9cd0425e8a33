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

PORT = 8787
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


def start(files: dict, host: str = "0.0.0.0", port: int = PORT, quiet: bool = True) -> BundleServer:
    """A running server (serve_forever in a daemon thread): for tests and the benchmark."""
    server = BundleServer((host, port), files, quiet)
    threading.Thread(target=server.serve_forever, name="bundle-serve", daemon=True).start()
    return server


def warn_unpinned(artifacts) -> None:
    """The loud warning for --allow-unpinned, if any of these artifacts has no hash."""
    from labkit import ui
    from labkit.bundle.fetch import unpinned_warning

    text = unpinned_warning(artifacts)
    if text:
        ui.warn(text)


def verified_server(s, lock, dest, port, host, allow_unpinned):
    """What bundle.serve (and class.serve) do before serving: verify, then listen. (server, served, dest).

    s: the settings (the lock and bundle directory when --lock/--dest are not given)."""
    from labkit import ui
    from labkit.bundle import checksums
    from labkit.bundle import lock as lockmod
    from labkit.bundle import verify as verifymod
    from labkit.errors import LabkitError

    if not 1 <= port <= 65535:
        raise LabkitError(f"--port {port} is not a TCP port", f"pass one from 1 to 65535, like --port {PORT}")
    lk, dest = lockmod.load_for(s, lock, dest)
    offered = lk.needed(None)  # every box, never a source: laptops take the images, not the server tarball
    if allow_unpinned:
        warn_unpinned(offered)
    with ui.step(f"Verifying {len(offered)} artifacts before serving them") as st:
        findings = verifymod.verify(offered, dest, allow_unpinned)
        # missing artifacts only mean "not found" for students; damaged or unchecked ones must not spread
        bad = [f for f in findings if not f.ok and f.problem != "missing"]
        if bad:
            ui.table("Not served: bundle problems", ["artifact", "problem", "fix"],
                     [[f.name, f.problem, f.fix] for f in bad])
            raise LabkitError(f"the bundle has {len(bad)} damaged or unpinned artifact(s), so it is not served",
                              "run the fixes in the table above, then serve again")
        missing = [f.name for f in findings if f.problem == "missing"]
        if len(missing) == len(findings):
            raise LabkitError(f"{dest} holds none of the lock's artifacts", "run invoke bundle.fetch first")
        checksums.write_or_warn(lk, dest)
        st.note = f"{len(findings) - len(missing)} intact" + (f", {len(missing)} missing" if missing else "")
    if missing:
        ui.warn(f"not serving {len(missing)} missing artifact(s): {', '.join(missing)}; students fetching "
                "them get 'not found' (invoke bundle.fetch --all-boxes fills the bundle)")
    served = [a for a in offered if a.name not in missing]
    server = listening(lambda: BundleServer((host, port), files_of(served, dest)), host, port)
    return server, served, dest


def listening(make, host, port, option="--port"):
    """make() binds a server to host:port; a port in use or an address not ours is one line with the fix."""
    import errno

    from labkit.errors import LabkitError

    try:
        return make()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise LabkitError(f"port {port} is already in use", f"pass another one: {option} {port + 1}") from None
        raise LabkitError(f"cannot listen on {host}:{port} ({exc.strerror})", f"pass --host and {option} that this "
                          "machine can listen on") from None
