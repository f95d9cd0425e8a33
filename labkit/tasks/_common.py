"""What every task shares: settings from the project root, one-line errors, Ctrl-C handling."""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from invoke import Exit, task

from labkit.errors import LabkitError

INTERRUPTED = 130


def labtask(*args, **kwargs):
    """`invoke.task` whose body turns LabkitError into one line on stderr (exit 1), never a traceback."""

    def decorate(body):
        @functools.wraps(body)
        def wrapper(*a, **kw):
            try:
                return body(*a, **kw)
            except LabkitError as exc:
                raise Exit(exc.line(), code=1) from None
            except KeyboardInterrupt:
                raise Exit("labkit: interrupted. Finished files were kept and partial ones removed; "
                           "run the same command again to continue.", code=INTERRUPTED) from None

        return task(wrapper, *args, **kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        body, args = args[0], ()
        return decorate(body)
    return decorate


def seconds(value, option: str = "--timeout") -> int:
    """A positive whole number of seconds from the command line (taken as text: Invoke's int parsing would traceback)."""
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+", text) or int(text) == 0:
        raise LabkitError(f"{option} '{value}' is not a positive whole number of seconds",
                          f"give one like {option} 600")
    return int(text)


def project_root(c) -> Path:
    """The directory holding settings.yaml and the Vagrantfile (tasks.py puts it in the config)."""
    root = c.config.get("labkit", {}).get("root") if hasattr(c, "config") else None
    return Path(root) if root else Path.cwd()


def settings(c):
    from labkit import settings as settings_mod

    return settings_mod.load(project_root(c), os.environ)


def vagrant_for(s):
    """The Vagrant wrapper for this project (imported lazily: startup time)."""
    from labkit.vagrant import Vagrant

    return Vagrant(s.root)
