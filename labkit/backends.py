"""Where a command runs: the one place that knows it (after pytest-testinfra's backends).

    Local()                      this laptop
    Ssh.for_node(settings, vg, "ubuntu")  the VM, over SSH with Vagrant's key (paramiko: no ssh binary needed)
    Pod(node_backend, "client")  inside a pod, through `kubectl exec` on the node
    Netns("pod-client")          a Linux network namespace (tests build a pod network out of these)

Every backend takes an argv list and returns a Result; nothing raises for a failed command, so
callers (verify's checks) decide what a non-zero exit means. Timeouts give exit code 124.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

TIMEOUT_EXIT = 124


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Backend:
    name = "backend"

    def run(self, argv: Sequence[str], timeout: float = 30, stdin: Optional[bytes] = None) -> Result:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Local(Backend):
    name = "laptop"

    def __init__(self, prefix: Sequence[str] = (), name: Optional[str] = None):
        self.prefix = list(prefix)
        if name:
            self.name = name

    def run(self, argv, timeout=30, stdin=None) -> Result:
        started = time.monotonic()
        try:
            out = subprocess.run(self.prefix + list(argv), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return Result(TIMEOUT_EXIT, _text(exc.stdout), f"timed out after {timeout:g}s", time.monotonic() - started)
        except OSError as exc:
            return Result(127, "", f"{argv[0]}: {exc.strerror or exc}", time.monotonic() - started)
        return Result(out.returncode, _text(out.stdout), _text(out.stderr), time.monotonic() - started)


class Netns(Local):
    """A Linux network namespace on this machine (`ip netns exec`)."""

    def __init__(self, namespace: str):
        super().__init__(["ip", "netns", "exec", namespace], name=f"netns {namespace}")
        self.namespace = namespace


class Ssh(Backend):
    """A VM over SSH. One connection per backend, shared by concurrent commands (one channel each)."""

    def __init__(self, name: str, host: str, port: int, user: str, key_file: str):
        self.name, self.host, self.port, self.user, self.key_file = name, host, port, user, key_file
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def for_node(cls, settings, vagrant, node: str) -> "Ssh":
        """Connection facts from `vagrant ssh-config`, cached in .labkit/ (vm tasks drop the cache)."""
        cache = ssh_cache_file(settings, node)
        if cache.exists():
            facts = json.loads(cache.read_text())
        else:
            from labkit.fsutil import write_private
            from vagrant import Vagrant as _PV

            conf = _PV()._parse_config(vagrant.ssh_config(node))
            facts = {"host": conf["HostName"], "port": int(conf.get("Port", 22)), "user": conf["User"],
                     "key_file": conf["IdentityFile"]}
            write_private(cache, json.dumps(facts))
        return cls(node, **facts)

    def _connect(self):
        with self._lock:
            if self._client is None:
                import paramiko

                client = paramiko.SSHClient()
                # The VM is created locally and re-keyed on every rebuild, exactly like `vagrant ssh`
                # (StrictHostKeyChecking no); nothing is saved to known_hosts.
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
                client.connect(self.host, port=self.port, username=self.user, key_filename=self.key_file,
                               timeout=15, allow_agent=False, look_for_keys=False)
                self._client = client
            return self._client

    def run(self, argv, timeout=30, stdin=None) -> Result:
        command = argv if isinstance(argv, str) else shlex.join(argv)
        started = time.monotonic()
        try:
            client = self._connect()
            chan = client.get_transport().open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _drain(chan, timeout, started)
        except TimeoutError:
            return Result(TIMEOUT_EXIT, "", f"timed out after {timeout:g}s", time.monotonic() - started)
        except Exception as exc:  # paramiko/socket errors: the node is unreachable
            return Result(255, "", f"ssh to {self.name} failed: {exc}", time.monotonic() - started)
        code = chan.recv_exit_status()
        return Result(code, out, err, time.monotonic() - started)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class Pod(Backend):
    """A container in a pod, through `kubectl exec` run by another backend (normally the node)."""

    def __init__(self, via: Backend, pod: str, namespace: str = "default", container: Optional[str] = None):
        self.via, self.pod, self.namespace, self.container = via, pod, namespace, container
        self.name = f"pod {pod}"

    def run(self, argv, timeout=30, stdin=None) -> Result:
        cmd = ["kubectl", "exec", "-n", self.namespace, self.pod]
        if self.container:
            cmd += ["-c", self.container]
        if stdin:
            cmd.append("-i")
        return self.via.run(cmd + ["--", *argv], timeout=timeout, stdin=stdin)


def ssh_cache_file(settings, node: str) -> Path:
    return settings.state_dir / f"{node}.ssh.json"


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
