"""Reading what another program printed: always bytes, decoded here, never a UnicodeDecodeError.

Tools speak the user's language and code page: a "Default machine folder" named `C:\\Users\\Łukasz`
printed by VBoxManage in cp1250, a localized `icacls` message in the console's OEM code page, a
Russian VirtualBox 7. `subprocess.run(text=True)` decodes strictly in the locale's encoding and ends
in a traceback on the first byte it does not know. Every place the kit reads another program's
output goes through `text()` (or `output()`, which runs the program and calls it).
"""
from __future__ import annotations

import locale
import os
import platform
import subprocess
import time
from typing import Optional

from labkit.backends import CommandResult  # the one shape of a finished command


def text(data: Optional[bytes]) -> str:
    """UTF-8 if the bytes are UTF-8 (Vagrant, Ruby, most Linux tools), else the locale's encoding
    (Windows tools print in the ANSI/OEM code page), with undecodable bytes replaced (U+FFFD)."""
    if not data:
        return ""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding = locale.getpreferredencoding(False) or "utf-8"
    try:
        return data.decode(encoding, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def output(cmd: list[str], timeout: float = 30, env: Optional[dict] = None, cwd=None) -> Optional[CommandResult]:
    """Run `cmd` without a shell or stdin; None if it cannot start or overruns `timeout` seconds."""

    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return CommandResult(done.returncode, text(done.stdout), text(done.stderr), time.monotonic() - started)


# --- VBoxManage in one language -----------------------------------------------------------------
# VirtualBox 7 ships translations (Russian among them) and VBoxManage picks one from the locale, so
# "Default machine folder:" may arrive as "Папка для машин по умолчанию:". Vagrant sets LANG for its
# own VBoxManage calls from 2.3.3 (hashicorp/vagrant#12994, fixing #12968); plain "C" made VBoxManage
# 7.0.8 print nothing at all on some Linux hosts (#13145), so from 2.3.5 it prefers a UTF-8 "C"
# (#13150, #13160). The kit does the same for its own calls: the first UTF-8 English locale this
# host has, else C.
_ENGLISH = ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8")


def _english_locale(available: str) -> str:
    have = set(available.split())
    return next((name for name in _ENGLISH if name in have), "C")


_chosen: dict = {}


def english_env(base: Optional[dict] = None) -> dict:
    """The environment for the kit's VBoxManage calls: LC_ALL and LANG set to an English locale (on
    Windows "C": there is no `locale -a`, and whether VBoxManage reads the variables there rather than
    the UI language is not known from here; its numbers and the fields doctor reads stay parseable)."""
    env = dict(os.environ if base is None else base)
    if "name" not in _chosen:
        got = None if platform.system() == "Windows" else output(["locale", "-a"], timeout=5)
        _chosen["name"] = _english_locale(got.stdout if got and got.ok else "")
    env["LC_ALL"] = env["LANG"] = _chosen["name"]
    env.pop("LANGUAGE", None)  # GNU gettext reads LANGUAGE before LC_ALL
    return env
