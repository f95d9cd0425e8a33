"""One file over HTTP: mirrors in order, Range resume, hash check before the file gets its real name.

The file is written as `<target>.part` and renamed only after its size and hash match, so an
interrupted or failed download never leaves a file that looks complete. A dropped connection keeps
the `.part` (the next try resumes from it); wrong bytes delete it (resuming would keep them).
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from labkit import fsutil

CHUNK = 1024 * 1024
PART = ".part"
NOT_FOUND = (404, 410)


class Cancelled(Exception):
    """The user pressed Ctrl-C: stop at the next chunk, keep the .part for a later resume."""


class _Dropped(Exception):
    """The connection broke or stalled mid-file: resume from what we have."""


class _Status(Exception):
    def __init__(self, code: int, url: str):
        super().__init__(f"HTTP {code}")
        self.code = code
        self.url = url


class _Unreachable(Exception):
    """No connection at all (DNS, refused, TLS): the next mirror may do better."""


@dataclass
class Failure(Exception):
    """Every mirror failed. `kind`: not-found | dropped | mismatch | unreachable | http."""

    kind: str
    attempts: list = field(default_factory=list)  # "<url>: <what happened>"
    kept: int = 0  # bytes kept in the .part for a resume

    def __str__(self) -> str:
        return "; ".join(self.attempts)


def part_of(target: Path) -> Path:
    return target.with_name(target.name + PART)


def download(get: Callable, urls, target: Path, want: dict, size: Optional[int] = None,
             on_bytes: Optional[Callable[[int, Optional[int]], None]] = None, retries: int = 3,
             cancel: Optional[threading.Event] = None, also: tuple = ("sha256",)) -> dict:
    """Fetch `target` from the first mirror that delivers the right bytes; returns {algo: hex}.

    get(url, headers) -> a streaming `requests` response. want: {algo: hex} to insist on (empty:
    unpinned, trust what arrives). also: algorithms to compute anyway (for bundle.lock to record).
    on_bytes(n, total) reports progress. Raises Failure; OSError (disk full, read-only) passes through.
    """
    target = Path(target)
    part = part_of(target)
    algos = sorted(set(want) | set(also))
    attempts, kinds = [], []
    for url in urls:
        tries, fresh_retry = 0, False
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            resumed = part.exists() and part.stat().st_size > 0
            try:
                hashes, got = _transfer(get, url, part, algos, size, on_bytes, cancel)
            except _Dropped as exc:
                tries += 1
                if tries <= retries:
                    continue  # resume from the bytes we kept
                attempts.append(f"{url}: connection dropped {tries} times ({exc})")
                kinds.append("dropped")
                break
            except _Status as exc:
                attempts.append(f"{url}: HTTP {exc.code}")
                kinds.append("not-found" if exc.code in NOT_FOUND else "http")
                break
            except _Unreachable as exc:
                attempts.append(f"{url}: {exc}")
                kinds.append("unreachable")
                break
            bad = _mismatch(hashes, want, got, size)
            if bad:
                part.unlink(missing_ok=True)  # never resume on top of wrong bytes
                if resumed and not fresh_retry:
                    fresh_retry = True  # the kept part may be what was wrong: one clean try
                    continue
                attempts.append(f"{url}: {bad}")
                kinds.append("mismatch")
                break
            fsutil.replace(part, target)  # retried while an antivirus scans it (Windows)
            return hashes
    kept = part.stat().st_size if part.exists() else 0
    kind = next((k for k in ("mismatch", "dropped", "http", "unreachable") if k in kinds), "not-found")
    raise Failure(kind, attempts, kept)


def _mismatch(hashes: dict, want: dict, got: int, size: Optional[int]) -> Optional[str]:
    if size is not None and got != size:
        return f"wrong size ({got} bytes, the lock says {size})"
    for algo, hexdigest in want.items():
        if hashes[algo] != hexdigest:
            return f"wrong bytes ({algo} {hashes[algo][:16]}…, the lock pins {hexdigest[:16]}…)"
    return None


def _hash_existing(part: Path, algos) -> tuple[dict, int]:
    hashers = {a: hashlib.new(a) for a in algos}
    got = 0
    if part.exists():
        with open(part, "rb") as fh:
            while chunk := fh.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
                got += len(chunk)
    return hashers, got


def _transfer(get, url, part: Path, algos, size, on_bytes, cancel) -> tuple[dict, int]:
    """Bring `part` to the end of the remote file. Returns ({algo: hex}, total bytes)."""
    import requests
    import urllib3

    part.parent.mkdir(parents=True, exist_ok=True)
    if size is not None and part.exists() and part.stat().st_size > size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
    hashers, have = _hash_existing(part, algos)
    if size is not None and have == size:
        return {a: h.hexdigest() for a, h in hashers.items()}, have  # a finished .part: just check it
    headers = {"Accept-Encoding": "identity"}  # the bytes as published, never re-encoded in transit
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = get(url, headers)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Unreachable(_reason(exc)) from None
    except requests.RequestException as exc:
        raise _Unreachable(_reason(exc)) from None
    with resp:
        if resp.status_code == 416 and have:
            total = _content_range_total(resp.headers.get("Content-Range", ""))
            if total == have:  # we already had every byte
                return {a: h.hexdigest() for a, h in hashers.items()}, have
            part.unlink()
            raise _Dropped("the server refused to resume; starting over")
        if resp.status_code == 206 and have:
            start = _content_range_start(resp.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Dropped("the server resumed at the wrong offset; starting over")
            mode = "ab"
        elif resp.status_code == 200:
            if have:  # the server ignored Range: take the whole file again
                hashers, have = {a: hashlib.new(a) for a in algos}, 0
            mode = "wb"
        else:
            raise _Status(resp.status_code, url)
        length = resp.headers.get("Content-Length")
        expect_total = have + int(length) if length and length.isdigit() else size
        if on_bytes:
            on_bytes(0, expect_total)
        got = have
        with open(part, mode) as fh:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                try:
                    chunk = _read_some(resp.raw)
                except (urllib3.exceptions.HTTPError, requests.RequestException, ConnectionError, TimeoutError) as exc:
                    raise _Dropped(_reason(exc)) from None
                if not chunk:
                    break
                fh.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                got += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk), expect_total)
                if size is not None and got > size:
                    break  # more bytes than the lock allows: it is the wrong file, stop reading
        if expect_total is not None and got < expect_total:
            raise _Dropped(f"got {got} of {expect_total} bytes")
    return {a: h.hexdigest() for a, h in hashers.items()}, got


def _read_some(raw) -> bytes:
    """What has arrived, up to CHUNK: bytes received before a stall or a drop are kept (a plain
    read(CHUNK) would wait for the whole chunk and lose them with the timeout)."""
    read1 = getattr(raw, "read1", None)  # urllib3 >= 2
    if read1 is not None:
        return read1(CHUNK, decode_content=False)
    return raw.read(64 * 1024, decode_content=False)


def _content_range_start(value: str) -> Optional[int]:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _content_range_total(value: str) -> Optional[int]:
    # "bytes */200"
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """A short human reason from requests/urllib3's nested exceptions."""
    text = str(exc)
    for marker in ("Failed to resolve", "Name or service not known", "Connection refused", "timed out",
                   "IncompleteRead", "Connection broken", "Remote end closed", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return marker.lower() if marker != "IncompleteRead" else "connection broken mid-file"
    return text.splitlines()[0][:120] if text else type(exc).__name__
