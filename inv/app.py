"""The trash-can inventory service (lab 7): tells its version, and which pod answered.

    GET /         200 {"version":"0.1"}   header X-Served-By: <pod/host name>
    GET /healthz  200 {"status":"ok"}     (readiness probe)
    other paths   404 JSON;  other methods 405 JSON;  malformed requests 400 JSON

Standard library only (Python 3.7+, the base image's Python). Settings from the environment:
PORT (default 8080), INV_VERSION (default 0.1). SIGTERM stops it promptly, as Kubernetes expects.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

VERSION = os.environ.get("INV_VERSION", "0.1")
HOST_NAME = socket.gethostname()  # the pod's name inside Kubernetes
ALLOWED = "GET, HEAD"


def as_json(value):
    # Compact, exactly like the lab's body: {"version":"0.1"} (no spaces, no newline).
    return json.dumps(value, separators=(",", ":"))


class Handler(BaseHTTPRequestHandler):
    server_version = "inv/" + VERSION
    protocol_version = "HTTP/1.1"  # keep-alive for busy clients
    timeout = 30  # an idle keep-alive client must not hold its thread forever

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/":
            self.reply(200, as_json({"version": VERSION}))
        elif path == "/healthz":
            self.reply(200, as_json({"status": "ok"}))
        else:
            self.reply(404, as_json({"error": "not found", "path": path}))

    def do_HEAD(self):
        self.do_GET()

    def not_allowed(self):
        # Close afterwards: the request's body (if any) is left unread in the stream.
        self.close_connection = True
        self.reply(405, as_json({"error": "method not allowed", "method": self.command}),
                   {"Allow": ALLOWED, "Connection": "close"})

    def __getattr__(self, name):
        # http.server answers methods it has no do_<METHOD> for with 501; this service answers
        # every method but GET and HEAD with 405, as HTTP asks for a known resource.
        if name.startswith("do_"):
            return self.not_allowed
        raise AttributeError(name)

    def send_error(self, code, message=None, explain=None):
        # Malformed requests (400, 414, 431...) get JSON too, never http.server's HTML page.
        self.close_connection = True
        self.reply(code, as_json({"error": message or self.responses.get(code, ("error",))[0]}),
                   {"Connection": "close"})

    def reply(self, status, body, headers=None):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", HOST_NAME)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_request(self, code="-", size="-"):
        # One line per request on stdout, where `kubectl logs` looks.
        # A request refused before it was parsed (414, 400) has no command or path yet.
        code = getattr(code, "value", code)
        method, path = self.command or "-", getattr(self, "path", None) or "-"
        print('%s %s "%s %s" %s' % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.client_address[0],
                                    method, path, code), flush=True)

    def log_error(self, *args):
        pass  # every error reply already has its log_request line


class Server(ThreadingHTTPServer):
    daemon_threads = True  # in-flight requests and idle keep-alive clients must not delay shutdown
    request_queue_size = 128  # listen backlog: the default 5 drops bursts of new connections


def main():
    try:
        port = int(os.environ.get("PORT", "8080"))
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        print("inv: PORT must be a number from 1 to 65535, got %r" % os.environ.get("PORT"), file=sys.stderr)
        return 2
    try:
        server = Server(("0.0.0.0", port), Handler)
    except OSError as exc:
        print("inv: cannot listen on 0.0.0.0:%d: %s" % (port, exc.strerror or exc), file=sys.stderr)
        return 1

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return, so it must run outside this (the serving) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("inv %s listening on 0.0.0.0:%d as %s" % (VERSION, port, HOST_NAME), flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("inv stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
