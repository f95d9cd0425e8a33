"""The room's web app (Starlette on uvicorn): the page, the report API for students, exports.

    GET  /                     the page (static; its data comes from /api/room with the token)
    GET  /room.js, /room.css   the page's script and style (no CDN: everything is here)
    GET  /api/hello            a student's class.join checks URL and code (header X-Class-Code)
    POST /api/reports          a student's report (X-Class-Code; JSON envelope, schema.py)
    GET  /api/room             the room as JSON for the page           } the instructor's token:
    GET  /api/export.json|csv  the room as a download                  } Authorization: Bearer T
    GET  /api/history/{seat}   every report of one seat                } or ?token=T
    POST /api/clear            empty the page (history stays)          }

Status codes a student's client acts on: 201 stored; 400 not JSON; 403 wrong code; 413 too large;
422 not a valid report; 429 too many from one seat (Retry-After). Nothing is stored unless 201.
"""
from __future__ import annotations

import hmac
import json
import threading
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from labkit.room import schema, store

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


class Bucket:
    """Reports per seat: a burst of `burst` (a queue being flushed), then one per `per` seconds."""

    def __init__(self, burst: int = 10, per: float = 1.0):
        self.burst, self.per = burst, per
        self._seats: dict = {}
        self._lock = threading.Lock()

    def take(self, seat: str, now: float) -> bool:
        with self._lock:
            tokens, last = self._seats.get(seat, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) / self.per)
            if tokens < 1:
                self._seats[seat] = (tokens, now)
                return False
            self._seats[seat] = (tokens - 1, now)
            return True


def _error(status: int, text: str, **headers) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers or None)


def create_app(room: store.Room, code: str, token: str, bundle_url: str = "", bucket: Bucket | None = None):
    bucket = bucket or Bucket()
    pages = {path: ((HERE / name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}

    def page(request: Request) -> Response:
        body, kind = pages[request.url.path]
        return Response(body, media_type=kind)

    def code_ok(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("x-class-code", "").strip().upper().encode(), code.encode())

    def instructor(request: Request) -> bool:
        given = request.query_params.get("token", "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    async def hello(request: Request) -> Response:
        if not code_ok(request):
            return _error(403, "wrong class code")
        return JSONResponse({"class": "labkit", "bundle": bundle_url})

    async def post_report(request: Request) -> Response:
        if not code_ok(request):
            return _error(403, "wrong class code")
        length = request.headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > schema.MAX_BODY):
            return _error(413, f"a report may be at most {schema.MAX_BODY // 1024} KB")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > schema.MAX_BODY:
                return _error(413, f"a report may be at most {schema.MAX_BODY // 1024} KB")
        try:
            envelope = json.loads(body)
        except ValueError:
            return _error(400, "the body is not JSON")
        problem = await run_in_threadpool(schema.problem, envelope)
        if problem:
            return _error(422, f"not a labkit report: {problem}")
        now = time.time()
        if not bucket.take(envelope["seat"], now):
            return _error(429, "too many reports from this seat; wait a second", **{"Retry-After": "1"})
        rid = await run_in_threadpool(room.add, envelope, now)
        return JSONResponse({"id": rid}, status_code=201)

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if not instructor(request):
                return _error(403, "the instructor's token is needed (the page URL class.serve printed)")
            return await handler(request)
        return endpoint

    async def room_view(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(room.view))

    async def export_json(request: Request) -> Response:
        view = await run_in_threadpool(room.view)
        return Response(json.dumps(view, indent=2, ensure_ascii=False), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="room.json"'})

    async def export_csv(request: Request) -> Response:
        view = await run_in_threadpool(room.view)
        return PlainTextResponse(store.csv_text(view), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="room.csv"'})

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
        Route("/api/reports", post_report, methods=["POST"]),
        Route("/api/room", guarded(room_view)),
        Route("/api/export.json", guarded(export_json)),
        Route("/api/export.csv", guarded(export_csv)),
        Route("/api/history/{seat}", guarded(history)),
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
