"""bundle.*: the offline bundle. Fetch it once (online), verify it, serve it to a classroom, pin the lock."""
from __future__ import annotations

from labkit.tasks._common import labtask, settings

LOCK_HELP = "the lock file (default: bundle.lock in settings, bundle.lock.yaml)"
DEST_HELP = "the bundle directory (default: bundle.dir in settings)"
ONLY_HELP = "only these artifacts, comma-separated names from the lock"
UNPINNED_HELP = "also take artifacts the lock has no hash for (NOT verified; for testing a new lock)"
ALL_BOXES_HELP = ("everything any laptop may need: the box files of every provider and the artifacts of both "
                  "guest architectures (an instructor serving a mixed classroom)")
ARCH_HELP = ("the guest architecture(s) to take: amd64, arm64 or all (default: this laptop's, settings arch; "
             "Apple Silicon is arm64)")
WORKERS_HELP = "parallel downloads (default 4)"
SERVE_PORT = 8787


def _open(c, lock, dest):
    from labkit.bundle import lock as lockmod

    return lockmod.load_for(settings(c), lock, dest)


def _archs(c, arch):
    """--arch as the architectures it names: this laptop's guest architecture by default, None for all."""
    from labkit.bundle.lock import ARCHS
    from labkit.errors import LabkitError

    if arch is None:
        return (settings(c).arch,)
    if arch == "all":
        return None
    if arch not in ARCHS:
        raise LabkitError(f"--arch {arch} is not a guest architecture", f"use one of: {', '.join(ARCHS)}, all")
    return (arch,)


def _chosen(c, lk, only, all_boxes, arch=None):
    """--only names; else everything (--all-boxes); else what this laptop's provider and guest architecture
    (or --arch) need. Sources (the server tarball) only by name: bundle.fetch takes one itself when an
    image must be taken from it."""
    from labkit import ui

    if only:
        return lk.select(only)
    if all_boxes:  # everything; a source (the server tarball) still only when an image must be taken from it
        return lk.needed(None, _archs(c, arch) if arch else None)
    provider, archs = settings(c).provider, _archs(c, arch)
    chosen = lk.needed(provider, archs)
    skipped = [a.name for a in lk.needed(None) if a not in chosen]
    if skipped:
        shown = ", ".join(skipped[:6]) + (f" and {len(skipped) - 6} more" if len(skipped) > 6 else "")
        ui.say(f"Skipping {shown}: for other providers than {provider}"
               + (f" or other guest architectures than {', '.join(archs)}" if archs else "")
               + " (--all-boxes takes them too, e.g. to serve a mixed classroom).")
    return chosen


def _loud_unpinned(artifacts) -> None:
    from labkit.bundle.serve import warn_unpinned

    warn_unpinned(artifacts)


@labtask(help={"lock": LOCK_HELP, "dest": DEST_HELP, "from": "fetch from a classroom mirror (the URL bundle.serve "
               "prints) instead of the internet", "only": ONLY_HELP, "allow-unpinned": UNPINNED_HELP,
               "workers": WORKERS_HELP, "all-boxes": ALL_BOXES_HELP, "arch": ARCH_HELP,
               "dry-run": "list the artifacts and where they would come from, download nothing"})
def fetch(c, lock=None, dest=None, from_=None, only=None, allow_unpinned=False, workers=4, all_boxes=False,
          dry_run=False, arch=None):
    """Download the lock's artifacts into the bundle: parallel, resumable, each verified before use."""
    import re

    from invoke import Exit

    from labkit.bundle import fetch as fetchmod
    from labkit.bundle.actions import fetch_plan
    from labkit.errors import LabkitError
    from labkit.steps import context, perform

    lk, dest = _open(c, lock, dest)
    artifacts = _chosen(c, lk, only, all_boxes, arch)
    if from_ and not re.match(r"^https?://[^/]+", from_):
        raise LabkitError(f"--from {from_} is not an http(s) URL", "pass the URL bundle.serve printed, "
                          "like http://192.168.1.20:8787")
    if allow_unpinned:
        _loud_unpinned(artifacts)
    opts = fetchmod.Options(from_url=from_, allow_unpinned=allow_unpinned, workers=max(1, workers))
    try:
        perform(fetch_plan(lk, artifacts, dest, opts), context(settings(c)), dry_run)
    except KeyboardInterrupt:
        raise Exit("labkit: interrupted. Finished files were kept, and so were partial downloads (*.part): "
                   "run the same command again to resume.", code=130) from None


