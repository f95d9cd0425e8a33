"""section.*: the lab done by hand, section by section (1-8, the lab's numbering): start, check, solve, progress."""
from __future__ import annotations

import json as jsonlib

from labkit import ui
from labkit.errors import LabkitError
from labkit.tasks._common import labtask, settings, vagrant_for

N_HELP = "the lab's section number, 1-8"


def _number(n, task: str, c=None) -> int:
    if str(n).strip() in ("-h", "--help"):
        # The section number is positional (invoke section.check 2), and Invoke hands a positional
        # argument whatever comes next, --help included: show the help Invoke would have shown.
        import subprocess
        import sys

        from invoke import Exit

        from labkit.tasks._common import project_root

        code = subprocess.call([sys.executable, "-m", "invoke", "--help", f"section.{task}"], cwd=project_root(c))
        raise Exit(code=code)
    if n is None:
        raise LabkitError("which section? none given", "give its number, like: invoke section.check 2")
    text = str(n).strip()
    if not text.isdigit() or not 1 <= int(text) <= 8:
        raise LabkitError(f"'{n}' is not a section of the lab", "give a number from 1 to 8")
    return int(text)


class _Lab:
    """The live lab as the section tasks see it: settings, Vagrant, the master over SSH."""

    def __init__(self, c):
        from labkit.student.sections import want_for

        self.c = c
        self.s = settings(c)
        self.vg = vagrant_for(self.s)
        self.master = self.s.master
        self.want = want_for(self.s)
        self._node = None

    @property
    def node(self):
        if self._node is None:
            from labkit.backends import get_backend

            self._node = get_backend(f"node:{self.master.name}", self.s)
        return self._node

    def running(self) -> bool:
        return self.vg.status(self.master.name) == "running"

    def laptop_kubeconfig(self) -> None:
        """verify reads the cluster from the laptop through the kubeconfig cluster.init exports. A
        cluster the student made with kubeadm init has none (or an old one): read the admin
        credentials from the VM instead, written 0600 and never shown."""
        from labkit.cluster import kubeadm, kubeconfig
        from labkit.cluster.node import ADMIN_CONF
        from labkit.fsutil import write_private
        from labkit.kube import kubeconfig_path

        admin = self.node.run(["sudo", "-n", "cat", ADMIN_CONF], timeout=30)
        if not admin.ok:
            return  # verify then says what is missing
        text = kubeconfig.for_laptop(admin.stdout, kubeadm.api_server_url(self.master))
        path = kubeconfig_path(self.s)
        if not (path.is_file() and path.read_text(encoding="utf-8") == text):
            write_private(path, text)
            ui.say(f"Read the cluster's admin credentials from the VM ({ADMIN_CONF}) into {path} (0600, not shown).")

    def verify_results(self) -> tuple:
        """verify's results and the API snapshot they were judged from (student/labnext.py reads both)."""
        from labkit.verify import from_api, run_lab, where_for
        from labkit.verify.model import Lab

        self.laptop_kubeconfig()
        lab = Lab.from_settings(self.s)
        where = where_for(self.s)
        try:
            snap = from_api.fetch(self.s, lab)
            return run_lab(lab, snap, where), snap
        finally:
            where.node.close()

    def evaluate(self, upto: int):
        from labkit.student import progress

        state = self.vg.status(self.master.name)
        if state == "not_created":
            raise LabkitError(f"the VM {self.master.name} does not exist", "create it for the lab by hand: invoke section.start 1")
        if state != "running":  # stopped or saved: vm.up starts it where it was (section.start 1 would start over)
            raise LabkitError(f"the VM {self.master.name} is not running ({state})", "start it where it was: invoke vm.up")
        return progress.evaluate(upto, self.node, self.want, self.verify_results)

    def close(self) -> None:
        if self._node is not None:
            self._node.close()


def _show_section(state) -> None:
    """Each check run, passed or failed (the cause of a failure follows the table, in full)."""
    marks = ui.marks()
    mark = {"pass": marks["ok"], "warn": marks["ok"], "fail": marks["failed"], "skip": marks["skipped"]}
    rows = [[o.check.title, mark[o.status]] for o in state.outcomes]
    ui.table(f"Section {state.number}: {state.title}", ["check", "result"], rows)


def _states(c, upto: int):
    """Sections 1..upto judged on the live lab (one SSH connection, closed after)."""
    lab = _Lab(c)
    try:
        states = lab.evaluate(upto)
    finally:
        lab.close()
    from labkit.room.client import send  # to the instructor's room, if this laptop joined one (class.join)
    from labkit.student.progress import as_json
    from labkit.tasks._common import project_root
    send(project_root(c), "progress", as_json(states, lab.master.name))
    return lab, states


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

    lab, states = _states(c, 8)
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
        write_atomic(__import__("pathlib").Path(json), jsonlib.dumps(prog.as_json(states, lab.master.name), indent=2) + "\n")
        ui.say(f"Progress written to {json}")


