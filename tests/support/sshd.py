"""OpenSSH's sshd on 127.0.0.1, standing in for a VM's SSH server (what Vagrant's ssh-config points at)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.env import free_port, need, need_binary, stop_process


def start_sshd(d: Path, extra: tuple = ()) -> tuple[subprocess.Popen, dict]:
    """sshd in directory `d` (keys, config, log), key login for this user; returns the process and the SSH facts
    (host, port, user, key_file) plus `log`. `extra`: more sshd_config lines (SetEnv ...)."""
    sshd_bin = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")
    need(sshd_bin is not None, "`sshd` is not installed (Debian package openssh-server)")
    need_binary("ssh-keygen")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no",
        *extra, ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()[-1500:]}")
            time.sleep(0.1)
    return proc, {"host": "127.0.0.1", "port": port, "user": os.environ.get("USER") or "root",
                  "key_file": str(d / "client_key"), "log": d / "sshd.log"}
