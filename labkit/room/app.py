"""The room's web app (Starlette on uvicorn): the page, the report API for students, exports.

    GET  /                     the page (static; its data comes from /api/room with the token)
    GET  /room.js, /room.css   the page's script and style (no CDN: everything is here)
    GET  /api/hello            is this a labkit room with this code? (header X-Class-Code)
    POST /api/join             a student's class.join: {name, seat?, key?} -> {seat, key, name, bundle}
    POST /api/reports          a student's report (X-Class-Code, X-Seat-Key; JSON envelope, schema.py)
    GET  /api/room             the room as JSON for the page           } the instructor's token,
    GET  /api/export.json|csv  the room as a download                  } only as a header:
    GET  /api/history/{seat}   every report of one seat                } Authorization: Bearer T
    GET  /api/laptops[.json|.csv]  each seat's latest acceptance run   }
    POST /api/clear            empty the page (history stays)          }

Status codes a student's client acts on: 201 stored; 400 not JSON; 403 wrong code or seat key (join
again); 408 body too slow; 409 room full; 413 too large (a report, or a seat's quota); 422 not a valid
report; 429 too many (Retry-After); 507 the instructor's disk is full. Nothing is stored unless 201.

Limits per client address, before anything else is looked at: posts (valid or not), new seats, and
refused attempts (403s): after REFUSALS of them an address gets 429 until its bucket refills.
"""
from __future__ import annotations

import hmac
import json
import math
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from labkit.room import laptops, schema, store

HERE = Path(__file__).resolve().parent
STATIC = {"/": ("page.html", "text/html; charset=utf-8"), "/room.js": ("room.js", "text/javascript; charset=utf-8"),
          "/room.css": ("room.css", "text/css; charset=utf-8")}
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                 b"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
BODY_TIMEOUT = 10.0   # seconds to send a report's body (the headers have their own limit: serve.py)
JOIN_MAX = 4096       # bytes of a join request


class Bucket:
    """Tokens per key (a seat, an address): a burst of `burst`, then one per `per` seconds."""

    def __init__(self, burst: int = 10, per: float = 1.0):
        self.burst, self.per = burst, per
        self._keys: dict = {}
        self._lock = threading.Lock()

    def _now(self, key: str, now: float) -> float:
        tokens, last = self._keys.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) / self.per)

    def take(self, key: str, now: float) -> bool:
        with self._lock:
            tokens = self._now(key, now)
            if tokens < 1:
                self._keys[key] = (tokens, now)
                return False
            self._keys[key] = (tokens - 1, now)
            return True

    def empty(self, key: str, now: float) -> bool:
        with self._lock:
            return self._now(key, now) < 1

    def wait(self, key: str, now: float) -> int:
        """Seconds until the next token (for Retry-After)."""
        with self._lock:
            return max(1, math.ceil((1 - self._now(key, now)) * self.per - 1e-9))


@dataclass
class Limits:
    """What one seat and one client address may do. A classroom laptop sends a report every few seconds
    at most; a queue flushed after an outage is a burst of up to 10."""
    seat: Bucket = field(default_factory=lambda: Bucket(10, 1.0))        # reports per seat
    posts: Bucket = field(default_factory=lambda: Bucket(30, 0.5))       # every POST per address, valid or not
    new_seats: Bucket = field(default_factory=lambda: Bucket(3, 60.0))   # seats made per address
    refusals: Bucket = field(default_factory=lambda: Bucket(10, 6.0))    # 403s per address, then 429


def _error(status: int, text: str, **headers) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers or None)