def _solve_one(lab: _Lab, number: int) -> None:
    from labkit.student.sections import SECTIONS

    sec = SECTIONS[number]
    how = sec.solve
    with ui.step(f"Solving section {number}: {sec.title} ({how.describe()})") as st:
        if how.node:
            res = lab.node.run(["sudo", "-n", "sh", "-c", how.node(lab.want)], timeout=300)
            if not res.ok:
                raise LabkitError(f"section {number}'s commands failed on the VM: {(res.stderr or res.stdout).strip()[-200:]}",
                                  f"run invoke section.check {number} to see the cause")
        elif how.provision:
            lab.vg.stream(st, "provision", lab.master.name, "--provision-with", how.provision)
        else:
            from labkit.tasks import app, cluster

            {"cluster.init": cluster.init, "app.deploy": app.deploy}[how.task](lab.c)


def _solve_through(lab: _Lab, number: int, say_done: bool) -> None:
    """Solve every section up to `number` that is not done yet, in order."""
    from labkit.student.progress import DONE

    first = 1
    while first <= number:
        states = lab.evaluate(number)
        todo = next((st for st in states[first - 1:] if st.status != DONE), None)
        if todo is None:
            break
        if say_done:
            for st in states[first - 1:todo.number - 1]:
                with ui.step(f"Section {st.number}: {st.title}") as step:
                    step.skip("already done")
        _solve_one(lab, todo.number)
        after = lab.evaluate(todo.number)[-1]
        if after.status != DONE:
            f = after.failure
            raise LabkitError(f"section {todo.number} is still not done after solving it: {f.result.cause}",
                              f.result.fix)
        first = todo.number + 1


@labtask(positional=["n"], help={"n": N_HELP})
def solve(c, n=None):
    """Let the kit do section N the way the lab does it (and any earlier section not done yet). A no-op if done."""
    number = _number(n, "solve", c)
    lab = _Lab(c)
    try:
        states = lab.evaluate(number)
        if states[-1].status == "done":
            with ui.step(f"Section {number}: {states[-1].title}") as st:
                st.skip("already done: nothing to solve")
            return
        _solve_through(lab, number, say_done=False)
    finally:
        lab.close()


@labtask(positional=["n"], help={"n": N_HELP, "fresh": "ignore an existing section snapshot and build the state again"})
def start(c, n=None, fresh=False):
    """Bring the VM to the start of section N (sections 1..N-1 done): restore snapshot section-N, or build it and save one."""
    from labkit.student import snapshots
    from labkit.tasks import vm

    number = _number(n, "start", c)
    lab = _Lab(c)
    name = snapshots.name(number)
    try:
        state = lab.vg.status(lab.master.name)
        if state != "not_created" and not fresh and name in lab.vg.snapshots(lab.master.name):
            why = snapshots.refusal(lab.s, number)
            if why:
                raise LabkitError(why, f"delete it (invoke vm.snapshot --delete {name}), then invoke section.start "
                                       f"{number} builds it again")
            vm.snapshot(c, restore=name)
            _show_commands(lab.want, number)
            ui.say(f"The VM is at the start of section {number}. When you are done: invoke section.check {number}")
            return
        if state == "not_created":
            _create_student_vm(lab)
        elif state != "running":
            vm._forget_ssh(lab.s, lab.master.name)  # its address and port may change across boots
            with ui.step(f"Starting VM {lab.master.name}") as st:
                lab.vg.stream(st, "up", lab.master.name, "--no-provision")
        if number > 1:
            _solve_through(lab, number - 1, say_done=True)
        if number <= 4 and lab.evaluate(number)[-1].status == "done":
            ui.warn(f"section {number} is already done on this VM (the kit's full provisioning does sections 1-2): "
                    f"for a VM at its start, invoke vm.destroy, then invoke section.start {number}")
        _prepare_vm(lab)
        lab.close()
        vm.snapshot(c, save=name)
        snapshots.record(lab.s, number)
        _show_commands(lab.want, number)
        ui.say(f"The VM is at the start of section {number} (saved as snapshot {name}). "
               f"When you are done: invoke section.check {number}")
    finally:
        lab.close()


def _prepare_vm(lab: _Lab) -> None:
    """What the kit puts on a student's VM besides the lab (student/workdir.py): left alone if there."""
    from labkit.student import workdir

    for title, put, fix in workdir.preparations(lab.node, lab.s, lab.want):
        with ui.step(title) as st:
            res = put()
            if not res.ok:
                raise LabkitError(f"{title} failed on the VM: {(res.stderr or res.stdout).strip()[-200:]}", fix)
            if "kept" in res.stdout:
                st.skip("already there (left as it is)")


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


def _create_student_vm(lab: _Lab) -> None:
    """A new VM provisioned up to the local repository: the lab's sections 1-2 are left to the student."""
    from labkit.tasks import vm

    steps = list(lab.s.data["provision"])
    before = steps[:steps.index("kubernetes")] if "kubernetes" in steps else steps
    vm.preflight(lab.s, lab.vg, [lab.master])
    vm.ensure_box(lab.s, lab.vg)
    lab.s.bundle_dir.mkdir(parents=True, exist_ok=True)
    provisioning = ["--provision-with", ",".join(before)] if before else ["--no-provision"]
    vm._forget_ssh(lab.s, lab.master.name)  # facts of an earlier VM of this name
    with ui.step(f"Creating VM {lab.master.name} for the lab by hand (provisioning: {', '.join(before) or 'none'})") as st:
        lab.vg.stream(st, "up", lab.master.name, f"--provider={lab.s.provider}", *provisioning)
