"""Writing files so that an interruption never leaves a half-written one, and private files private on
every system."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

# Windows: an antivirus (or the search indexer) opening a file we just wrote makes os.replace fail with
# ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32) for a moment. pip retries the same way
# (src/pip/_internal/utils/filesystem.py, `replace` retried on PermissionError for up to 1 s on Windows).
BUSY_WINERRORS = {5, 32}
REPLACE_TRIES, REPLACE_PAUSE = 12, 0.25  # about 3 s in all


def replace(src: Path | str, dst: Path | str) -> None:
    """os.replace, retried briefly while Windows says another program holds one of the files."""
    for attempt in range(REPLACE_TRIES):
        try:
            os.replace(src, dst)
            return
        except PermissionError as exc:
            if getattr(exc, "winerror", None) not in BUSY_WINERRORS or attempt == REPLACE_TRIES - 1:
                raise
            time.sleep(REPLACE_PAUSE)


def owner_only_acl_command(path: Path | str, env=os.environ) -> list[str]:
    """Windows: the icacls command that leaves `path` readable by its owner alone. chmod 0600 only
    clears the read-only bit there; the file keeps the folder's inherited ACL (often Users: read)."""
    user = env.get("USERNAME", "")
    who = f"{env['USERDOMAIN']}\\{user}" if env.get("USERDOMAIN") else user
    return ["icacls", str(path), "/inheritance:r", "/grant:r", f"{who}:F"]


def make_private(path: Path | str) -> None:
    """Only this user may read `path`: mode 0600, and on Windows an ACL with this user alone."""
    os.chmod(path, 0o600)
    if os.name == "nt":
        restrict(path, owner_only_acl_command(path))


def restrict(path, cmd: list[str]) -> None:
    """Run the ACL command; its failure is one line with icacls' own words (in the console's code page on a
    localized Windows: read as bytes, never a UnicodeDecodeError)."""
    from labkit.errors import LabkitError
    from labkit.proc import text

    try:
        done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise LabkitError(f"cannot restrict {path} to your user: {cmd[0]}: {exc.strerror or exc}",
                          "run from a folder you own (for example under your user folder)") from None
    if done.returncode != 0:
        said = (text(done.stdout) + text(done.stderr)).strip()[:200]
        raise LabkitError(f"cannot restrict {path} to your user: {said}",
                          "run from a folder you own (for example under your user folder)")


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path`, then rename over it (atomic on every OS)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode == 0o600:
                make_private(tmp)  # before the first byte (on Windows mkstemp's file inherits the folder's ACL)
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)  # mkstemp makes it 0600; on Windows only the read-only bit applies
        replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: str | bytes) -> None:
    """Keys, kubeconfigs, ssh facts: only this user can read them, from the first byte (mkstemp creates
    files 0600; on Windows an ACL does the same)."""
    write_atomic(path, data, mode=0o600)
