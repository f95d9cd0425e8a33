"""uvicorn for the room, bounded: at most MAX_CONNECTIONS at once and HEADER_TIMEOUT to send a request's headers;
and the bundle's server in a process of its own.

uvicorn (0.55, uvicorn/protocols/http/h11_impl.py) arms a timer only after a response (keep-alive):
a client that connects and sends its headers one byte at a time ("slow loris") would hold its
connection for ever, and enough of them would leave no connection for the students. `TimedH11`
gives every request HEADER_TIMEOUT seconds from the connection (or the previous response) to the end
of its headers, then writes 408 and closes. `limit_concurrency` answers 503 beyond MAX_CONNECTIONS
(uvicorn counts open connections and running requests). The body has its own limit (app.BODY_TIMEOUT).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 5.0    # seconds: a laptop on the LAN sends its headers in milliseconds
MAX_CONNECTIONS = 200   # a class of 60 polls and posts with one connection each at a time
TOO_SLOW = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 35\r\n"
            b"Connection: close\r\n\r\nthe request headers came too slowly")


class TimedH11(H11Protocol):
    """h11 with a deadline for each request's headers."""

    _deadline = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)
        self._waiting_for = self.cycle  # headers are done once a new request cycle starts

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request (pipelined behind the last one) is being answered: its headers came in time
        if not self.transport.is_closing():
            self.transport.write(TOO_SLOW)
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self.cycle is not self._waiting_for:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def config(app) -> uvicorn.Config:
    return uvicorn.Config(app, http=TimedH11, log_level="warning", access_log=False, lifespan="off",
                          timeout_graceful_shutdown=2, server_header=False, limit_concurrency=MAX_CONNECTIONS)


class BundleProcess:
    """class.serve's bundle server (labkit/bundle/serve.py's BundleServer, already bound) in a process of its own.

    In one process, 30 downloads at full speed keep taking Python's GIL between sendfile calls and the
    room's answers wait behind them (benchmarks/room_bench.py, starvation case). On Linux the bundle
    runs in a forked child: it serves until SIGINT/SIGTERM or until class.serve is gone (a SIGKILL of
    the parent never leaves it serving), then hands its byte count back through a pipe. Elsewhere
    (Windows has no fork; macOS forbids fork after some system libraries ran) it is a thread, as before.
    """

    def __init__(self, server, close_in_child=()):
        self.server, self.pid, self._pipe = server, None, None
        if sys.platform.startswith("linux"):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                for sock in close_in_child:
                    sock.close()
                self._child(write)  # never returns
            os.close(write)
            self.pid, self._pipe = pid, read
            server.socket.close()  # the child accepts; this process only waits for it
        else:
            threading.Thread(target=server.serve_forever, name="bundle-serve", daemon=True).start()

    def _child(self, pipe: int) -> None:
        parent = os.getppid()

        def stop(*_):
            threading.Thread(target=self.server.shutdown, daemon=True).start()

        def orphaned():
            while os.getppid() == parent:
                time.sleep(0.5)
            stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        threading.Thread(target=orphaned, daemon=True).start()
        code = 0
        try:
            self.server.serve_forever()
        except BaseException:  # noqa: BLE001 (the child must reach os._exit, whatever happened)
            code = 1
        finally:
            try:
                os.write(pipe, str(self.server.served_bytes).encode())
            finally:
                os._exit(code)

    def stop(self) -> int:
        """Stop serving; the bytes served."""
        if self.pid is None:
            self.server.shutdown()
            self.server.server_close()
            return self.server.served_bytes
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        try:
            return int(os.read(self._pipe, 64) or 0)
        except (OSError, ValueError):
            return 0
        finally:
            os.close(self._pipe)
