"""What every task shares: settings from the project root, one-line errors, Ctrl-C handling."""
from __future__ import annotations

import functools
import inspect
import os
import re
from pathlib import Path

from invoke import Exit, task

from labkit.errors import LabkitError

INTERRUPTED = 130


def labtask(*args, **kwargs):
    """`invoke.task` whose body turns LabkitError into one line on stderr (exit 1), never a traceback.

    Invoke types an option by its default and parses an int default with int(), so `--port abc`
    would end in a ValueError traceback before the body runs. Options with an int default are
    therefore shown to Invoke as text (default None) and turned into numbers here.
    """

    def decorate(body):
        sig = inspect.signature(body)
        numbers = {n: p.default for n, p in sig.parameters.items() if type(p.default) is int}

        @functools.wraps(body)
        def wrapper(*a, **kw):
            try:
                bound = sig.bind(*a, **kw)
                for name, default in numbers.items():
                    given = bound.arguments.get(name)
                    bound.arguments[name] = default if given is None else _number(name, given)
                return body(*bound.args, **bound.kwargs)
            except LabkitError as exc:
                raise Exit(exc.line(), code=1) from None
            except KeyboardInterrupt:
                raise Exit("labkit: interrupted. Finished files were kept and partial ones removed; "
                           "run the same command again to continue.", code=INTERRUPTED) from None

        wrapper.__signature__ = sig.replace(parameters=[
            p.replace(default=None) if p.name in numbers else p for p in sig.parameters.values()])
        return task(wrapper, *args, **kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        body, args = args[0], ()
        return decorate(body)
    return decorate


def _number(name: str, value) -> int:
    """A whole number from the command line; a --timeout must be positive (seconds)."""
    option = "--" + name.replace("_", "-")
    text = str(value).strip()
    whole = re.fullmatch(r"[0-9]+", text) is not None
    if name == "timeout" and not (whole and int(text) > 0):
        raise LabkitError(f"{option} '{value}' is not a positive whole number of seconds",
                          f"give one like {option} 600")
    if not whole:
        raise LabkitError(f"{option} '{value}' is not a whole number",
                          "give one without a sign or unit (the task's --help says what it means)")
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
