"""bundle.fetch: every artifact of the lock into the bundle directory, verified, resumable, in parallel.

Files come from their mirrors (or from a classroom mirror, `--from URL`: URL/<path>), images from
their registry through the HTTP API (no Docker daemon) and are written as docker-archive tarballs.
Nothing gets its real name before its hash matches; valid files already there are never touched.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import requests

from labkit.bundle import archive, checksums, download
from labkit.bundle.download import Cancelled, Failure, part_of
from labkit.bundle.progress import Meter, mb
from labkit import fsutil
from labkit.errors import LabkitError

USER_AGENT = "labkit-bundle/0.1 (+offline classroom Kubernetes lab)"
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


@dataclass
class Options:
    from_url: Optional[str] = None  # a classroom mirror (bundle.serve) instead of the internet
    allow_unpinned: bool = False    # fetch artifacts without a pin (nothing checks them!)
    record: bool = False            # bundle.lock: unpinned is expected, report what arrived
    workers: int = 4
    retries: int = 3                # resumes per mirror after a dropped connection
    timeout: tuple = (10, 60)       # connect, read (a stalled server counts as a dropped connection)


@dataclass
class FetchOutcome:
    name: str
    error: Optional[LabkitError] = None
    skipped: bool = False           # was already present and intact
    sha256: Optional[str] = None    # of the file as written (for bundle.lock to record)
    size: Optional[int] = None
    digest: Optional[str] = None    # image: what its ref resolved to
    image_id: Optional[str] = None  # image taken from a source: its image ID


class Sessions:
    """One requests.Session per thread (Session is not thread-safe), created on first use."""

    def __init__(self, pool: int = 8):
        self._local = threading.local()
        self._pool = pool

    def __call__(self):
        s = getattr(self._local, "session", None)
        if s is None:
            import requests
            from requests.adapters import HTTPAdapter

            s = requests.Session()
            s.headers["User-Agent"] = USER_AGENT
            adapter = HTTPAdapter(pool_connections=self._pool, pool_maxsize=self._pool)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session = s
        return s


def result_interruptibly(fut: Future, slice_s: float = 0.2):
    """fut.result(), waiting in short slices: on Windows a blocking wait ignores Ctrl-C before Python 3.14."""
    while not wait([fut], timeout=slice_s).done:
        pass
    return fut.result()


def check_writable(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=dest, prefix=".labkit-probe-", suffix=download.PART)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LabkitError(f"the bundle directory {dest} is not writable ({exc.strerror or exc})",
                          "pass --dest with a directory you can write to, or fix its permissions") from None


def refuse_unpinned(artifacts) -> None:
    unpinned = [a.name for a in artifacts if not a.pinned]
    if unpinned:
        shown = ", ".join(unpinned[:6]) + (f" and {len(unpinned) - 6} more" if len(unpinned) > 6 else "")
        raise LabkitError(f"{len(unpinned)} artifact(s) in the lock are unpinned, so nothing could check them: {shown}",
                          "on a connected machine run invoke bundle.lock (it pins them) and commit the lock; "
                          "or pass --allow-unpinned to take them unchecked")


def fetch(lock, artifacts, dest: Path, opts: Options, step=None, cancel: Optional[threading.Event] = None
          ) -> list[FetchOutcome]:
    """Fetch what is missing or wrong among `artifacts`. Returns one FetchOutcome per artifact (lock order),
    then one per source fetched only to take images from (a release tarball, see derive.py).

    On success of every artifact, <dest>/CHECKSUMS is (re)written for the VM's provision scripts.
    """
    from labkit.bundle import verify

    dest = Path(dest)
    check_writable(dest)
    if not (opts.allow_unpinned or opts.record):
        refuse_unpinned(artifacts)
    cancel = cancel or threading.Event()
    # present and intact are skipped; unpinned ones only under --allow-unpinned (bundle.lock re-fetches
    # them: a pin is recorded from the source, never from a file of unknown origin)
    present = {f.name for f in verify.verify(artifacts, dest, allow_unpinned=opts.allow_unpinned) if f.ok}
    todo = [a for a in artifacts if a.name not in present]
    outcomes = {a.name: FetchOutcome(a.name, skipped=True) for a in artifacts if a.name in present}
    # images taken from a release tarball: from the internet, the source is fetched (if not already intact)
    # and they are taken from it afterwards; from a classroom mirror they are plain archives like the rest
    taken = [a for a in todo if a.source and not opts.from_url]
    sources = [lock.get(n) for n in dict.fromkeys(a.source for a in taken)]
    intact = {f.name for f in verify.verify(sources, dest) if f.ok} if sources else set()
    direct = [a for a in todo if a not in taken] + [s for s in sources if s.name not in intact and s not in todo]
    if todo:
        _check_space(direct, dest)
        sessions = Sessions(max(8, opts.workers * 2))
        meter = Meter(step, _known_total(direct + taken), len(direct) + len(taken)) if step is not None else None
        try:
            with ThreadPoolExecutor(max_workers=opts.workers) as pool:
                futures = {a.name: pool.submit(_one, a, dest, opts, sessions, meter, cancel) for a in direct}
                try:
                    for name, fut in futures.items():
                        outcomes[name] = result_interruptibly(fut)
                except KeyboardInterrupt:
                    cancel.set()  # workers stop at their next chunk; .part files stay for a resume
                    raise
            for source in sources:
                outcomes.update(_take(source, [a for a in taken if a.source == source.name], dest,
                                      outcomes.get(source.name), meter, cancel))
        finally:
            if meter is not None:
                meter.close()
    # the sources fetched only to take images from come last (resolve.py pairs the first ones with artifacts)
    result = [outcomes[a.name] for a in artifacts] + [outcomes[s.name] for s in sources
                                                       if s not in artifacts and s.name in outcomes]
    if not any(o.error for o in result):
        checksums.write(lock, dest)
    return result


def _known_total(artifacts) -> Optional[int]:
    sizes = [a.size for a in artifacts]
    return sum(sizes) if all(s is not None for s in sizes) else None


def _check_space(todo, dest: Path) -> None:
    need = 0
    for a in todo:
        if a.size is not None:
            part = part_of(a.file(dest))
            need += a.size - (part.stat().st_size if part.is_file() else 0)
    free = shutil.disk_usage(dest).free
    if need > free:
        raise LabkitError(f"the artifacts still to fetch need {mb(need)} but {dest} has only {mb(free)} free",
                          "free some space there, or pass --dest on a disk with more room")


def _want(a) -> dict:
    return {algo: getattr(a, algo) for algo in ("sha256", "sha512") if getattr(a, algo)}


def _one(a, dest: Path, opts: Options, sessions: Sessions, meter: Optional[Meter], cancel) -> FetchOutcome:
    target = a.file(dest)
    am = meter.artifact(a.name) if meter is not None else None
    on_bytes = am.on_bytes if am is not None else None
    try:
        if opts.from_url or a.kind == "file":
            urls = [f"{opts.from_url.rstrip('/')}/{quote(a.path)}"] if opts.from_url else list(a.urls)
            get = _plain_get(sessions, opts.timeout)
            if a.kind == "image" and a.pinned and not _want(a):
                hashes = _mirror_image(a, get, urls, target, opts, on_bytes, cancel)
            else:
                hashes = download.download(get, urls, target, _want(a), a.size, on_bytes, opts.retries, cancel)
            outcome = FetchOutcome(a.name, sha256=hashes["sha256"], size=target.stat().st_size, digest=a.digest,
                                   image_id=a.id)
        else:
            outcome = _image(a, target, opts, sessions, on_bytes, cancel)
    except Cancelled:
        raise KeyboardInterrupt from None
    except Failure as exc:
        error = _failure_error(a, exc, opts)
    except requests.RequestException as exc:  # before OSError: requests' errors are OSErrors too
        where = getattr(exc.request, "url", None) or a.ref or "its source"
        error = LabkitError(f"{a.name}: cannot reach {where} ({download._reason(exc)})",
                            "check the network connection, or fetch from a classroom mirror with --from")
    except OSError as exc:
        error = _disk_error(a, target, dest, exc)
    except LabkitError as exc:
        error = LabkitError(f"{a.name}: {exc.message}", exc.fix)
    else:
        if am is not None:
            am.finish(mb(outcome.size))
        return outcome
    if am is not None:
        am.fail()
    return FetchOutcome(a.name, error=error)


def _take(source, images, dest: Path, fetched: Optional[FetchOutcome], meter: Optional[Meter], cancel) -> dict:
    """{name: FetchOutcome} for images taken from `source` (fetched just now, or found intact)."""
    from labkit.bundle import derive

    if fetched is not None and fetched.error:
        return {a.name: FetchOutcome(a.name, error=LabkitError(
            f"{a.name}: is taken from {source.name}, which could not be fetched (its own line says why)",
            fetched.error.fix))
            for a in images}
    meters = {a.name: meter.artifact(a.name) for a in images} if meter is not None else {}
    try:
        results = derive.take(source.file(dest), images, dest,
                              (lambda name, n: meters[name].on_bytes(n)) if meters else None, cancel)
    except download.Cancelled:
        raise KeyboardInterrupt from None
    except OSError as exc:  # a full disk: the line names the image being written, the others were not reached
        results = {a.name: _disk_error(a, a.file(dest), dest, exc) for a in images}
    out = {}
    for a in images:
        r = results[a.name]
        if isinstance(r, LabkitError):
            if a.name in meters:
                meters[a.name].fail()
            named = r.message.startswith(f"{a.name} ")  # _disk_error's lines name the artifact already
            out[a.name] = FetchOutcome(a.name, error=r if named else LabkitError(f"{a.name}: {r.message}", r.fix))
        else:
            if a.name in meters:
                meters[a.name].finish(mb(r[2]))
            out[a.name] = FetchOutcome(a.name, sha256=r[1], size=r[2], image_id=r[0])
    return out


def _mirror_image(a, get, urls, target: Path, opts: Options, on_bytes, cancel) -> dict:
    """An image archive from a classroom mirror, pinned by its digest (or image ID) alone: it gets its name
    only after archive.check_image found in it exactly the image the lock pins (config, every layer)."""
    staging = target.with_name(target.name + ".unchecked" + download.PART)
    hashes = download.download(get, urls, staging, {}, a.size, on_bytes, opts.retries, cancel)
    wrong = archive.check_image(staging, a)
    if wrong:
        staging.unlink(missing_ok=True)
        raise LabkitError(f"the mirror's archive {wrong}; nothing was saved",
                          "ask the instructor to run invoke bundle.verify (it repairs the bundle), then fetch again")
    os.replace(staging, target)
    return hashes


def _plain_get(sessions: Sessions, timeout):
    def get(url, headers):
        return sessions().get(url, headers=headers, stream=True, timeout=timeout)

    return get


def _image(a, target: Path, opts: Options, sessions: Sessions, on_bytes, cancel) -> FetchOutcome:
    from labkit.bundle import registry

    client = registry.Client(sessions, opts.timeout)
    ref = registry.parse_ref(a.ref)
    image = client.resolve(ref, a.digest, a.platform_arch, a.child)
    blobs = target.with_name(target.name + ".blobs" + download.PART)  # *.part: rsync and serve skip it
    unique = {d["digest"]: d for d in (image.config, *image.layers)}
    if on_bytes:
        on_bytes(0, sum(int(d.get("size", 0)) for d in unique.values()))

    def path_of(digest: str) -> Path:
        return blobs / digest.split(":", 1)[1]

    for digest, desc in unique.items():
        size = desc.get("size")
        try:
            download.download(client.get, [client.blob_url(ref, digest)], path_of(digest),
                              {"sha256": digest.split(":", 1)[1]}, int(size) if size is not None else None,
                              (lambda n, total: on_bytes(n, None)) if on_bytes else None, opts.retries, cancel,
                              also=())
        except Failure as exc:
            if exc.kind != "mismatch":
                raise
            # the blob's name is its digest: bad bytes are the registry's (or the network's), not the lock's
            raise LabkitError(f"the registry {ref.registry} sent bytes for blob {digest[:19]}… that do not match "
                              "that digest (or the size in the manifest); nothing was saved",
                              "run the same command again (a proxy or a flaky connection may have damaged "
                              "them), or fetch from a classroom mirror with --from") from None
    part = part_of(target)
    try:
        with open(part, "wb") as fh:
            sha256, size = archive.write(fh, a.image_tag, image.config, image.layers, path_of,
                                         documents=image.documents, arch=a.platform_arch)
        problem = None
        if a.sha256 and sha256 != a.sha256:
            problem = f"sha256 {sha256[:16]}…, the lock pins {a.sha256[:16]}…"
        elif a.size is not None and size != a.size:
            problem = f"{size} bytes, the lock says {a.size}"
        if problem:
            raise LabkitError(f"the archive built from {image.digest} differs from the pinned one ({problem})",
                              "the registry sent the pinned image, so the pin was made with another labkit version: "
                              "re-pin with invoke bundle.lock and review the diff")
        fsutil.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    shutil.rmtree(blobs, ignore_errors=True)
    return FetchOutcome(a.name, sha256=sha256, size=size, digest=image.digest)


def _failure_error(a, exc: Failure, opts: Options) -> LabkitError:
    where = f"{a.name} ({a.path})"
    tried = f"{len(exc.attempts)} mirror(s)" if not opts.from_url else opts.from_url
    if exc.kind == "not-found":
        return LabkitError(f"{where} was not found on {tried}: {exc}",
                           "check its urls in the lock (the file may have moved upstream), or fetch from a "
                           "classroom mirror with --from http://<instructor>:8787" if not opts.from_url else
                           "the classroom mirror does not have it: ask the instructor to run invoke bundle.fetch")
    if exc.kind == "mismatch":
        return LabkitError(f"{where}: every source sent bytes that do not match the lock ({exc}); nothing was saved",
                           "the source serves a different file than the one pinned: compare the pin with the "
                           "publisher's checksum (docs/bundle.md) before changing it")
    if exc.kind == "dropped":
        return LabkitError(f"{where}: the connection kept dropping ({exc}); {mb(exc.kept)} kept in "
                           f"{part_of(Path(a.path)).name}", "run the same command again: it resumes where it stopped")
    if exc.kind == "unreachable" and opts.from_url:  # the student did use --from: say which end is wrong
        if "connection refused" in str(exc):
            return LabkitError(f"{where}: the classroom mirror {opts.from_url} is not serving (connection refused)",
                               "check that invoke bundle.serve is running on the instructor's machine and that "
                               "--from is the URL it printed")
        return LabkitError(f"{where}: the classroom mirror {opts.from_url} cannot be reached from this laptop ({exc})",
                           "check that this laptop is on the classroom network (ping the instructor's address) "
                           "and that invoke bundle.serve runs there")
    if exc.kind == "unreachable":
        return LabkitError(f"{where}: no source could be reached ({exc})",
                           "check the network connection, or fetch from a classroom mirror with --from")
    return LabkitError(f"{where}: the server refused ({exc})", "try again later, or use another mirror")


def _disk_error(a, target: Path, dest: Path, exc: OSError) -> LabkitError:
    if exc.errno in DISK_FULL:
        freed = 0
        for leftover in (part_of(target), target.with_name(target.name + ".blobs" + download.PART)):
            if leftover.is_file():
                freed += leftover.stat().st_size
                leftover.unlink()
            elif leftover.is_dir():
                freed += sum(p.stat().st_size for p in leftover.rglob("*") if p.is_file())
                shutil.rmtree(leftover, ignore_errors=True)
        need = f"{mb(a.size)} for this artifact" if a.size else "more space"
        return LabkitError(f"{a.name} ({a.path}): no space left on the disk of {dest} (removed its partial "
                           f"download, {mb(freed)})", f"free at least {need} there, or pass --dest on a bigger disk")
    if exc.errno in NOT_WRITABLE:
        return LabkitError(f"{a.name}: cannot write {target} ({exc.strerror})",
                           "pass --dest with a directory you can write to, or fix its permissions")
    return LabkitError(f"{a.name}: {exc.strerror or exc} ({getattr(exc, 'filename', '') or target})",
                       "check the disk, then run the same command again")


def unpinned_warning(artifacts) -> Optional[str]:
    names = [a.name for a in artifacts if not a.pinned]
    if not names:
        return None
    return (f"UNPINNED: {', '.join(names)}: the lock has no pin, so nothing checks these bytes "
            "(--allow-unpinned). Run invoke bundle.lock on a connected machine to pin them.")
