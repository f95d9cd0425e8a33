"""Invoke task modules: one module per collection, each doing one thing. tasks.py assembles them.

Importing this package also sets up what every command shares, before Invoke parses the command line:
output that never fails on encoding or on a closed pipe (`invoke verify | head`), and an unknown task
or option answered with the closest name.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from labkit import ui

UNKNOWN = re.compile(r"^No idea what '(.+)' is!$")


def _quiet_broken_pipe(kind, value, tb, _default=sys.excepthook) -> None:
    """A reader that stopped early (`| head`) ends the command quietly, like coreutils."""
    if issubclass(kind, BrokenPipeError):  # Invoke's own output (--help, --list)
        ui.reader_gone()
        return
    _default(kind, value, tb)


def suggestion(token: str, collection, context=None) -> str:
    """The one line for a name Invoke does not know: the closest task or option, and where the list is."""
    import difflib

    if token.startswith("-") and context is not None and context.name:
        options = [f for f in context.flags if f.startswith("--")]
        close = difflib.get_close_matches(token, options, n=1, cutoff=0.6)
        fix = (f"did you mean {close[0]}? " if close else "") + f"`invoke {context.name} --help` lists its options"
        return f"labkit: {context.name} has no option {token}. Fix: {fix}"
    names = list(collection.task_names) + [a for aliases in collection.task_names.values() for a in aliases]
    close = difflib.get_close_matches(token, names, n=1, cutoff=0.6)
    fix = (f"did you mean `invoke {close[0]}`? " if close else "") + "`invoke --list` shows every task"
    return f"labkit: there is no task '{token}'. Fix: {fix}"


def _suggesting(method):
    def parse(*args, **kwargs):
        from invoke.exceptions import Exit, ParseError

        try:
            return method(*args, **kwargs)
        except ParseError as exc:
            known = UNKNOWN.match(str(exc))
            if not known:
                raise
            raise Exit(suggestion(known.group(1), program.collection, getattr(exc, "context", None)), code=1) from None

    return parse


ui.never_fail_on_encoding()
sys.excepthook = _quiet_broken_pipe
try:
    from invoke.main import program
except ImportError:  # pragma: no cover - invoke is a dependency
    program = None
if program is not None and not getattr(program, "labkit_hooks", False):
    # The `invoke` command's Program: unknown names get a suggestion instead of "No idea what 'verfy' is!".
    program.parse_tasks = _suggesting(program.parse_tasks)
    program.parse_cleanup = _suggesting(program.parse_cleanup)
    program.labkit_hooks = True

if __name__ == "tasks":
    # `invoke` run inside labkit/ finds this package before the project's tasks.py: use the project's.
    import importlib.util

    _spec = importlib.util.spec_from_file_location("labkit_project_tasks", Path(__file__).parents[2] / "tasks.py")
    if _spec is not None and Path(_spec.origin).is_file():
        _project = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_project)
        ns = _project.ns
