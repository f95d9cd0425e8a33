"""T0: section.start and section.solve as plans: --dry-run prints exactly the steps a real run executes, a
student's VM comes up through vm.up's own steps, a snapshot is only ever saved at the start of its section, and
an existing one is restored without asking Vagrant anything first. The VM answers with the recorded outputs of
test_student_checks; Vagrant is test_vm_nodes' stand-in (VirtualBox cannot run here)."""
from __future__ import annotations

import json

import pytest
from invoke import Config, Context, Exit

from labkit import settings as settings_mod
from labkit import steps
from labkit.student import live, snapshots
from labkit.student.actions import section_steps
from labkit.student.actions.solve import CreateMissing
from labkit.tasks import section
from labkit.vm.actions import preflight
from tests import dryrun
from tests.t0.test_student_checks import DPKG_ALL, LINE, SECTION_1_DONE, WANT, Node, out
from tests.t0.test_vm_nodes import FakeVagrant, project  # noqa: F401 (fixture)

SECTION_1_TODO = {"test -f": out(""), "grep -hs": out("")}
SECTION_2_DONE = {**SECTION_1_DONE, "dpkg-query": out(DPKG_ALL), "systemctl is-enabled": out("enabled\n"),
                  "cat /proc/swaps": out("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"),
                  "sysctl -n": out("1\n1\n"), "ls /etc/kubernetes/manifests": out("")}
NOT_INSTALLED = out("", 1, "dpkg-query: no packages found matching kubelet\n")
VM_ID = "0f6f5f0e-5d1c-4c5e-9d57-1f0c8a1b2c3d"  # VirtualBox's VM UUID, as Vagrant keeps it in .vagrant/machines


class Master(Node):
    """The VM's master: section 1's own commands (the printf of the source line) make section 1 done."""

    def run(self, argv, timeout=30, stdin=None):
        if argv[-1].startswith("if [ -f "):  # student/workdir.py's preparations: written unless there
            self.asked.append(argv[-1])
            return out("written\n")
        if argv[-1].startswith("printf"):
            self.asked.append(argv[-1])
            self.answers.update(SECTION_1_DONE)
            return out("")
        return super().run(argv, timeout, stdin)


class Vagrant(FakeVagrant):
    """Counts the queries too: a restore must not start with `vagrant status` or `vagrant snapshot list`."""

    def __init__(self, states, snapshots=None):
        super().__init__(states, snapshots)
        self.queries, self.last_output = [], ""

    def status(self, node):
        self.queries.append(("status", node))
        return super().status(node)

    def snapshots(self, node):
        self.queries.append(("snapshot list", node))
        return super().snapshots(node)


def start_or_solve(project, monkeypatch, task, vagrant, master, **kwargs):
    if not (project / "inv").exists():  # what section.start copies to ~/trash-can/inv
        import shutil

        from tests.conftest import REPO

        shutil.copytree(REPO / "inv", project / "inv")
    monkeypatch.setattr(section, "_context", lambda s: steps.Context(
        s, 60, reach=lambda name: master, vm_state=vagrant.status, open_vagrant=lambda: vagrant))
    monkeypatch.setattr(live, "want_for", lambda s: WANT)
    monkeypatch.setattr(preflight, "preflight", lambda s, vg, nodes, log: {n.name: vg.status(n.name) for n in nodes})
    task(Context(Config(overrides={"labkit": {"root": str(project)}})), **kwargs)


def dry_and_real(project, monkeypatch, capsys, task, vagrant, master, **kwargs):
    start_or_solve(project, monkeypatch, task, vagrant, master, dry_run=True, **kwargs)
    dry = capsys.readouterr().out
    assert vagrant.calls == [] and master.asked == []  # the dry run changed and asked nothing
    start_or_solve(project, monkeypatch, task, vagrant, master, **kwargs)
    return dryrun.planned(dry), capsys.readouterr().out


