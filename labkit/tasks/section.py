"""section.*: the lab done by hand, section by section (1-8, the lab's numbering): start, check, solve, progress."""
from __future__ import annotations

import json as jsonlib

from labkit import ui
from labkit.errors import LabkitError
from labkit.tasks._common import labtask, settings, vagrant_for

N_HELP = "the lab's section number, 1-8"
DRY_RUN_HELP = "print the steps and what each would do, change nothing"
SOLVE_TIMEOUT = 600  # the waits of one solve (the API server, node Ready, the pods), as cluster.init's


def _number(n, task: str, c=None) -> int:
    if str(n).strip() in ("-h", "--help"):
        # The section number is positional (invoke section.check 2), and Invoke hands a positional
        # argument whatever comes next, --help included: show the help Invoke would have shown, as the
        # running Program prints it (it has parsed this task's options already).
        from invoke import Exit
        from invoke.main import program

        program.print_task_help(f"section.{task}")
        raise Exit(code=0)
    if n is None:
        raise LabkitError("which section? none given", "give its number, like: invoke section.check 2")
    text = str(n).strip()
    if not text.isdigit() or not 1 <= int(text) <= 8:
        raise LabkitError(f"'{n}' is not a section of the lab", "give a number from 1 to 8")
    return int(text)


def _context(s):
    """The run's context: the master over SSH (opened once), Vagrant, the API; the waits of a solve share 600 s."""
    from labkit.steps import context

    return context(s, SOLVE_TIMEOUT, open_vagrant=lambda: vagrant_for(s))


def _show_section(state) -> None:
    """Each check run, passed or failed (the cause of a failure follows the table, in full)."""
    marks = ui.marks()
    mark = {"pass": marks["ok"], "warn": marks["ok"], "fail": marks["failed"], "skip": marks["skipped"]}
    rows = [[o.check.title, mark[o.status]] for o in state.outcomes]
    ui.table(f"Section {state.number}: {state.title}", ["check", "result"], rows)


def _states(c, upto: int):
    """Sections 1..upto judged on the live lab (one SSH connection, closed after)."""
    from labkit.room.client import send  # to the instructor's room, if this laptop joined one (class.join)
    from labkit.student import live
    from labkit.student.progress import as_json
    from labkit.tasks._common import project_root

    s = settings(c)
    ctx = _context(s)
    try:
        live.ensure_running(ctx)
        states = live.evaluate(ctx, upto)
    finally:
        ctx.close()
    send(project_root(c), "progress", as_json(states, s.master.name))
    return s, states


def _tell(section: int, failure) -> None:
    ui.say(f"  Cause: {failure.result.cause}")
    ui.say(f"  Next:  {failure.result.fix}")
    ui.say(f"  Or let the kit do it: invoke section.solve {section}")


@labtask(positional=["n"], help={"n": N_HELP})
def check(c, n=None):
    """Check section N on the live VM: 'done', or the cause and the next command to type (plus what the kit can do)."""
    from invoke import Exit

    from labkit.student.progress import DONE

    number = _number(n, "check", c)
    _, states = _states(c, number)
    last = states[-1]
    if last.blocked_by is not None:
        earlier = states[last.blocked_by - 1]
        _show_section(earlier)
        ui.say(f"Section {number} cannot be checked yet: section {earlier.number} ({earlier.title}) is not done.")
        _tell(earlier.number, earlier.failure)
        raise Exit(code=1)
    _show_section(last)
    if last.status == DONE:
        ui.say(f"Section {number} is done." + (f" Next: section {number + 1}." if number < 8 else " That was the last one."))
        return
    ui.say(f"Section {number} is not done yet.")
    _tell(number, last.failure)
    raise Exit(code=1)


@labtask(help={"json": "also write the table as JSON to this file (an instructor collects these from a room)"})
def progress(c, json=None):
    """One table of the lab's eight sections: done, in progress or not started, with the first failing check."""
    from labkit.fsutil import write_atomic
    from labkit.student import progress as prog
    from labkit.student.sections import SECTIONS

    s, states = _states(c, 8)
    rows = []
    for st in states:
        f = st.failure
        rows.append([str(st.number), SECTIONS[st.number].short, st.status,
                     f"(after section {st.blocked_by})" if st.blocked_by is not None else (f.check.title if f else "")])
    ui.table("Lab progress", ["#", "section", "status", "first failing check"], rows)
    current = next((st for st in states if st.status != prog.DONE), None)
    if current and current.failure:
        ui.say(f"Section {current.number}: {current.failure.result.cause}")
        ui.say(f"Next: {current.failure.result.fix}")
    if json:
        write_atomic(__import__("pathlib").Path(json), jsonlib.dumps(prog.as_json(states, s.master.name), indent=2) + "\n")
        ui.say(f"Progress written to {json}")


@labtask(positional=["n"], help={"n": N_HELP, "dry_run": DRY_RUN_HELP})
def solve(c, n=None, dry_run=False):
    """Let the kit do section N the way the lab does it (and any earlier section not done yet). A no-op if done."""
    from labkit.steps import perform
    from labkit.student.actions import solve_plan

    number = _number(n, "solve", c)
    s = settings(c)
    ctx = _context(s)
    if not dry_run:
        from labkit.student import live

        live.ensure_running(ctx)
    perform(solve_plan(s, number), ctx, dry_run)


@labtask(positional=["n"], help={"n": N_HELP, "fresh": "ignore an existing section snapshot and build the state again",
                                 "dry_run": DRY_RUN_HELP})
def start(c, n=None, fresh=False, dry_run=False):
    """Bring the VM to the start of section N (sections 1..N-1 done): restore snapshot section-N, or build it and save one."""
    from labkit.steps import perform
    from labkit.student import snapshots
    from labkit.student.actions import start_plan
    from labkit.student.sections import want_for

    number = _number(n, "start", c)
    s = settings(c)
    plan, restores = start_plan(s, number, fresh)
    if not perform(plan, _context(s), dry_run):
        return
    _show_commands(want_for(s), number)
    saved = "" if restores else f" (saved as snapshot {snapshots.name(number)})"
    ui.say(f"The VM is at the start of section {number}{saved}. When you are done: invoke section.check {number}")


def _show_commands(want, number: int) -> None:
    """Section N's commands as the student types them on this VM (student/commands.py), one per line."""
    from labkit.student import commands

    for line in commands.lines(number, want):
        ui.say(line)


@labtask(positional=["n"], help={"n": N_HELP})
def show(c, n=None):
    """Print section N's commands as you type them in this VM, with this VM's substitutions (changes nothing)."""
    from labkit.student.sections import want_for

    number = _number(n, "show", c)
    _show_commands(want_for(settings(c)), number)
    ui.say(f"When you are done: invoke section.check {number}")
