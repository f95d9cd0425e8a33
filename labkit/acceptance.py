"""The laptop acceptance run (T3 as one command): every phase of the lab as the user runs it, one report.

Phases are data (PHASES): each is one `invoke` command run exactly as a user would type it, in the
project, as a `labkit.checks.Check` run by the one scheduler (`checks.run`, one worker, in order): a
phase runs when the phases it needs passed, otherwise it is skipped with the reason, so one failure
still leaves a report of everything else. The tasks it runs write what they did as data
(`labkit/results.py`: each status line, provision step, the one-line error, doctor's checks), which
is what the report shows; the screen output is kept only as the tail of a failure.

It survives: the report is rewritten after every phase; each phase has a timeout (then Ctrl-C goes
to the phase's whole process group, so Vagrant cleans up, and it is killed if it does not end); Ctrl-C
of the run itself stops the running phase the same way and writes what exists, the interrupted phase
included. It explains: doctor's checks, the overrides in force, each VM's memory and CPUs, Guest
Additions, serial console and VBox.log tails, whether the bundle fallback was taken, every node's logs.
Everything that reaches the report or the screen goes through `redact` first. docs/acceptance.md.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from labkit import checks, results
from labkit.checks import FAIL, PASS, SKIP

SNAPSHOT = "labkit-acceptance"
VERIFY_JSON = "{verify_json}"  # replaced by the phase's own report file
TAIL = 40  # lines of a failed phase's output kept in the report
LOG_TAIL = 60  # lines of a serial console or VBox.log
LOG_TIMEOUT = 60.0  # seconds for one VM log command over `invoke vm.ssh`
STOP_WAIT = 120.0  # seconds a stopped phase gets to clean up (Vagrant destroying a half-made VM) before it is killed
MINUTE = 60.0


@dataclass(frozen=True)
class Phase:
    name: str
    args: tuple  # the invoke command line
    needs: tuple = ()  # phases that must have passed first
    destroy: bool = False  # only with --destroy
    timeout: float = 30 * MINUTE  # then it is stopped; generous: a slow laptop is not a failure

    @property
    def command(self) -> str:
        return "invoke " + " ".join(self.args).replace(f" --json {VERIFY_JSON}", "")


def _verify(name: str, needs: str) -> Phase:
    return Phase(name, ("verify", "--json", VERIFY_JSON), ("cluster.init", needs), timeout=10 * MINUTE)


PHASES = [
    Phase("doctor", ("doctor",), timeout=5 * MINUTE),
    Phase("vm.up", ("vm.up",), timeout=60 * MINUTE),  # a first vm.up adds the box and provisions every node
    Phase("cluster.init", ("cluster.init",), ("vm.up",), timeout=40 * MINUTE),
    Phase("app.deploy", ("app.deploy",), ("cluster.init",), timeout=20 * MINUTE),
    _verify("verify", "app.deploy"),
    Phase("snapshot.save", ("vm.snapshot", "--save", SNAPSHOT), ("vm.up",), timeout=15 * MINUTE),
    Phase("snapshot.restore", ("vm.snapshot", "--restore", SNAPSHOT), ("snapshot.save",), timeout=15 * MINUTE),
    _verify("verify.after-restore", "snapshot.restore"),
    Phase("vm.halt", ("vm.halt",), ("vm.up",), timeout=10 * MINUTE),
    Phase("vm.up.after-halt", ("vm.up",), ("vm.halt",), timeout=30 * MINUTE),
    _verify("verify.after-reboot", "vm.up.after-halt"),
    Phase("vm.destroy", ("vm.destroy",), destroy=True, timeout=15 * MINUTE),
]

# What a failed phase leaves behind in each VM, gathered over `invoke vm.ssh` (each part labelled);
# the cluster's own views (pods, events) from the master only.
VM_LOGS = {
    # the guest as booted: its release and kernel (the arm64 guest differs from amd64's: docs/apple-silicon.md)
    "guest": ". /etc/os-release; echo \"$PRETTY_NAME\"; uname -srm",
    "kubelet journal": "sudo journalctl -u kubelet -n 60 --no-pager",
    "docker journal": "sudo journalctl -u docker -n 30 --no-pager",
    "dmesg tail": "sudo dmesg | tail -n 30",
}
MASTER_LOGS = {
    "pods": "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get pods -A -o wide",
    "events": "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get events -A --sort-by=.lastTimestamp | tail -n 30",
}

# --- secrets never reach the report -------------------------------------------------------------

_REDACTIONS = [
    # PEM blocks: private keys, and certificates too (kubeconfigs carry them)
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(-----END [A-Z0-9 ]+-----|\Z)", re.S), "[redacted PEM block]"),
    # kubeconfig and kubeadm fields whose values are secrets or key material
    (re.compile(r"((?:client-key-data|client-certificate-data|certificate-authority-data|token|password|"
                r"id-token|refresh-token|access-token|secret)\"?\s*[:=]\s*)\S+", re.I), r"\1[redacted]"),
    (re.compile(r"(Authorization:\s*(?:Bearer|Basic)\s+)\S+", re.I), r"\1[redacted]"),
    (re.compile(r"(--(?:token|discovery-token|certificate-key|tls-bootstrap-token)[= ])\S+"), r"\1[redacted]"),
    (re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b"), "[redacted bootstrap token]"),  # kubeadm's token format
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"), "[redacted JWT]"),  # service account tokens
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class LineRedactor:
    """`redact` for output shown line by line: a PEM block spans lines, so its inside is tracked."""

    def __init__(self):
        self.inside = False

    def __call__(self, line: str) -> str | None:
        """The line to show, or None while inside a PEM block."""
        if "-----BEGIN " in line:
            self.inside = "-----END " not in line
            return "[redacted PEM block]\n"
        if self.inside:
            self.inside = "-----END " not in line
            return None
        return redact(line)


def redact_json(value):
    """A JSON value with every string redacted (verify's report embeds command output)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    return value


# --- running one phase --------------------------------------------------------------------------

@dataclass
class Ran:
    code: int
    output: str
    stopped: bool = False  # its timeout ran out, or the run was interrupted: it got Ctrl-C (then a kill)


class Runner:
    """Runs `invoke ARGS` in the project as its own process group, output read as bytes; tests may
    replace the command (what runs) but not how it is run, stopped and read."""

    def __init__(self, root: Path, env: dict | None = None, command: Optional[list] = None):
        self.root = Path(root)
        self.env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8")
        self.command = command or [sys.executable, "-m", "invoke"]
        self.current: Optional[subprocess.Popen] = None
        self.interrupted = False

    def run(self, args: list[str], echo, timeout: Optional[float] = None, results_file: Optional[Path] = None) -> Ran:
        from labkit.proc import text

        if self.interrupted:  # Ctrl-C came between two phases: start nothing more
            return Ran(-1, "", True)
        env = dict(self.env)
        if results_file is not None:
            env[results.ENV] = str(results_file)
        if os.name == "nt":
            group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        else:  # its own group (Ctrl-C reaches Vagrant too), with Ctrl-C's default even if ours is ignored
            group = {"start_new_session": True, "preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)}
        proc = subprocess.Popen([*self.command, *args], cwd=self.root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **group)
        self.current = proc
        out: list[str] = []

        def pump():
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                line = text(raw)
                out.append(line)
                echo(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        stopped = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stopped = True
            self.stop(proc)
        reader.join(10)
        self.current = None
        return Ran(proc.returncode if proc.returncode is not None else -1, "".join(out),
                   stopped or self.interrupted)

    def stop(self, proc: Optional[subprocess.Popen] = None) -> None:
        """Ctrl-C to the phase's process group (Vagrant destroys a half-made VM), then a kill if it does not
        end within STOP_WAIT seconds (or at a second Ctrl-C)."""
        proc = proc or self.current
        if proc is None or proc.poll() is not None:
            return
        try:
            if os.name == "nt":
                proc.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                os.killpg(proc.pid, signal.SIGINT)
            proc.wait(STOP_WAIT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt, OSError):
            _kill(proc)

    def interrupt(self) -> None:
        """The run got Ctrl-C: stop the phase that runs (its own cleanup first); nothing more is started."""
        self.interrupted = True
        self.stop()


def _kill(proc: subprocess.Popen) -> None:
    try:
        if os.name == "nt":
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], capture_output=True)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


@dataclass
class Evidence:
    """What a phase left: its command, when, the steps and error its task wrote as data, and for a failure
    the output's tail and the VMs' logs; verify's or doctor's report."""

    command: str
    started: str = ""
    steps: list = field(default_factory=list)  # {"title", "outcome", "note", "seconds"} and {"provision", ...}
    tail: str = ""
    vm_logs: dict = field(default_factory=dict)
    report: Optional[dict] = None  # doctor's labkit-checks/1, or verify's JSON


def _shower(show):
    """A line callback that shows output redacted (PEM blocks across lines included)."""
    clean = LineRedactor()

    def echo(line: str) -> None:
        shown = clean(line)
        if shown is not None:
            show(shown)

    return echo


class Run:
    """The phases of one acceptance run as checks, and what each left (`evidence`)."""

    def __init__(self, runner: Runner, work: Path, nodes: list, destroy: bool, echo=None):
        self.runner, self.work, self.nodes, self.echo = runner, Path(work), list(nodes), echo
        self.phases = [p for p in PHASES if destroy or not p.destroy]
        self.evidence: dict[str, Evidence] = {}
        self.passed: set[str] = set()
        self.running: Optional[Phase] = None

    def checks(self) -> list[checks.Check]:
        # the scheduler's own deadline comes after the phase's: the phase is stopped, cleans up, its VMs' logs
        # are gathered, and it says so first
        logs = LOG_TIMEOUT * len(self.nodes) * (len(VM_LOGS) + len(MASTER_LOGS))
        return [checks.Check(p.name, p.name, lambda timeout, p=p: self.phase(p), needs=p.needs,
                             timeout=p.timeout + STOP_WAIT + logs + 30) for p in self.phases]

    def phase(self, phase: Phase) -> checks.Result:
        from labkit import ui

        if self.runner.interrupted:
            return checks.skipped("not run: the acceptance run was interrupted")
        ev = self.evidence[phase.name] = Evidence(phase.command, _now())
        verify_json, record = self.work / f"{phase.name}.json", self.work / f"{phase.name}.results"
        args = [str(verify_json) if a == VERIFY_JSON else a for a in phase.args]
        self.running = phase
        try:
            with ui.step(f"{phase.name}: {phase.command}") as st:
                ran = self.runner.run(args, _shower(self.echo or st.log), phase.timeout, record)
                result = self._judge(phase, ran, ev, verify_json, record)
                if not result.ok:
                    st.outcome, st.note = "failed", result.detail
        finally:
            self.running = None
        if result.ok:
            self.passed.add(phase.name)
        return result

    def _judge(self, phase: Phase, ran: Ran, ev: Evidence, verify_json: Path, record: Path) -> checks.Result:
        said = results.read(record)
        ev.steps = [r for r in said if r["kind"] in ("step", "provision")]
        reports = [r["report"] for r in said if r["kind"] == "report" and isinstance(r.get("report"), dict)]
        if verify_json.is_file():
            try:
                ev.report = redact_json(json.loads(verify_json.read_text(encoding="utf-8")))
            except ValueError:
                ev.report = None
        elif reports:
            ev.report = redact_json(reports[-1])
        errors = [r for r in said if r["kind"] == "error"]
        if ran.code == 0 and not ran.stopped:
            return checks.passed(_steps_note(ev.steps))
        ev.tail = redact("\n".join(ran.output.splitlines()[-TAIL:]))
        if self.runner.interrupted:
            return checks.failed("interrupted (Ctrl-C) while it ran: stopped with what it had done", key="interrupted",
                                 fix=f"run {phase.command} again: every task is safe to re-run")
        if (phase.name == "vm.up" or "vm.up" in self.passed) and phase.name != "vm.halt":
            ev.vm_logs = self.vm_logs()  # a vm.up that failed may have a VM up whose provisioning failed
        if ran.stopped:
            return checks.failed(f"no end within {phase.timeout / MINUTE:g} minutes: stopped (Ctrl-C, then killed)",
                                 cause=f"{phase.command} ran longer than its timeout", key="timeout",
                                 fix="read its last lines and the VM logs below; on a slow laptop run it alone and wait")
        if errors:
            return checks.failed(redact(errors[-1].get("message", "")), fix=redact(errors[-1].get("fix", "")), key="error")
        bad = [c for c in (ev.report or {}).get("checks", []) if isinstance(c, dict) and c.get("status") == FAIL]
        if bad:  # a task that reports checks (doctor): its first failure, the rest are in its JSON
            more = f" ({len(bad) - 1} more failed check(s) in its report)" if len(bad) > 1 else ""
            return checks.failed(f"{bad[0].get('title') or bad[0].get('id')}: {bad[0].get('detail', '')}{more}",
                                 fix=bad[0].get("fix", ""), key="checks")
        last = next((ln.strip() for ln in reversed(ran.output.splitlines()) if ln.strip()), "")
        return checks.failed(redact(last) or f"exit code {ran.code}", key="exit")

    def vm_logs(self) -> dict:
        logs = {}
        master = next((n.name for n in self.nodes if n.role == "master"), None)
        for node in self.nodes:
            commands = {**VM_LOGS, **(MASTER_LOGS if node.name == master else {})}
            for name, command in commands.items():
                if self.runner.interrupted:
                    return logs
                ran = self.runner.run(["vm.ssh", "--node", node.name, "--command", command], lambda line: None,
                                      LOG_TIMEOUT)
                label = name if len(self.nodes) == 1 else f"{node.name}: {name}"
                logs[label] = redact("\n".join(ran.output.splitlines()[-LOG_TAIL:])) + \
                    ("" if ran.code == 0 else f"\n(exit code {ran.code})")
        return logs


def _steps_note(steps: list) -> str:
    ends = [s for s in steps if s["kind"] == "step"]
    return f"{len(ends)} step(s)" if ends else ""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run(acceptance: Run, on_result: Callable[[list], None]) -> tuple[list, bool]:
    """Every phase through checks.run (one worker, in order). `on_result(done so far)` after each phase
    (the report is rewritten then). Returns the results and whether the run was interrupted: on Ctrl-C
    the running phase is stopped (Ctrl-C to its process group, its own cleanup first) and recorded as
    interrupted with what it wrote, and the phases not reached are skipped, saying so."""
    from labkit import ui

    done: list[checks.Checked] = []
    out: dict = {}

    def finished(c: checks.Checked) -> None:
        done.append(c)
        if c.status == SKIP:
            with ui.step(c.check.id) as st:
                st.skip(c.result.detail)
        on_result(list(done))

    over = threading.Event()

    def schedule() -> None:
        try:
            out["results"] = checks.run(acceptance.checks(), on_result=finished, workers=1, unexpected=_broken)
        finally:
            over.set()

    # The scheduler waits in a thread of its own: a main thread blocked in a lock wait would notice Ctrl-C
    # only when the running phase ends; waiting in short steps, it notices at once. (An Event, not
    # Thread.join: a join cut by KeyboardInterrupt can leave is_alive() false while the thread runs.)
    threading.Thread(target=schedule, name="acceptance", daemon=True).start()
    interrupted = False
    while not over.is_set():
        try:
            over.wait(0.2)
        except KeyboardInterrupt:
            interrupted = True
            acceptance.runner.interrupt()  # the running phase ends; the rest are skipped at once
    return out.get("results", done), interrupted


def _broken(check: checks.Check, error: str) -> checks.Result:
    return checks.failed(f"the phase could not run: {error}", key="unexpected",
                         fix="run invoke acceptance again; if it repeats, send the report and the screen output back")

# --- the machine --------------------------------------------------------------------------------

def _output(cmd: list[str], env: dict | None = None) -> str:
    """What a tool printed (bytes decoded by labkit.proc: a report is written whatever the tool's code page)."""
    from labkit import proc

    out = proc.output(cmd, timeout=30, env=env)
    return (out.stdout or out.stderr).strip() if out is not None and out.ok else ""


def cpu_model() -> str:
    if platform.system() == "Linux":
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    if platform.system() == "Darwin":
        return _output(["sysctl", "-n", "machdep.cpu.brand_string"])
    return platform.processor()


def _fact(read: Callable[[], str]) -> str:
    """One fact; one that cannot be read says why instead of ending the run before any report exists."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 (a report of the rest beats a traceback)
        return f"(could not read: {type(exc).__name__}: {exc})"


def host_facts(s) -> dict:
    """The laptop, its tools, and what the lab is made from."""
    from labkit.bundle import lock as lockmod
    from labkit.doctor import Probe, virtualbox

    def vbox() -> str:
        found = virtualbox(Probe())
        return ".".join(map(str, found.version)) if found and found.version else "not found"

    def ram() -> str:
        import psutil

        return f"{psutil.virtual_memory().total / 2**30:.1f} GiB"

    def unpinned() -> str:
        return ", ".join(a.name for a in lockmod.load(s.lock_file).artifacts if not a.pinned) or "none"

    def box() -> str:
        listed = _output(["vagrant", "box", "list", "--machine-readable"])
        versions = sorted({f[3] for f in (ln.split(",") for ln in listed.splitlines()) if len(f) > 3 and f[2] == "box-version"})
        return s.box + (f" (installed versions: {', '.join(versions)})" if versions else "")

    def lock() -> str:
        digest = hashlib.sha256(s.lock_file.read_bytes()).hexdigest() if s.lock_file.is_file() else "(missing)"
        return f"{s.lock_file.name} sha256 {digest}"

    return {
        "host os": _fact(lambda: f"{platform.system()} {platform.release()} ({platform.platform()})"),
        "cpu": _fact(lambda: f"{cpu_model()} ×{os.cpu_count()}"),
        "ram": _fact(ram),
        "free disk": _fact(lambda: f"{shutil.disk_usage(s.root).free / 2**30:.1f} GiB (project), "
                                   f"{shutil.disk_usage(Path.home()).free / 2**30:.1f} GiB (home)"),
        "virtualbox": _fact(vbox),
        "vagrant": _fact(lambda: _output(["vagrant", "--version"]) or "not found"),
        "provider": s.provider,
        "architecture": _fact(lambda: f"{platform.machine()} host"
                              + (" (this Python under Rosetta)" if Probe().rosetta() else "") + f", {s.arch} guest"),
        "nodes": ", ".join(f"{n.name} ({n.role}, {n.ip})" for n in s.nodes),
        "vm memory and CPUs": f"{s.memory} MB, {s.cpus} CPUs per VM",
        "box": _fact(box),
        "bundle lock": _fact(lock),
        "unpinned artifacts": _fact(unpinned),
        "labkit": _fact(lambda: labkit_version(s.root)),
    }


def labkit_version(root: Path) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("labkit")
    except PackageNotFoundError:
        v = "unknown"
    commit = _output(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    return f"{v}, commit {commit or 'unknown'}{' (with local changes)' if dirty else ''}"


def overrides(root: Path, env=None) -> list[str]:
    """The settings in force that are not settings.yaml's: settings.local.yaml's values, LABKIT_* variables."""
    import yaml

    out = []
    local = Path(root) / "settings.local.yaml"
    if local.is_file():
        try:
            tree = yaml.safe_load(local.read_bytes().decode("utf-8", "replace")) or {}
        except yaml.YAMLError:
            tree = {"(unreadable)": "not valid YAML"}

        def walk(value, path):
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(v, [*path, str(k)])
            else:
                out.append(f"{'.'.join(path)} = {json.dumps(value, ensure_ascii=False)} (settings.local.yaml)")

        walk(tree, [])
    env = os.environ if env is None else env
    out += [f"{k}={v} (environment)" for k, v in sorted(env.items()) if k.startswith("LABKIT_")]
    return out


def console_log(s, node: str) -> Path:
    """Where the Vagrantfile sends a VirtualBox node's serial console (its console_log has the same path)."""
    return s.state_dir / f"console-{node}.log"


def tail(path: Path, lines: int = LOG_TAIL) -> Optional[str]:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    from labkit.proc import text

    return "\n".join(text(data[-256 * 1024:]).splitlines()[-lines:])


def _machine_readable(out: str) -> dict:
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip().strip('"')] = value.strip().strip('"')
    return found