def test_start_on_a_new_vm_comes_up_like_vm_up_solves_what_is_before_and_saves_the_snapshot(project, monkeypatch,
                                                                                             capsys):
    vagrant, master = Vagrant({"ubuntu": "not_created"}), Master(dict(SECTION_1_TODO, **{"dpkg-query": NOT_INSTALLED}))
    planned, ran = dry_and_real(project, monkeypatch, capsys, section.start, vagrant, master, n="2")
    assert planned == dryrun.ran(ran) == [
        "Checking prerequisites", "Adding box ubuntu/xenial64 from the bundle",
        "Creating VM ubuntu (virtualbox, ubuntu/xenial64, 192.168.56.10)",
        "Copying the bundle into ubuntu if its shared folder did not mount",  # vm.up's fallback: the same steps
        "Solving section 1: Install Kubernetes package support",
        "Checking that the VM is at the start of section 2",
        "Writing the kubelet's per-node flags (/etc/default/kubelet)", "Putting the inventory sources in ~vagrant/trash-can/inv",
        "Saving snapshot section-2 of ubuntu"]
    assert vagrant.calls == [("up", "ubuntu", "--provider=virtualbox", "--provision-with", "base,docker,aptrepo"),
                             ("snapshot", "save", "ubuntu", "section-2")]
    assert any(c.startswith("printf") for c in master.asked)
    assert "The VM is at the start of section 2 (saved as snapshot section-2)" in ran
    s = settings_mod.load(project, {})
    assert snapshots.refusal(s, 2) is None  # recorded with this bundle and these settings


def test_start_never_saves_a_state_past_the_start_of_its_section(project, monkeypatch, capsys):
    # a VM from vm.up: the kit's full provisioning did sections 1 and 2
    vagrant, master = Vagrant({"ubuntu": "running"}), Master(dict(SECTION_2_DONE))
    with pytest.raises(Exit) as refused:
        start_or_solve(project, monkeypatch, section.start, vagrant, master, n="2")
    assert "the VM is past the start of section 2: section 2 is already done" in str(refused.value.message)
    assert "invoke vm.destroy, then invoke section.start 2" in str(refused.value.message)
    assert vagrant.calls == [] and not snapshots.meta_file(settings_mod.load(project, {}), 2).exists()
    # ... and that advice does not loop: a new VM gets only base, docker, aptrepo, so section 2 is not done
    fresh = Master(dict(SECTION_1_TODO, **{"dpkg-query": NOT_INSTALLED}))
    start_or_solve(project, monkeypatch, section.start, Vagrant({"ubuntu": "not_created"}), fresh, n="2")
    assert "saved as snapshot section-2" in capsys.readouterr().out


def test_an_existing_section_snapshot_is_restored_without_asking_vagrant_first(project, monkeypatch, capsys):
    s = settings_mod.load(project, {})
    machine = project / ".vagrant" / "machines" / "ubuntu" / "virtualbox"
    machine.mkdir(parents=True)
    (machine / "id").write_text(VM_ID)
    snapshots.record(s, 3, machine=VM_ID)
    vagrant, master = Vagrant({"ubuntu": "running"}, {"ubuntu": ["section-3"]}), Master({})
    planned, ran = dry_and_real(project, monkeypatch, capsys, section.start, vagrant, master, n="3")
    assert planned == dryrun.ran(ran) == ["Restoring ubuntu to snapshot section-3"]
    assert vagrant.calls == [("snapshot", "restore", "--no-provision", "ubuntu", "section-3")]
    assert vagrant.queries == [] and master.asked == []
    # a record of another VM (destroyed and created again since) is not restored: the state is built
    meta = snapshots.meta_file(s, 3)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "machine": "an-older-vm"}))
    start_or_solve(project, monkeypatch, section.start, vagrant, master, dry_run=True, n="3")
    assert "Restoring" not in capsys.readouterr().out


