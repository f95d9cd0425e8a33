"""Where a command runs: the one place that knows it (after pytest-testinfra's backend/__init__.py get_backend()).

    get_backend("local")                  this laptop
    get_backend("node:ubuntu", settings)  a VM node, over SSH with Vagrant's key (paramiko: no ssh binary needed)
    get_backend("pod:client", settings)   inside a pod, through `kubectl exec` on the master node
    get_backend("netns:pod-client")       a Linux network namespace (tests build a pod network out of these)

Every backend takes an argv list and returns a CommandResult; nothing raises for a failed command, so
callers (verify's checks) decide what a non-zero exit means. Timeouts give exit code 124. A node
that cannot be reached gives the same line everywhere (labkit.vagrant.NodeDown): raised by
`connect()` for tasks, the stderr of a 255 CommandResult for checks.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from labkit.errors import LabkitError
from labkit.text import reason

TIMEOUT_EXIT = 124


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Backend:
    name = "backend"

    def run(self, argv: Sequence[str], timeout: float = 30, stdin: Optional[bytes] = None) -> CommandResult:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Local(Backend):
    name = "laptop"

    def __init__(self, prefix: Sequence[str] = (), name: Optional[str] = None):
        self.prefix = list(prefix)
        if name:
            self.name = name

    def run(self, argv, timeout=30, stdin=None) -> CommandResult:
        started = time.monotonic()
        try:
            out = subprocess.run(self.prefix + list(argv), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return CommandResult(TIMEOUT_EXIT, _text(exc.stdout), f"timed out after {timeout:g}s", time.monotonic() - started)
        except OSError as exc:
            return CommandResult(127, "", f"{argv[0]}: {exc.strerror or exc}", time.monotonic() - started)
        return CommandResult(out.returncode, _text(out.stdout), _text(out.stderr), time.monotonic() - started)


class Netns(Local):
    """A Linux network namespace on this machine (`ip netns exec`)."""

    def __init__(self, namespace: str):
        super().__init__(["ip", "netns", "exec", namespace], name=f"netns {namespace}")
        self.namespace = namespace


class Ssh(Backend):
    """A VM over SSH. One connection per backend, shared by concurrent commands (one channel each).

    Either fixed facts (host, port, user, key_file) or `facts(refresh)`, called on first use: a node's
    backend is made without the VM (dry-runs, verify's plan) and asks Vagrant only when it connects.
    """

    def __init__(self, name: str, host: str = "", port: int = 22, user: str = "", key_file: str = "",
                 facts: Optional[Callable[[bool], dict]] = None):
        self.name, self.host, self.port, self.user, self.key_file = name, host, port, user, key_file
        self._facts = facts
        self._client = None
        self._down = None
        self._lock = threading.Lock()

    def connect(self):
        """The SSH connection; NodeDown (one line with the fix) if the node cannot be reached."""
        from labkit.vagrant import NodeDown

        with self._lock:
            if self._down is not None:  # tried once: every later command gets the same answer at once
                raise self._down
            if self._client is None:
                try:
                    self._client = self._open_or_refresh()
                except LabkitError as exc:
                    self._down = exc
                    raise
            return self._client

    def _open_or_refresh(self):
        from labkit.vagrant import NodeDown

        try:
            return self._open(refresh=False)
        except LabkitError:
            raise
        except Exception as exc:  # with cached facts of an earlier boot, perhaps: ask Vagrant again, once
            if self._facts is None:
                raise NodeDown(self.name, reason(exc)) from None
            try:
                return self._open(refresh=True)
            except NodeDown:
                raise
            except LabkitError:  # Vagrant cannot say more (no VM here, no vagrant): what the connection said
                raise NodeDown(self.name, reason(exc)) from None

    def _open(self, refresh: bool):
        import paramiko

        from labkit.vagrant import NodeDown

        if self._facts is not None:
            for key, value in self._facts(refresh).items():
                setattr(self, key, value)
        client = paramiko.SSHClient()
        # The VM is created locally and re-keyed on every rebuild, exactly like `vagrant ssh`
        # (StrictHostKeyChecking no); nothing is saved to known_hosts.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(self.host, port=self.port, username=self.user, key_filename=self.key_file,
                           timeout=15, allow_agent=False, look_for_keys=False)
        except Exception as exc:
            client.close()
            if refresh:
                raise NodeDown(self.name, reason(exc)) from None
            raise
        return client

    def run(self, argv, timeout=30, stdin=None) -> CommandResult:
        command = argv if isinstance(argv, str) else shlex.join(argv)
        started = time.monotonic()
        try:
            client = self.connect()
            chan = client.get_transport().open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _drain(chan, timeout, started)
        except TimeoutError:
            return CommandResult(TIMEOUT_EXIT, "", f"timed out after {timeout:g}s", time.monotonic() - started)
        except LabkitError as exc:  # NodeDown, or Vagrant's own error: the line a task would print
            return CommandResult(255, "", f"ssh to {self.name} failed: {exc.line().removeprefix('labkit: ')}",
                          time.monotonic() - started)
        except Exception as exc:  # paramiko/socket errors: the node is unreachable
            return CommandResult(255, "", f"ssh to {self.name} failed: {exc}", time.monotonic() - started)
        code = chan.recv_exit_status()
        return CommandResult(code, out, err, time.monotonic() - started)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._down = None


class Pod(Backend):
    """A container in a pod, through `kubectl exec` run by another backend (normally the node)."""

    def __init__(self, via: Backend, pod: str, namespace: str = "default", container: Optional[str] = None):
        self.via, self.pod, self.namespace, self.container = via, pod, namespace, container
        self.name = f"pod {pod}"

    def run(self, argv, timeout=30, stdin=None) -> CommandResult:
        cmd = ["kubectl", "exec", "-n", self.namespace, self.pod]
        if self.container:
            cmd += ["-c", self.container]
        if stdin:
            cmd.append("-i")
        return self.via.run(cmd + ["--", *argv], timeout=timeout, stdin=stdin)


def ssh_cache_file(settings, node: str) -> Path:
    return settings.state_dir / f"{node}.ssh.json"


def node_facts(settings, node: str, env: Optional[dict] = None) -> Callable[[bool], dict]:
    """SSH facts of a node from Vagrant, cached in .labkit/ with the VM's machine id: a rebuilt VM (new id)
    or refresh=True (a connection with the cached facts failed) asks Vagrant again; nothing to delete by hand."""

    def facts(refresh: bool) -> dict:
        from labkit.fsutil import write_private
        from labkit.vagrant import Vagrant, machine_id

        cache, vm_id = ssh_cache_file(settings, node), machine_id(settings.root, node, env)
        if not refresh and cache.is_file():
            try:
                saved = json.loads(cache.read_text(encoding="utf-8"))
                if saved.pop("machine_id", None) == vm_id:
                    return saved
            except (ValueError, AttributeError):
                pass
        found = Vagrant(settings.root, env).ssh_facts(node)
        out = {"host": found.host, "port": found.port, "user": found.user, "key_file": found.key_file}
        write_private(cache, json.dumps({**out, "machine_id": vm_id}))
        return out

    return facts


def get_backend(spec: str, settings=None, env: Optional[dict] = None, via: Optional[Backend] = None) -> Backend:
    """The one place a backend is made: "local", "netns:NAME", "node:NAME", "pod:NAME" or "pod:NAMESPACE/NAME"
    (kubectl exec on the master node, or on `via`: a node backend already open, whose connection it shares).

    Nothing connects here: a node is reached on its first command (or `connect()`).
    """
    kind, _, arg = spec.partition(":")
    if kind == "local":
        return Local()
    if kind == "netns" and arg:
        return Netns(arg)
    if kind == "node" and arg and settings is not None:
        settings.node(arg)  # an unknown node name is one line here, before anything runs
        return Ssh(arg, facts=node_facts(settings, arg, env))
    if kind == "pod" and arg and (via is not None or settings is not None):
        namespace, _, pod = arg.rpartition("/")
        return Pod(via or get_backend(f"node:{settings.master.name}", settings, env), pod, namespace or "default")
    raise ValueError(f"no backend {spec!r}")


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _drain(chan, timeout: float, started: float) -> tuple[str, str]:
    out, err = bytearray(), bytearray()
    while True:
        if time.monotonic() - started > timeout:
            chan.close()
            raise TimeoutError
        got = False
        if chan.recv_ready():
            out += chan.recv(65536)
            got = True
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
            got = True
        if not got:
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            time.sleep(0.01)
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