def vm_facts(s) -> dict:
    """Each node: memory and CPUs as VirtualBox has them, Guest Additions, how the bundle got in, and the
    tails of its serial console and VBox.log (VirtualBox; under libvirt what settings asked for)."""
    from labkit import proc
    from labkit.doctor import Probe
    from labkit.vm import bundle_copied
    from labkit.vagrant import machine_id

    exe = Probe().which("VBoxManage") if s.provider == "virtualbox" else None
    out = {}
    for n in s.nodes:
        info: dict = {"facts": {}, "logs": {}}
        facts = info["facts"]
        facts["memory and CPUs (settings)"] = f"{s.memory} MB, {s.cpus} CPUs"
        facts["bundle"] = ("copied over SSH (the shared folder did not mount: fallback taken)"
                           if bundle_copied(s, n.name).exists() else
                           "rsync copy (libvirt)" if s.provider == "libvirt" else "VirtualBox shared folder")
        uuid = _fact(lambda: machine_id(s.root, n.name) or "")
        if exe and uuid and not uuid.startswith("("):
            env = proc.english_env()
            shown = proc.output([exe, "showvminfo", uuid, "--machinereadable"], timeout=30, env=env)
            vm = _machine_readable(shown.stdout) if shown and shown.ok else {}
            if vm:
                facts["memory and CPUs (VirtualBox)"] = f"{vm.get('memory', '?')} MB, {vm.get('cpus', '?')} CPUs"
                facts["state"] = vm.get("VMState", "?")
            ga = proc.output([exe, "guestproperty", "get", uuid, "/VirtualBox/GuestAdd/Version"], timeout=30, env=env)
            facts["Guest Additions"] = (ga.stdout.strip().removeprefix("Value:").strip() if ga and ga.ok else "") or "not reported"
            folder = vm.get("LogFldr") or (str(Path(vm["CfgFile"]).parent / "Logs") if vm.get("CfgFile") else "")
            if folder:
                info["logs"]["VBox.log"] = tail(Path(folder) / "VBox.log")
        elif s.provider == "virtualbox":
            facts["VirtualBox"] = "no VM made yet" if not uuid else f"VBoxManage not found ({uuid})"
        if s.provider == "virtualbox":
            info["logs"]["serial console"] = tail(console_log(s, n.name))
        out[n.name] = info
    return out


