"""The laptop acceptance run (T3 as one command): every phase of the lab as the user runs it, one report.

Phases are data (PHASES): each is one `invoke` command run exactly as a user would type it, in the
project, with its output captured. A phase runs when the phases it needs passed; otherwise it is
recorded as skipped with the reason, so one failure still leaves a report of everything else.
Everything that reaches the report goes through `redact` first (no private key, kubeconfig content
or token, whatever a command printed). The report format is documented in docs/acceptance.md.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SNAPSHOT = "labkit-acceptance"
VERIFY_JSON = "{verify_json}"  # replaced by the phase's own report file
TAIL = 40  # lines of a failed phase's output kept in the report


@dataclass(frozen=True)
class Phase:
    name: str
    args: tuple  # the invoke command line
    needs: tuple = ()  # phases that must have passed first
    destroy: bool = False  # only with --destroy


def _verify(name: str, needs: str) -> Phase:
    return Phase(name, ("verify", "--json", VERIFY_JSON), ("cluster.init", needs))


PHASES = [
    Phase("doctor", ("doctor",)),
    Phase("vm.up", ("vm.up",)),
    Phase("cluster.init", ("cluster.init",), ("vm.up",)),
    Phase("app.deploy", ("app.deploy",), ("cluster.init",)),
    _verify("verify", "app.deploy"),
    Phase("snapshot.save", ("vm.snapshot", "--save", SNAPSHOT), ("vm.up",)),
    Phase("snapshot.restore", ("vm.snapshot", "--restore", SNAPSHOT), ("snapshot.save",)),
    _verify("verify.after-restore", "snapshot.restore"),
    Phase("vm.halt", ("vm.halt",), ("vm.up",)),
    Phase("vm.up.after-halt", ("vm.up",), ("vm.halt",)),
    _verify("verify.after-reboot", "vm.up.after-halt"),
    Phase("vm.destroy", ("vm.destroy",), destroy=True),
]

# What a failed phase leaves behind in the VM, gathered over `invoke vm.ssh` (each part labelled).
VM_LOGS = {
    # the guest as booted: its release and kernel (the arm64 guest differs from amd64's: docs/apple-silicon.md)
    "guest": ". /etc/os-release; echo \"$PRETTY_NAME\"; uname -srm",
    "kubelet journal": "sudo journalctl -u kubelet -n 60 --no-pager",
    "docker journal": "sudo journalctl -u docker -n 30 --no-pager",
    "dmesg tail": "sudo dmesg | tail -n 30",
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


# --- running the phases -------------------------------------------------------------------------

@dataclass
class PhaseOutcome:
    name: str
    command: str
    status: str  # passed | failed | skipped
    started: str = ""  # UTC, ISO 8601
    seconds: float = 0.0
    reason: str = ""  # a failure's one line, or why the phase was skipped
    fix: str = ""
    steps: list = field(default_factory=list)  # [title, outcome, time] from the task's status lines
    tail: str = ""  # a failed phase's last output lines
    vm_logs: dict = field(default_factory=dict)
    verify: dict | None = None


STEP_END = re.compile(r"^(?:✓|✗|–|ok|FAIL|-|INT) (?P<title>.+?)(?: \((?P<note>[^()]*)\))?  (?P<time>\d+(?:\.\d)?s|\d+m\d\ds)$")
PROVISIONER = re.compile(r"labkit\[(?P<step>\w+)\]: done in (?P<time>\d+)s")
ONE_LINE = re.compile(r"^labkit: (?P<what>.+?)(?:\. Fix: (?P<fix>.+))?$")


def steps_of(output: str) -> list[list[str]]:
    """Each finished status line of a task (✓ Creating VM ubuntu  52.1s) and each provision step's end."""
    found = []
    for line in output.splitlines():
        line = line.rstrip()
        m = STEP_END.match(line)
        if m:
            outcome = {"✓": "ok", "ok": "ok", "–": "skipped", "-": "skipped"}.get(line.split(" ", 1)[0], "failed")
            found.append([m["title"], outcome + (f" ({m['note']})" if m["note"] else ""), m["time"]])
            continue
        p = PROVISIONER.search(line)
        if p:
            found.append([f"provision {p['step']}", "ok", p["time"] + "s"])
    return found