@labtask(help={"lock": LOCK_HELP, "dest": DEST_HELP, "allow-unpinned": "do not count unpinned artifacts as problems",
               "only": ONLY_HELP, "all-boxes": ALL_BOXES_HELP, "arch": ARCH_HELP})
def verify(c, lock=None, dest=None, allow_unpinned=False, only=None, all_boxes=False, arch=None):
    """Hash every artifact against the lock (in parallel); list missing, corrupt and unpinned ones with the fix."""
    from labkit import ui
    from labkit.bundle import checksums
    from labkit.bundle import verify as verifymod
    from labkit.errors import LabkitError

    lk, dest = _open(c, lock, dest)
    artifacts = _chosen(c, lk, only, all_boxes, arch)
    if allow_unpinned:
        _loud_unpinned(artifacts)
    with ui.step(f"Verifying {len(artifacts)} artifacts in {dest} ({verifymod.workers()} threads)") as st:
        findings = verifymod.verify(artifacts, dest, allow_unpinned)
        bad = [f for f in findings if not f.ok]
        if bad:
            ui.table("Bundle problems", ["artifact", "path", "problem", "fix"],
                     [[f.name, f.path, f.problem, f.fix] for f in bad])
            kinds = sorted({f.problem.split(" ")[0] for f in bad})
            raise LabkitError(f"{len(bad)} of {len(findings)} artifacts are {' or '.join(kinds)}",
                              "run the fix shown for each artifact in the table above")
        written = checksums.write_or_warn(lk, dest)
        st.note = f"all {len(findings)} intact" + ("; CHECKSUMS written" if written else "")


@labtask(help={"lock": LOCK_HELP, "dest": DEST_HELP, "port": f"TCP port (default {SERVE_PORT})",
               "host": "address to listen on (default 0.0.0.0: every network of this machine)",
               "allow-unpinned": "also serve artifacts the lock has no hash for"})