# --- the report ---------------------------------------------------------------------------------

JSON_MARK = "<!-- labkit-acceptance-json -->"


def report_name(now: datetime.datetime, host: Optional[str] = None) -> str:
    """acceptance-<this laptop's name>-<UTC time>.md: reports from a room's laptops are told apart by name."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", host if host is not None else platform.node()).strip("-")[:40] or "laptop"
    return f"acceptance-{name}-{now:%Y%m%d-%H%M%S}.md"


def _md(text: str) -> str:
    """One table cell: no pipes or newlines from a command's output break the table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _block(title: str, text: Optional[str], lang: str = "") -> list[str]:
    if text is None:
        return []
    return ["", title, "", "```" + lang, text.replace("```", "'''"), "```"]


def as_json(done: list, facts: dict, started: str, state: str) -> dict:
    """The run in the one check shape (labkit-checks/1, kind acceptance): what the room or a script reads."""
    return checks.as_json(done, kind="acceptance", host=platform.node(), started=started, state=state,
                          facts={k: str(v) for k, v in facts.items()})


def read_json(path: Path) -> Optional[dict]:
    """The machine-readable part of a report file (for the room: `labkit.room.client.send(root, "acceptance",
    read_json(path))` once the room accepts that kind); None if the file has none."""
    return read_json_text(Path(path).read_text(encoding="utf-8", errors="replace"))


