"""Vagrant, through python-vagrant: the only module that starts the `vagrant` binary.

python-vagrant finds the executable (PATHEXT on Windows), builds command lines and parses
machine-readable status and ssh-config. Long commands are streamed by our own loop instead of its
generator so that Ctrl-C lets Vagrant finish its own cleanup (it destroys a half-created VM)
before we return. No pty, no POSIX-only calls: this runs on Windows, macOS and Linux laptops.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from labkit import ui
from labkit.errors import LabkitError

RUNNING = "running"
NOT_CREATED = "not_created"
STOPPED = {"poweroff", "shutoff", "saved", "aborted", "shutdown", "paused", "suspended"}

# Vagrant's own error text (regular expressions) -> what to do about it, for what is not about the
# host system (fallbacks: doctor catches most of these first). Vagrant says "could not be found" of many
# things: the box needle names a box. VirtualBox's and each system's traps are in labkit.laptops.TRAPS.
KNOWN_ERRORS = [
    ("could not detect VirtualBox", "VirtualBox is not installed",
     "install VirtualBox (invoke doctor names the version your Vagrant accepts), or set LABKIT_PROVIDER=libvirt on Linux"),
    ("The provider 'libvirt' could not be found", "the vagrant-libvirt plugin is missing", "install it: vagrant plugin install vagrant-libvirt (or your distribution's vagrant-libvirt package)"),
    (r"[Bb]ox '[^']+' could not be found", "the Vagrant box is not installed", "run invoke bundle.fetch, then invoke vm.up adds the box from the bundle"),
    ('"rsync" could not be found', "rsync is not installed (the libvirt provider copies the bundle into the VM with it)",
     "install it: sudo apt-get install rsync"),
    ("of domain about to create is already taken", "libvirt still has this VM from a run whose .vagrant state is gone",
     "run invoke vm.destroy (it removes that leftover VM), then invoke vm.up"),
    ("Failed to connect socket to '/var/run/libvirt", "libvirtd is not running", "start it: sudo systemctl start libvirtd"),
]


def explain(output: str, action: str, system: str | None = None) -> LabkitError:
    from labkit import laptops

    system = system or platform.system()
    for needle, problem, fix in KNOWN_ERRORS:
        if re.search(needle, output):
            return LabkitError(f"vagrant {action} failed: {problem}", fix)
    for trap in laptops.TRAPS:
        if trap.matches(output, system):
            return LabkitError(f"vagrant {action} failed: {trap.problem}", trap.fix_for(system))
    last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "no output")
    return LabkitError(f"vagrant {action} failed: {last[:200]}", "read Vagrant's output above; invoke doctor checks the usual causes")


class Vagrant:
    def __init__(self, root: Path, env: dict | None = None):
        import vagrant  # python-vagrant, imported lazily (startup time)

        self.root = Path(root)
        self.env = dict(os.environ if env is None else env)
        self._stderr = ""
        self.last_output = ""  # the last streamed command's output tail
        self._v = vagrant.Vagrant(root=str(self.root), env=self.env, out_cm=vagrant.devnull_cm,
                                  err_cm=self._capture_stderr)

    @contextmanager
    def _capture_stderr(self):
        with tempfile.TemporaryFile() as fh:
            try:
                yield fh
            finally:
                fh.seek(0)
                self._stderr = fh.read().decode("utf-8", "replace")

    def _failure(self, exc: subprocess.CalledProcessError) -> str:
        """What Vagrant said when a captured command failed: stderr, or the machine-readable error."""
        text = self._stderr
        for line in (exc.output or b"").decode("utf-8", "replace").splitlines():
            fields = line.split(",", 3)
            if len(fields) == 4 and fields[2] == "error-exit":
                text += "\n" + fields[3].split(",", 1)[-1].replace("\\n", "\n").replace("%!(VAGRANT_COMMA)", ",")
        return text

    def command(self, *args: str) -> list[str]:
        try:
            return self._v._make_vagrant_command(list(args))
        except RuntimeError:
            raise LabkitError("Vagrant is not installed (no `vagrant` on PATH)",
                              "install Vagrant 2.2+ from the USB stick or https://developer.hashicorp.com/vagrant/install") from None

    # --- queries (captured output) ----------------------------------------------------------

    def status(self, node: str) -> str:
        self.command()  # a clear error if vagrant is missing
        try:
            return self._v.status(vm_name=node)[0].state
        except subprocess.CalledProcessError as exc:
            raise explain(self._failure(exc), "status") from None

    def ssh_config(self, node: str) -> bytes:
        """`vagrant ssh-config NODE`, as bytes: python-vagrant would decode it in the ANSI code page on Windows."""
        try:
            return subprocess.run(self.command("ssh-config", node), cwd=self.root, env=self.env, check=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL).stdout
        except subprocess.CalledProcessError as exc:
            self._stderr = (exc.stderr or b"").decode("utf-8", "replace")
            raise explain(self._failure(exc), "ssh-config") from None

    def ssh_facts(self, node: str) -> "SshFacts":
        """How to reach a running node over SSH; NodeDown (the one VM-down line) if it does not run."""
        state = self.status(node)
        if state != RUNNING:
            raise NodeDown(node, f"the VM is {state.replace('_', ' ')}")
        return parse_ssh_config(self.ssh_config(node))

    def snapshots(self, node: str) -> list[str]:
        try:
            out = self._v._run_vagrant_command(["snapshot", "list", node, "--machine-readable"])
        except subprocess.CalledProcessError as exc:
            raise explain(self._failure(exc), "snapshot list") from None
        return parse_snapshot_list(out)


    # --- actions (streamed) -----------------------------------------------------------------

    def stream(self, step: "ui.StatusLine", *args: str) -> None:
        """Run `vagrant ARGS`, showing each line under the step; raise LabkitError on failure."""
        cmd = self.command(*args)
        tail: list[str] = []
        proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._pump(proc, step, tail)
        except KeyboardInterrupt:
            # Vagrant got the same Ctrl-C and is cleaning up; wait for it instead of killing it.
            step.log("interrupted: waiting for Vagrant to clean up (Ctrl-C again to stop waiting)")
            try:
                self._pump(proc, step, tail)
            except KeyboardInterrupt:
                pass
            raise
        self.last_output = "\n".join(tail)  # what callers that recover from a failure look at
        if proc.returncode != 0:
            raise explain(self.last_output, args[0] if args else "")

    @staticmethod
    def _pump(proc: subprocess.Popen, step: "ui.StatusLine", tail: list[str]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            step.log(line)
            tail.append(line)
            del tail[:-40]
        proc.wait()

    def interactive(self, *args: str) -> int:
        """Hand the terminal to `vagrant ARGS` (vagrant ssh); returns its exit code."""
        return subprocess.call(self.command(*args), cwd=self.root, env=self.env)


class NodeDown(LabkitError):
    """A node labkit cannot reach: the same line for every task and check."""

    def __init__(self, node: str, why: str):
        super().__init__(f"cannot reach {node} over SSH ({why})", "start the VM: invoke vm.up")
        self.node = node


@dataclass(frozen=True)
class SshFacts:
    host: str
    port: int
    user: str
    key_file: str


def parse_ssh_config(output: bytes) -> SshFacts:
    """`vagrant ssh-config` output → SshFacts, read by paramiko's own ssh_config parser.

    Vagrant prints the key path as Ruby holds it, UTF-8 (C:\\Users\\Łukasz\\... on a Windows laptop whose
    user folder has non-ASCII letters); python-vagrant would decode it with locale.getpreferredencoding()
    (cp1252 there: a garbled path or UnicodeDecodeError). UTF-8 first; if that is not valid UTF-8, or names no
    existing key while the locale's reading does, the locale's reading.
    """
    import locale

    import paramiko

    readings = []
    for encoding in ("utf-8", locale.getpreferredencoding(False) or "utf-8"):
        try:
            readings.append(output.decode(encoding))
        except (UnicodeDecodeError, LookupError):
            continue
    readings.append(output.decode("utf-8", "replace"))
    facts = [_facts(paramiko.SSHConfig.from_text(text)) for text in readings]
    facts = [f for f in facts if f is not None]
    if not facts:
        raise LabkitError("vagrant ssh-config named no host, user and key",
                          "run invoke vm.status; if the VM runs, restart it: invoke vm.halt, then invoke vm.up")
    return next((f for f in facts if Path(f.key_file).is_file()), facts[0])


def _facts(config):
    hosts = [h for h in config.get_hostnames() if h != "*"]
    if not hosts:
        return None
    entry = config.lookup(hosts[0])
    keys = entry.get("identityfile") or []
    if not entry.get("hostname") or not entry.get("user") or not keys:
        return None
    return SshFacts(entry["hostname"], int(entry.get("port", 22)), entry["user"], keys[0])


def machine_id(root: Path, node: str, env: Optional[dict] = None) -> Optional[str]:
    """The id Vagrant keeps for a created VM (.vagrant/machines/NODE/PROVIDER/id, or under VAGRANT_DOTFILE_PATH):
    it changes when the VM is rebuilt."""
    dotfile = Path(root, (os.environ if env is None else env).get("VAGRANT_DOTFILE_PATH") or ".vagrant")
    for path in sorted((dotfile / "machines" / node).glob("*/id")):
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text
    return None


def created_machines(root: Path, env: Optional[dict] = None) -> list[str]:
    """The machines of this checkout that Vagrant created and has not destroyed: those with an id in
    .vagrant/machines (`vagrant destroy` removes the id, not the folder)."""
    dotfile = Path(root, (os.environ if env is None else env).get("VAGRANT_DOTFILE_PATH") or ".vagrant")
    names = sorted(p.name for p in (dotfile / "machines").glob("*") if p.is_dir())
    return [name for name in names if machine_id(root, name, env)]


def box_installed(name: str, provider: str, env: dict | None = None) -> bool:
    """Is box `name` installed for `provider`? Reads Vagrant's box directory: no 1.5 s `vagrant box list`.

    Before 2.4: boxes/<name>/<version>/<provider>/; from 2.4 a box with an architecture goes one level
    deeper, boxes/<name>/<version>/<arch>/<provider>/. Like Vagrant, a provider folder is one holding
    metadata.json (lib/vagrant/box_collection.rb `all`, Vagrant 2.4.1)."""
    env = os.environ if env is None else env
    home = Path(env.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
    box_dir = home / "boxes" / name.replace("/", "-VAGRANTSLASH-")
    return any((version / provider / "metadata.json").is_file() or any(version.glob(f"*/{provider}/metadata.json"))
               for version in box_dir.glob("*") if version.is_dir())


def parse_snapshot_list(machine_readable: str) -> list[str]:
    """Snapshot names from `vagrant snapshot list --machine-readable` (python-vagrant drops ui lines)."""
    names = []
    for line in machine_readable.splitlines():
        fields = line.split(",", 4)
        if len(fields) < 5 or fields[2] != "ui" or fields[3] not in ("output", "detail"):
            continue
        text = fields[4].replace("%!(VAGRANT_COMMA)", ",").strip()
        # Providers print the names as ui output or detail lines; headers start with "==>".
        if text and not text.startswith("==>") and "No snapshots" not in text:
            names.append(text)
    return names
