"""What every task shares: settings from the project root, one-line errors, Ctrl-C handling."""
from __future__ import annotations

import functools
import inspect
import os
import re
from pathlib import Path

from invoke import Argument, Exit, Task, task

from labkit.errors import LabkitError

INTERRUPTED = 130
INTERRUPTED_LINE = "labkit: interrupted. Run the same command again when ready: every task is safe to re-run."

# One short flag per option name, the same in every task (kubectl and vagrant users expect that); options
# not listed here are long-only. `-h` is never one: it stays --help everywhere.
SHORT_FLAGS = {
    "allow_unpinned": "a", "command": "c", "dry_run": "d", "from_": "f", "json": "j", "lock": "l", "node": "n",
    "only": "o", "port": "p", "section": "s", "timeout": "t", "workers": "w",
}


class _WholeNumber(Argument):
    """An option with a whole-number default: --help shows INT, but the text reaches the task unparsed
    (Invoke's own int() would end a typo like `--port abc` in a traceback before the task runs)."""

    def set_value(self, value, cast=True):
        super().set_value(value, cast=False)


class LabTask(Task):
    """Invoke's Task with labkit's flags: SHORT_FLAGS instead of first-free-letter short flags."""

    def get_arguments(self, ignore_unknown_help=None):
        helps = dict(self.help)  # Invoke pops each help text it uses: keep them for the next caller
        try:
            made = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = helps
        args = []
        for arg in made:
            short = SHORT_FLAGS.get(arg.attr_name or arg.name)
            names = [arg.names[0]] + ([short] if short else [])
            kind = int if arg.name in getattr(self, "numbers", ()) else arg.kind
            cls = _WholeNumber if kind is int else Argument
            args.append(cls(names=names, kind=kind, default=arg.default, help=arg.help, positional=arg.positional,
                            optional=arg.optional, incrementable=arg.incrementable, attr_name=arg.attr_name))
        return args


def labtask(*args, convert=None, **kwargs):
    """`invoke.task` whose body turns LabkitError into one line on stderr (exit 1), never a traceback.

    Options with an int default are shown as INT but reach the body through `_number` (or the task's
    own `convert={name: function}`), so every bad number is one line.
    """

    def decorate(body):
        sig = inspect.signature(body)
        numbers = {n: p.default for n, p in sig.parameters.items() if type(p.default) is int}
        converters = {n: (convert or {}).get(n, _number) for n in numbers}

        @functools.wraps(body)
        def wrapper(*a, **kw):
            try:
                bound = sig.bind(*a, **kw)
                for name, default in numbers.items():
                    given = bound.arguments.get(name)
                    bound.arguments[name] = default if given is None else converters[name](name, given)
                return body(*bound.args, **bound.kwargs)
            except LabkitError as exc:
                from labkit import results  # the one line as data too (labkit/results.py)

                results.record("error", message=exc.message, fix=exc.fix)
                raise Exit(exc.line(), code=1) from None
            except KeyboardInterrupt:
                raise Exit(INTERRUPTED_LINE, code=INTERRUPTED) from None

        wrapper.__signature__ = sig.replace(parameters=[
            p.replace(default=None) if p.name in numbers else p for p in sig.parameters.values()])
        made = task(wrapper, *args, klass=LabTask, **kwargs)
        made.numbers = set(numbers)
        return made

    if len(args) == 1 and callable(args[0]) and not kwargs and convert is None:
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
    if int(text) == 0:
        raise LabkitError(f"{option} 0 is not allowed", "give 1 or more (the task's --help says what it means)")
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
