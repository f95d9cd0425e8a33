"""The VM's Docker daemon from the laptop, over the SSH connection labkit already has.

The docker SDK's own ssh:// transport cannot take Vagrant's key file (it reads only ~/.ssh/config)
and rejects host keys missing from known_hosts, and the VM is re-keyed on every rebuild. So we do
what `docker -H ssh://` does (docker/cli#1014, Docker 18.09+), with our own paramiko connection:
every connection the SDK opens to a loopback port becomes one SSH channel running
`docker system dial-stdio` in the VM, which relays it to /var/run/docker.sock. Sockets and threads
only: it works the same on Windows, macOS and Linux laptops.

The port listens on 127.0.0.1 only, and only while a build runs.
"""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from labkit.errors import LabkitError

DIAL_STDIO = "docker system dial-stdio"
DOCKER_VERSION = "docker version --format '{{.Server.Version}}'"
CHUNK = 65536


class DialStdioForwarder:
    """Loopback TCP port → `docker system dial-stdio` on the far side of a paramiko Transport."""

    def __init__(self, transport, command: str = DIAL_STDIO):
        self.transport = transport
        self.command = command
        self.errors: list[str] = []  # what dial-stdio printed on stderr (permission denied, ...)
        self._listener: Optional[socket.socket] = None
        self._closed = threading.Event()

    @property
    def port(self) -> int:
        assert self._listener is not None, "start() first"
        return self._listener.getsockname()[1]

    def start(self) -> "DialStdioForwarder":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.2)  # lets the accept loop notice close()
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="dial-stdio-accept", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> "DialStdioForwarder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # listener closed
            conn.settimeout(None)
            threading.Thread(target=self._serve, args=(conn,), name="dial-stdio", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            chan = self.transport.open_session(timeout=15)
            chan.exec_command(self.command)
        except Exception as exc:  # the SSH connection is gone
            self.errors.append(f"ssh: {exc}")
            conn.close()
            return
        upstream = threading.Thread(target=self._pump_up, args=(conn, chan), daemon=True)
        upstream.start()
        try:
            while True:
                data = chan.recv(CHUNK)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            self._collect_stderr(chan)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
            try:
                chan.close()
            except (EOFError, OSError):  # the SSH transport went first: the channel is closed already
                pass
            upstream.join(timeout=5)

    @staticmethod
    def _pump_up(conn: socket.socket, chan) -> None:
        try:
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    break
                chan.sendall(data)
            chan.shutdown_write()  # the SDK finished sending: dial-stdio half-closes its socket too
        except (OSError, EOFError):
            pass

    def _collect_stderr(self, chan) -> None:
        err = b""
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(CHUNK)
        text = err.decode("utf-8", "replace").strip()
        if text:
            self.errors.append(text)


def check_docker(ssh, node: str) -> str:
    """The VM's Docker server version, or a one-line error saying what to fix in the VM."""
    result = ssh.run(DOCKER_VERSION, timeout=30)
    detail = (result.stderr or result.stdout).strip().splitlines()
    last = detail[-1] if detail else f"exit code {result.exit_code}"
    if result.exit_code == 255 and result.stderr.startswith("ssh"):
        raise LabkitError(f"cannot reach {node} over SSH ({last})", "start the VM: invoke vm.up")
    if result.ok and result.stdout.strip():
        return result.stdout.strip()
    low = last.lower()
    if result.exit_code == 127 or "not found" in low:
        raise LabkitError(f"Docker is not installed in {node}", "provision it: invoke vm.provision --step docker")
    if "permission denied" in low:
        raise LabkitError(f"user {ssh.user} may not use the Docker daemon in {node} ({last})",
                          "the docker provision step adds it to the docker group: invoke vm.provision --step docker")
    if "cannot connect" in low or "is the docker daemon running" in low:
        raise LabkitError(f"the Docker daemon in {node} is not running ({last})",
                          "start it: invoke vm.ssh --command 'sudo systemctl restart docker'")
    raise LabkitError(f"`docker version` failed in {node}: {last}", "invoke vm.provision --step docker repairs the install")


@contextmanager
def docker_client(ssh, node: str, timeout: int = 600) -> Iterator:
    """A docker.DockerClient talking to the Docker daemon inside the VM `ssh` reaches."""
    import docker

    check_docker(ssh, node)
    transport = ssh.connect().get_transport()  # the backend's live connection (check_docker opened it)
    with DialStdioForwarder(transport) as fwd:
        client = None
        try:
            # version="auto": Docker 18.09 speaks API 1.39, older than the SDK's default.
            client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{fwd.port}", version="auto", timeout=timeout)
        except docker.errors.DockerException as exc:
            why = fwd.errors[-1] if fwd.errors else str(exc)
            raise LabkitError(f"cannot talk to Docker in {node} through SSH: {why}",
                              "check the VM's Docker: invoke vm.ssh --command 'docker version'") from None
        try:
            yield client
        finally:
            client.close()