def test_solve_skips_what_is_done_and_does_no_later_section(project, monkeypatch, capsys):
    vagrant, master = Vagrant({"ubuntu": "running"}), Master(dict(SECTION_1_TODO, **{"dpkg-query": NOT_INSTALLED}))
    planned, ran = dry_and_real(project, monkeypatch, capsys, section.solve, vagrant, master, n="1")
    assert planned == dryrun.ran(ran) == ["Solving section 1: Install Kubernetes package support"]
    assert vagrant.calls == [] and [c for c in master.asked if c.startswith("printf")] == [
        f"printf '%s\\n' '{LINE}' > /etc/apt/sources.list.d/kubernetes.list && apt-get update -qq "
        "-o Dir::Etc::SourceList=/etc/apt/sources.list.d/kubernetes.list -o Dir::Etc::SourceParts=/nonexistent "
        "-o APT::Get::List-Cleanup=0"]
    master.asked.clear()
    start_or_solve(project, monkeypatch, section.solve, vagrant, master, n="1")
    assert "already done" in capsys.readouterr().out and not any(c.startswith("printf") for c in master.asked)


@pytest.mark.parametrize("number, kinds", [(6, {"Pod"}), (7, {"Deployment"}), (8, {"Service"})])
def test_each_app_section_creates_only_its_own_objects(project, number, kinds):
    import shutil

    from tests.conftest import REPO

    for folder in ("manifests", "inv"):
        shutil.copytree(REPO / folder, project / folder)
    made = [st for st in section_steps(settings_mod.load(project, {}), number) if isinstance(st, CreateMissing)]
    assert len(made) == 1 and {o["kind"] for o in made[0].objs} == kinds


class Api:
    """The API server's answers for the lab's namespace (Kubernetes 1.15 cannot run here): what exists."""

    def __init__(self, existing):
        self.existing, self.created = existing, []

    def get(self, kind, namespace, name):
        return {"kind": kind, "metadata": {"name": name}} if (kind, name) in self.existing else None

    def create(self, namespace, obj):
        self.created.append((obj["kind"], obj["metadata"]["name"]))
        return obj


def test_a_pod_the_student_made_is_left_as_it_is(project, capsys):
    import shutil

    from tests.conftest import REPO

    for folder in ("manifests", "inv"):
        shutil.copytree(REPO / folder, project / folder)
    s = settings_mod.load(project, {})
    (pods,) = [st for st in section_steps(s, 6) if isinstance(st, CreateMissing)]
    api = Api({("Pod", "web")})  # `kubectl run web ...` typed by the student
    steps.run([pods], steps.Context(s, open_api=lambda: api))
    assert api.created == [("Pod", "client")]
    assert "pod/web exists: left as it is" in capsys.readouterr().out


# What Vagrant 2.3.4 prints for a snapshot that is not there (templates/locales/en.yml, snapshot_not_found).
NOT_FOUND = """The snapshot name `section-3` was not found for the
virtual machine `ubuntu`."""


def test_a_snapshot_deleted_behind_the_kits_back_is_one_line_and_the_next_start_builds_it(project, monkeypatch):
    from labkit.errors import LabkitError

    class Gone(Vagrant):
        def stream(self, step, *args):
            super().stream(step, *args)
            if args[:2] == ("snapshot", "restore"):
                self.last_output = NOT_FOUND
                raise LabkitError("vagrant snapshot failed: virtual machine `ubuntu`.", "read Vagrant's output above")

    s = settings_mod.load(project, {})
    machine = project / ".vagrant" / "machines" / "ubuntu" / "virtualbox"
    machine.mkdir(parents=True)
    (machine / "id").write_text(VM_ID)
    snapshots.record(s, 3, machine=VM_ID)
    with pytest.raises(Exit) as gone:
        start_or_solve(project, monkeypatch, section.start, Gone({"ubuntu": "running"}), Master({}), n="3")
    assert str(gone.value.message) == ("labkit: ubuntu has no snapshot section-3 any more (it was deleted since "
                                       "section.start saved it). Fix: run invoke section.start 3 again: it builds the "
                                       "state and saves section-3 anew")
    assert not snapshots.meta_file(s, 3).exists()