def read_json_text(text: str) -> Optional[dict]:
    if JSON_MARK not in text:
        return None
    body = text.split(JSON_MARK, 1)[1]
    m = re.search(r"```json\n(.*?)\n```", body, re.S)
    return json.loads(m.group(1)) if m else None


def report(facts: dict, done: list, started: str, evidence: Optional[dict] = None, state: str = "finished",
           overridden: Optional[list] = None, vms: Optional[dict] = None) -> str:
    """The Markdown report; `state`: running (rewritten after each phase), finished, interrupted."""
    evidence = evidence or {}
    # The first lines, the laptop table and the phase sections keep the shape labkit/room/laptops.py reads.
    lines = ["# labkit acceptance report", "", f"Run started {started} (UTC).", "",
             f"This report was written {_now()}; the run is {state}.", "",
             "## The laptop", "", "| fact | value |", "|---|---|"]
    lines += [f"| {k} | {_md(v)} |" for k, v in facts.items()] + [f"| laptop name | {_md(platform.node())} |"]
    lines += ["", "## Overrides in force", ""]
    lines += [f"- `{o}`" for o in (overridden or [])] or ["- none: settings.yaml as it is"]
    doctor = evidence.get("doctor")
    if doctor is not None and doctor.report is not None:
        lines += _block("## doctor's checks (JSON)", json.dumps(doctor.report, indent=2, ensure_ascii=False), "json")
    lines += ["", "## Phases", ""]
    for c in done:
        r, ev = c.result, evidence.get(c.check.id)
        phase = next((p for p in PHASES if p.name == c.check.id), None)
        lines += [f"### {c.check.id}: {r.status}", "", f"- command: `{phase.command if phase else c.check.id}`"]
        if ev is not None and ev.started:
            lines.append(f"- started {ev.started}, took {c.seconds:.1f}s")
        if r.status == SKIP:
            lines.append(f"- reason: {r.detail}")
        elif r.status == FAIL:
            lines.append(f"- error: {r.detail}")
            if r.cause:
                lines.append(f"- cause: {r.cause}")
            if r.fix:
                lines.append(f"- hint: {r.fix}")
        if ev is None:
            lines.append("")
            continue
        if ev.steps:
            lines += ["", "| step | outcome | time |", "|---|---|---|"]
            for s in ev.steps:
                if s["kind"] == "provision":
                    lines.append(f"| provision {_md(s.get('step', ''))} | ok | {s.get('seconds', 0)}s |")
                else:
                    note = f" ({s['note']})" if s.get("note") else ""
                    lines.append(f"| {_md(s.get('title', ''))} | {_md(s.get('outcome', '') + note)} | {s.get('seconds', 0)}s |")
        if ev.tail:
            lines += _block("Output (last lines):", ev.tail)
        for name, text in ev.vm_logs.items():
            lines += _block(f"VM: {name}", text)
        if ev.report is not None and c.check.id != "doctor":
            lines += _block("verify's report (JSON):", json.dumps(ev.report, indent=2, ensure_ascii=False), "json")
        lines.append("")
    lines += ["## The VMs", ""]
    for node, info in (vms or {}).items():
        lines += [f"### {node}", "", "| fact | value |", "|---|---|"]
        lines += [f"| {k} | {_md(v)} |" for k, v in info["facts"].items()]
        for name, text in info["logs"].items():
            lines += _block(f"{name} (last lines):", text if text is not None else "(no file)")
        lines.append("")
    lines += ["## Summary", "", "| phase | result | time | reason |", "|---|---|---|---|"]
    lines += [f"| {c.check.id} | {c.status} | {c.seconds:.1f}s | {_md(c.result.detail if c.status != PASS else '')} |"
              for c in done]
    # redacted value by value (redact on JSON text could cut a string's closing quote)
    machine = json.dumps(redact_json(as_json(done, facts, started, state)), indent=2, ensure_ascii=False)
    return redact("\n".join(lines)) + "\n\n" + "\n".join(["## Machine-readable", "", JSON_MARK, "```json", machine, "```"]) + "\n"