class BadBody(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.response = _error(status, text)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most `limit` bytes (counted while reading, also when chunked), within BODY_TIMEOUT."""
    length = request.headers.get("content-length", "")
    too_large = f"a report may be at most {limit // 1024} KB"
    if length and (not length.isdigit() or int(length) > limit):
        raise BadBody(413, too_large)
    body = bytearray()
    try:
        with anyio.fail_after(BODY_TIMEOUT):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise BadBody(413, too_large)
    except TimeoutError:
        raise BadBody(408, f"the body took longer than {BODY_TIMEOUT:.0f} s") from None
    except ClientDisconnect:
        raise BadBody(400, "the body ended early (the client went away)") from None
    return bytes(body)


def create_app(room: store.Room, code: str, token: str, bundle_url: str = "", limits: Limits | None = None,
               say: Callable[[str], None] = print):
    """The room's ASGI app. `say` prints one line on the instructor's console (the disk is full, ...)."""
    limits = limits or Limits()
    pages = {path: ((HERE / name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}
    trouble = {"storing": ""}  # what the console was last told about storing ("" = all well)

    def page(request: Request) -> Response:
        body, kind = pages[request.url.path]
        return Response(body, media_type=kind)

    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def backed_off(request: Request):
        """429 for an address that was refused too often lately, else None."""
        addr = address(request)
        if limits.refusals.empty(addr, time.monotonic()):
            wait = limits.refusals.wait(addr, time.monotonic())
            return _error(429, f"too many refused attempts from this address; wait {wait} s",
                          **{"Retry-After": str(wait)})
        return None

    def refuse(request: Request, text: str) -> JSONResponse:
        limits.refusals.take(address(request), time.monotonic())
        return _error(403, text)

    def too_many_posts(request: Request):
        if not limits.posts.take(address(request), time.monotonic()):
            return _error(429, "too many requests from this address; wait a second", **{"Retry-After": "1"})
        return None

    def code_ok(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("x-class-code", "").strip().upper().encode(), code.encode())

    def key_ok(seat: str, key: str) -> bool:
        return hmac.compare_digest(key.encode(), store.seat_key(token, seat).encode())

    def instructor(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return hmac.compare_digest(given.encode(), token.encode())

    async def hello(request: Request) -> Response:
        if (answer := backed_off(request)) is not None:
            return answer
        if not code_ok(request):
            return refuse(request, "wrong class code")
        return JSONResponse({"class": "labkit", "bundle": bundle_url})

    async def join(request: Request) -> Response:
        if (answer := backed_off(request) or too_many_posts(request)) is not None:
            return answer
        if not code_ok(request):
            return refuse(request, "wrong class code")
        try:
            data = schema.parse(await read_body(request, JOIN_MAX))
        except BadBody as bad:
            return bad.response
        except ValueError as exc:
            return _error(400, f"the body is not JSON ({exc})")
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or schema.problem_of_name(name):
            return _error(422, f"name: {schema.problem_of_name(name) if isinstance(name, str) else 'missing'}")
        seat, key = data.get("seat"), data.get("key")
        if not (isinstance(seat, str) and isinstance(key, str) and key_ok(seat, key)):  # a new seat
            if not limits.new_seats.take(address(request), time.monotonic()):
                wait = limits.new_seats.wait(address(request), time.monotonic())
                return _error(429, f"too many new seats from this address; wait {wait} s", **{"Retry-After": str(wait)})
            if await run_in_threadpool(room.full):
                return _error(409, f"the room is full ({store.MAX_SEATS} seats)")
            seat = secrets.token_hex(8)
        return JSONResponse({"seat": seat, "key": store.seat_key(token, seat), "name": schema.clean_text(name),
                             "bundle": bundle_url})

    async def post_report(request: Request) -> Response:
        if (answer := backed_off(request) or too_many_posts(request)) is not None:
            return answer
        if not code_ok(request):
            return refuse(request, "wrong class code")
        try:
            envelope = schema.parse(await read_body(request, schema.MAX_BODY))
        except BadBody as bad:
            return bad.response
        except ValueError as exc:
            return _error(400, f"the body is not JSON ({exc})")
        problem = await run_in_threadpool(schema.problem, envelope)
        if problem:
            return _error(422, f"not a labkit report: {problem}")
        if not key_ok(envelope["seat"], request.headers.get("x-seat-key", "")):
            return refuse(request, "this seat's key is not one this room gave: join the room again")
        if not limits.seat.take(envelope["seat"], time.monotonic()):
            return _error(429, "too many reports from this seat; wait a second", **{"Retry-After": "1"})
        try:
            rid = await run_in_threadpool(room.add, schema.normalised(envelope), time.time())
        except store.Refused as no:
            return _error(no.status, no.text)
        except sqlite3.Error as exc:
            full = "full" in str(exc)
            told = f"the disk of {room.path.parent} is full" if full else f"the room's database fails ({exc})"
            if trouble["storing"] != told:
                trouble["storing"] = told
                say(f"class.serve: {told}: reports are refused and stay queued on the laptops until it is fixed")
            return _error(507 if full else 503, "the room cannot store reports now; yours stays queued")
        if trouble["storing"]:
            trouble["storing"] = ""
            say("class.serve: reports are stored again")
        return JSONResponse({"id": rid}, status_code=201)

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if (answer := backed_off(request)) is not None:
                return answer
            if not instructor(request):
                return refuse(request, "the instructor's token is needed (open the page URL class.serve wrote)")
            return await handler(request)
        return endpoint

    async def room_view(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(room.view))

    async def export_json(request: Request) -> Response:
        view = await run_in_threadpool(room.view)
        return Response(json.dumps(view, indent=2, ensure_ascii=False, allow_nan=False), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="room.json"'})

    async def export_csv(request: Request) -> Response:
        view = await run_in_threadpool(room.view)
        return PlainTextResponse(store.csv_text(view), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="room.csv"'})

    async def laptops_view() -> dict:
        return laptops.view(await run_in_threadpool(room.laptops), time.time())

    async def laptops_json(request: Request) -> Response:
        return JSONResponse(await laptops_view())

    async def laptops_export_json(request: Request) -> Response:
        return Response(json.dumps(await laptops_view(), indent=2, ensure_ascii=False, allow_nan=False),
                        media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="laptops.json"'})

    async def laptops_export_csv(request: Request) -> Response:
        return PlainTextResponse(laptops.csv_text(await laptops_view()), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="laptops.csv"'})

    async def history(request: Request) -> Response:
        seat = request.path_params["seat"]
        if not seat.isalnum():
            return _error(404, "no such seat")
        return JSONResponse(await run_in_threadpool(room.history, seat))

    async def clear(request: Request) -> Response:
        await run_in_threadpool(room.clear)
        return JSONResponse({"cleared": True})

    routes = [Route(path, page) for path in STATIC] + [
        Route("/api/hello", hello),
        Route("/api/join", join, methods=["POST"]),
        Route("/api/reports", post_report, methods=["POST"]),
        Route("/api/room", guarded(room_view)),
        Route("/api/export.json", guarded(export_json)),
        Route("/api/export.csv", guarded(export_csv)),
        Route("/api/history/{seat}", guarded(history)),
        Route("/api/laptops", guarded(laptops_json)),
        Route("/api/laptops.json", guarded(laptops_export_json)),
        Route("/api/laptops.csv", guarded(laptops_export_csv)),
        Route("/api/clear", guarded(clear), methods=["POST"]),
    ]
    return SecurityHeaders(Starlette(routes=routes))


class SecurityHeaders:
    """Every answer says: run only this origin's own script, never sniff types, never cache."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message, headers=list(message.get("headers", [])) + SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