def serve(c, lock=None, dest=None, port=SERVE_PORT, host="0.0.0.0", allow_unpinned=False):
    """Serve a verified bundle to a classroom; prints the URL students pass to bundle.fetch --from."""
    from labkit import ui
    from labkit.bundle import serve as servemod

    server, served, dest = servemod.verified_server(settings(c), lock, dest, port, host, allow_unpinned)
    ui.say(f"Serving {len(served)} artifacts from {dest} on port {port}. Students run:")
    everywhere = host in ("", "0.0.0.0", "::")
    if host in ("localhost", "::1") or host.startswith("127."):
        ui.warn(f"--host {host} serves this machine only: students cannot reach it (--host 0.0.0.0 serves them)")
    for address in servemod.lan_addresses() if everywhere else [host]:  # only an address that answers
        ui.say(f"    invoke bundle.fetch --from http://{address}:{port}")
    ui.say("Press Ctrl-C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    ui.say(f"Stopped after serving {server.served_bytes / 1e6:,.1f} MB.")


@labtask(help={"lock": LOCK_HELP, "dest": DEST_HELP})
def status(c, lock=None, dest=None):
    """Bundle size, completeness and age (fast: no hashing; bundle.verify checks hashes)."""
    from labkit import ui
    from labkit.bundle import status as statusmod

    lk, dest = _open(c, lock, dest)
    ui.table(f"Bundle ({lk.path.name})", ["", ""], statusmod.report(lk, dest, provider=settings(c).provider,
                                                                       arch=settings(c).arch))


@labtask(name="lock", help={"lock": LOCK_HELP, "dest": DEST_HELP, "only": ONLY_HELP, "workers": WORKERS_HELP,
                            "dry-run": "show what would be pinned and from where, without any download",
                            "audit": "change nothing: re-derive every pin that has an online source (checksum "
                                     "lists, signed indexes, image tags) and report any difference"})
def pin(c, lock=None, dest=None, only=None, dry_run=False, workers=4, audit=False):
    """Online: pin the lock's unpinned artifacts (download each once, record digest/sha256/size in the lock)."""
    import datetime
    import sys

    from labkit import ui
    from labkit.bundle import checksums, fetch as fetchmod, lockedit, resolve
    from labkit.bundle import lock as lockmod
    from labkit.errors import LabkitError

    lk, dest = _open(c, lock, dest)
    if audit:
        return _audit(lk, dest)
    todo = [a for a in lk.select(only) if not a.pinned]
    if not todo:
        ui.say(f"Nothing to pin: every selected artifact in {lk.path.name} is pinned.")
        return
    if dry_run:
        ui.table(f"Would pin ({lk.path.name})", ["artifact", "kind", "pin from"],
                 [[a.name, a.kind, _source(a)] for a in todo])
        return
    with ui.step(f"Pinning {len(todo)} artifacts (downloading each into {dest})") as st:
        opts = fetchmod.Options(workers=max(1, workers))
        try:
            updates, errors = resolve.resolve(lk, todo, dest, opts, st)
        except KeyboardInterrupt:
            from invoke import Exit

            raise Exit("labkit: interrupted; the lock is unchanged. Run the same command again to resume.",
                       code=130) from None
        today = datetime.date.today().isoformat()
        groups = resolve.by_provenance(lk, updates)
        notes = {"signed-index": "from the signed index (InRelease checked)",
                 "publisher-checksum": "from the published checksum list", "first-use": "first download (review)",
                 "changelog": "image ID from the release tarball the changelog pins"}
        for kind, values in groups.items():
            lockedit.record(lk.path, values, f"bundle.lock {today}: {notes.get(kind, 'archive of the pinned digest')}")
        tofu = groups.get("first-use", {})
        if updates:
            checksums.write(lockmod.load(lk.path), dest)
        st.note = f"{len(updates)} pinned in {lk.path.name}"
        if tofu:
            ui.warn(f"{len(tofu)} pin(s) recorded by trust on first use (no publisher checksum to compare): "
                    f"{', '.join(tofu)}. Review `git diff {lk.path.name}` before committing it.")
        if len(errors) == 1 and not updates:
            raise errors[0]
        if errors:
            for e in errors:
                print(e.line(), file=sys.stderr, flush=True)
            raise LabkitError(f"{len(errors)} of {len(todo)} artifacts could not be pinned (one line each above); "
                              f"{len(updates)} were pinned and written to {lk.path.name}",
                              "fix those causes and run invoke bundle.lock again")


def _source(a) -> str:
    if a.source:
        return f"{a.member} inside {a.source} (its image ID)"
    if a.kind == "image":
        return f"{a.ref}" + (f" at {a.digest[:19]}…" if a.digest else " (digest by tag: trust on first use)")
    return f"published list {a.published}" if a.published else f"first download from {a.urls[0]}"


def _audit(lk, dest) -> None:
    from labkit import ui
    from labkit.bundle import audit
    from labkit.errors import LabkitError

    with ui.step(f"Auditing the {len(lk.artifacts)} pins of {lk.path.name} against their sources") as st:
        found = audit.run(lk, dest)
        counts = {v: sum(r.verdict == v for r in found) for v in (audit.SAME, audit.DIFFERENT, audit.UNCHECKED,
                                                                   audit.BY_HAND)}
        st.note = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    ui.table(f"Audit ({lk.path.name})", ["artifact", "provenance", "lock", "source now", "verdict"],
             [r.cells() for r in found])
    if counts[audit.DIFFERENT]:
        names = ", ".join(r.name for r in found if r.verdict == audit.DIFFERENT)
        raise LabkitError(f"{counts[audit.DIFFERENT]} pin(s) differ from their source now: {names}",
                          "find out why before anyone fetches with this lock (a changed upstream file, or someone "
                          "altering what this network serves); the table above shows both values")
