"""The trash-can inventory service (lab 7): tells its version, and which pod answered.

    GET /         200 {"version":"0.1"}   header X-Served-By: <pod/host name>
    GET /healthz  200 {"status":"ok"}     (readiness probe)
    other paths   404 JSON;  other methods 405 JSON

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

VERSION = os.environ.get("INV_VERSION", "0.1")
HOST_NAME = socket.gethostname()  # the pod's name inside Kubernetes


class Handler(BaseHTTPRequestHandler):
    server_version = "inv/" + VERSION
    protocol_version = "HTTP/1.1"  # keep-alive for busy clients

    def do_GET(self):
        if self.path == "/":
            # Exactly the lab's body: no spaces, no newline.
            self.reply(200, json.dumps({"version": VERSION}, separators=(",", ":")))
        elif self.path == "/healthz":
            self.reply(200, '{"status":"ok"}')
        else:
            self.reply(404, json.dumps({"error": "not found", "path": self.path}, separators=(",", ":")))

    def do_HEAD(self):
        self.do_GET()

    def not_allowed(self):
        self.reply(405, '{"error":"method not allowed"}', {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = not_allowed

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
        print('%s %s "%s %s" %s' % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.client_address[0],
                                    self.command, self.path, code), flush=True)

    def log_error(self, *args):
        pass  # malformed requests already get a 400 and a log_request line


def main():
    try:
        port = int(os.environ.get("PORT", "8080"))
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        print("inv: PORT must be a number from 1 to 65535, got %r" % os.environ.get("PORT"), file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True  # in-flight requests must not delay shutdown

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