def failure_of(output: str, code: int) -> tuple[str, str]:
    """The task's one line (labkit: what. Fix: how), or its last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in reversed(lines):
        m = ONE_LINE.match(line)
        if m and not line.startswith("labkit: warning"):
            return m["what"], m["fix"] or ""
    return (lines[-1] if lines else f"exit code {code}"), ""


class Runner:
    """Runs `invoke ARGS` in the project; tests may replace it (the phases' logic stays the same)."""

    def __init__(self, root: Path, env: dict | None = None):
        self.root = root
        self.env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8")

    def run(self, args: list[str], echo) -> tuple[int, str]:
        proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=self.root, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out = []
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            out.append(line)
            echo(line)
        return proc.wait(), "".join(out)


def run_phases(runner: Runner, work: Path, destroy: bool, echo=None) -> list[PhaseOutcome]:
    """Every phase in order; `echo` shows each (redacted) output line, by default under the phase's status line."""
    from labkit import ui

    done: dict[str, PhaseOutcome] = {}
    for phase in PHASES:
        if phase.destroy and not destroy:
            continue
        verify_json = work / f"{phase.name}.json"
        args = [str(verify_json) if a == VERIFY_JSON else a for a in phase.args]
        result = PhaseOutcome(phase.name, "invoke " + " ".join(phase.args).replace(f" --json {VERIFY_JSON}", ""), "skipped")
        done[phase.name] = result
        missing = [n for n in phase.needs if n in done and done[n].status != "passed"]
        if missing:
            result.reason = f"needs {missing[0]}, which {done[missing[0]].status}"
            with ui.step(f"{phase.name}") as st:
                st.skip(result.reason)
            continue
        result.started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        started = time.monotonic()
        with ui.step(f"{phase.name}: {result.command}") as st:
            code, output = runner.run(args, _shower(echo or st.log))
            result.seconds = round(time.monotonic() - started, 1)
            result.steps = steps_of(output)
            if verify_json.is_file():
                result.verify = redact_json(json.loads(verify_json.read_text(encoding="utf-8")))
            if code == 0:
                result.status = "passed"
            else:
                result.status = "failed"
                result.reason, result.fix = (redact(x) for x in failure_of(output, code))
                result.tail = redact("\n".join(output.splitlines()[-TAIL:]))
                st.note = "failed: " + result.reason
                if done.get("vm.up") and done["vm.up"].status == "passed" and phase.name != "vm.halt":
                    result.vm_logs = vm_logs(runner)
    return list(done.values())


def _shower(show):
    """A line callback that shows output redacted (PEM blocks across lines included)."""
    clean = LineRedactor()

    def echo(line: str) -> None:
        shown = clean(line)
        if shown is not None:
            show(shown)

    return echo


def vm_logs(runner: Runner) -> dict:
    logs = {}
    for name, command in VM_LOGS.items():
        code, output = runner.run(["vm.ssh", "--command", command], lambda line: None)
        logs[name] = redact("\n".join(output.splitlines()[-60:])) + ("" if code == 0 else f"\n(exit code {code})")
    return logs


# --- the machine --------------------------------------------------------------------------------

def _output(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip() if out.returncode == 0 else ""


def cpu_model() -> str:
    if platform.system() == "Linux":
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    if platform.system() == "Darwin":
        return _output(["sysctl", "-n", "machdep.cpu.brand_string"])
    return platform.processor()


def host_facts(s) -> dict:
    """The laptop, its tools, and what the lab is made from."""
    from labkit.bundle import lock as lockmod
    from labkit.errors import LabkitError
    from labkit.doctor import Probe, virtualbox

    import psutil

    probe = Probe()
    vbox = virtualbox(probe)
    lock_file = s.lock_file
    unpinned = []
    try:
        unpinned = [a.name for a in lockmod.load(lock_file).artifacts if not a.pinned]
    except LabkitError as exc:  # the report says so instead of stopping the run
        unpinned = [f"(lock unreadable: {type(exc).__name__})"]
    boxes = _output(["vagrant", "box", "list", "--machine-readable"])
    box_versions = sorted({f[3] for f in (ln.split(",") for ln in boxes.splitlines())
                           if len(f) > 3 and f[2] == "box-version"}) if boxes else []
    return {
        "host os": f"{platform.system()} {platform.release()} ({platform.platform()})",
        "cpu": f"{cpu_model()} ×{os.cpu_count()}",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "free disk": f"{shutil.disk_usage(s.root).free / 2**30:.1f} GiB (project), "
                     f"{shutil.disk_usage(Path.home()).free / 2**30:.1f} GiB (home)",
        "virtualbox": ".".join(map(str, vbox.version)) if vbox and vbox.version else "not found",
        "vagrant": _output(["vagrant", "--version"]) or "not found",
        "provider": s.provider,
        "architecture": f"{platform.machine()} host" + (" (this Python under Rosetta)" if probe.rosetta() else "")
                        + f", {s.arch} guest",
        "nodes": ", ".join(f"{n.name} ({n.role}, {n.ip})" for n in s.nodes),
        "box": s.box + (f" (installed versions: {', '.join(box_versions)})" if box_versions else ""),
        "bundle lock": f"{lock_file.name} sha256 "
                       + (hashlib.sha256(lock_file.read_bytes()).hexdigest() if lock_file.is_file() else "(missing)"),
        "unpinned artifacts": ", ".join(unpinned) or "none",
        "labkit": labkit_version(s.root),
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


# --- the report ---------------------------------------------------------------------------------

def _md(text: str) -> str:
    """One table cell: no pipes or newlines from a command's output break the table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def report(facts: dict, outcomes: list[PhaseOutcome], started: str) -> str:
    lines = ["# labkit acceptance report", "", f"Run started {started} (UTC).", "", "## The laptop", "",
             "| fact | value |", "|---|---|"]
    lines += [f"| {k} | {_md(redact(str(v)))} |" for k, v in facts.items()]
    lines += ["", "## Phases", ""]
    for o in outcomes:
        lines += [f"### {o.name}: {o.status}", "", f"- command: `{o.command}`"]
        if o.started:
            lines.append(f"- started {o.started}, took {o.seconds:.1f}s")
        if o.reason:
            lines.append(f"- {'reason' if o.status == 'skipped' else 'error'}: {o.reason}")
        if o.fix:
            lines.append(f"- hint: {o.fix}")
        if o.steps:
            lines += ["", "| step | outcome | time |", "|---|---|---|"]
            lines += [f"| {_md(t)} | {_md(r)} | {_md(d)} |" for t, r, d in o.steps]
        if o.tail:
            lines += ["", "Output (last lines):", "", "```", o.tail, "```"]
        for name, text in o.vm_logs.items():
            lines += ["", f"VM: {name}", "", "```", text, "```"]
        if o.verify is not None:
            lines += ["", "verify's report (JSON):", "", "```json", json.dumps(o.verify, indent=2), "```"]
        lines.append("")
    lines += ["## Summary", "", "| phase | result | time | reason |", "|---|---|---|---|"]
    lines += [f"| {o.name} | {o.status} | {o.seconds:.1f}s | {_md(o.reason)} |" for o in outcomes]
    return redact("\n".join(lines)) + "\n"
