"""class.*: the instructor's room. class.serve on the instructor's laptop; class.join and class.send on students'."""
from __future__ import annotations

from labkit.tasks._common import labtask, project_root, settings
from labkit.tasks.bundle import DEST_HELP, LOCK_HELP, SERVE_PORT

ROOM_PORT = 8788


def _bind(host: str, port: int):
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


@labtask(help={
    "lock": LOCK_HELP, "dest": DEST_HELP,
    "port": f"TCP port of the bundle, exactly as bundle.serve serves it (default {SERVE_PORT})",
    "room-port": f"TCP port of the room: the page and the students' reports (default {ROOM_PORT})",
    "host": "address to listen on (default 0.0.0.0: every network of this machine)",
    "dir": "class directory: code, token and every report (default .labkit/class)",
    "no-bundle": "serve only the room (the bundle is handed out another way, e.g. on USB sticks)",
    "allow-unpinned": "also serve artifacts the lock has no hash for",
    "open": "open the page in this laptop's browser",
    "new-code": "draw a new class code (students join again with it; their seats, reports and your page URL stay)",
})
def serve(c, lock=None, dest=None, port=SERVE_PORT, room_port=ROOM_PORT, host="0.0.0.0", dir=None,  # noqa: A002
          no_bundle=False, allow_unpinned=False, open=False, new_code=False):  # noqa: A002
    """Serve the verified bundle and the room's live page; prints the join line for the projector."""
    import sqlite3
    from pathlib import Path

    import uvicorn

    from labkit import ui
    from labkit.bundle.serve import lan_addresses
    from labkit.errors import LabkitError
    from labkit.fsutil import write_atomic
    from labkit.room import app as appmod
    from labkit.room import server as roomserver
    from labkit.room import store
    from labkit.bundle.serve import listening, verified_server

    if not 1 <= room_port <= 65535 or room_port == port:
        raise LabkitError(f"--room-port {room_port} is not a free TCP port of its own",
                          f"pass one from 1 to 65535 other than --port, like --room-port {ROOM_PORT}")
    directory = Path(dir).resolve() if dir else settings(c).state_dir / "class"
    try:
        secrets, changed = store.class_secrets(directory, new_code)
        room = store.Room(directory / "room.db")
    except store.Damaged as exc:
        raise LabkitError(f"{exc}: the class code and instructor token are in it",
                          "restore it from a backup, or pass --new-code (every student then joins again)") from None
    except (OSError, ValueError, sqlite3.Error) as exc:
        raise LabkitError(f"cannot use the class directory {directory} ({exc})",
                          "pass --dir with a writable directory") from None
    bundle = None if no_bundle else verified_server(settings(c), lock, dest, port, host, allow_unpinned)
    sock = listening(lambda: _bind(host, room_port), host, room_port, "--room-port")
    address = host if host not in ("0.0.0.0", "::") else lan_addresses()[0]
    bundle_url = f"http://{address}:{port}" if bundle else ""
    app = appmod.create_app(room, secrets["code"], secrets["token"], bundle_url, say=ui.say)
    page_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else address}:{room_port}/#token={secrets['token']}"
    write_atomic(directory / "page-url", page_url + "\n", mode=0o600)

    bundle_process = None
    if bundle:
        server, served, dest = bundle
        bundle_process = roomserver.BundleProcess(server, close_in_child=[sock])
        ui.say(f"Serving {len(served)} artifacts from {dest} on port {port}: invoke bundle.fetch --from {bundle_url}")
    if changed and (new_code or room.count()):
        ui.say(f"The room: {changed}.")
    ui.say(f"The room holds {room.count()} report(s) in {directory}. For the projector:")
    ui.say(f'    invoke class.join http://{address}:{room_port} --code {secrets["code"]} --name "Your Name"')
    ui.say(f"Your page (it carries the instructor token, so keep it off the projector): {directory / 'page-url'}"
           + ("" if open else "  (or pass --open)"))
    if open:
        import webbrowser

        webbrowser.open(page_url)
    ui.say("Press Ctrl-C to stop.")
    web = uvicorn.Server(roomserver.config(app))
    try:
        web.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        served_bytes = bundle_process.stop() if bundle_process else 0
        reports = room.count()
        room.close()
    served_mb = f"; {served_bytes / 1e6:,.1f} MB of bundle served" if bundle else ""
    ui.say(f"Stopped. {reports} report(s) kept in {directory / 'room.db'}{served_mb}.")


@labtask(help={"url": "the room's URL from the projector, like http://192.168.1.20:8788",
               "code": "the class code from the projector", "name": "your name as the instructor should see it"})
def join(c, url, code="", name=""):
    """Join the instructor's room once: doctor and verify then send their reports to it."""
    from labkit import ui
    from labkit.errors import LabkitError
    from labkit.room import client

    if not code or not name:
        raise LabkitError("class.join needs --code and --name", 'run: invoke class.join URL --code CODE --name "Ana"')
    joined = client.join(project_root(c), url, code, name)
    ui.say(f"Joined the room at {joined['url']} as {joined['name']}. invoke doctor and invoke verify now send "
           "their reports there.")
    if joined["bundle"]:
        ui.say(f"The room also serves the bundle: invoke bundle.fetch --from {joined['bundle']}")


@labtask(name="send", help={"report": "also send this acceptance report (the acceptance-<laptop>-<time>.md file "
                                        "invoke acceptance wrote): the instructor's laptops view"})
def send_queued(c, report=None):
    """Send the reports queued while the room was not reachable (doctor and verify also do it each run);
    with --report, also an acceptance report for the instructor's laptops view."""
    from pathlib import Path

    from labkit import ui
    from labkit.errors import LabkitError
    from labkit.room import client, laptops

    joined = client.record(project_root(c))
    if joined is None:
        raise LabkitError("this laptop has not joined a room", 'run invoke class.join URL --code CODE --name "Ana"')
    if report:
        try:
            acceptance = laptops.from_markdown(Path(report).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise LabkitError(f"{report} is not an acceptance report ({exc})",
                              "pass the acceptance-<laptop>-<time>.md file that invoke acceptance wrote") from None
        client.enqueue(project_root(c), joined, "acceptance", acceptance)
    done = client.flush(project_root(c), joined)
    if not done.sent and not done.left and not done.refused:
        ui.say("Nothing queued: every report has reached the room.")
        return
    ui.say(client.line(joined, done))
    if done.left:
        raise LabkitError(f"{done.left} report(s) still queued", "run it again when the room answers")
