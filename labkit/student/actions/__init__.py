"""The steps of section.solve and section.start (labkit.steps.Step); --dry-run prints the same list.

A section's solve is the bring-up of exactly that section (SECTION_STEPS): section 3 is kubeadm init, 4 the
kubeconfig and the taint, 5 Weave Net, 6 the two pods, 7 the image and the Deployment, 8 the Service; each
reuses the step cluster.init or app.deploy runs for it. section.start brings the VM up through vm.up's own
steps (labkit.vm.actions.up_plan), so a student's VM gets the same shared-folder fallback.
"""
from __future__ import annotations

from labkit import vagrant
from labkit.app import build as build_mod
from labkit.app import objects
from labkit.app.actions.image import BuildImage
from labkit.app.actions.wait import WaitRollout
from labkit.cluster.actions.api_wait import WaitForApi
from labkit.cluster.actions.kubeadm_init import KubeadmInit
from labkit.cluster.actions.kubeconfig import ExportKubeconfig
from labkit.cluster.actions.ready import WaitReady
from labkit.cluster.actions.taint import MasterTaint
from labkit.cluster.actions.weave import InstallWeave
from labkit.errors import LabkitError
from labkit.student import snapshots
from labkit.student.actions.solve import CreateMissing, Judge, RunLabCommands, SolveSection
from labkit.student.actions.start import AtStartOf, RestoreSection, SaveSection, preparations
from labkit.student.sections import SECTIONS
from labkit.vm.actions import Found, ProvisionNode, up_plan


def _objects(s, kind: str) -> list[dict]:
    """The lab's objects of one kind, as app.deploy would apply them (images from settings, the context digest)."""
    objs = objects.load(s, build_mod.images(s), build_mod.plan(s).digest)
    return [o for o in objs if o["kind"] == kind]


def _pods(s) -> list:
    pods = _objects(s, "Pod")
    return [CreateMissing(pods), WaitRollout(pods, build_mod.images(s))]


def _deployment(s) -> list:
    deploy, plan = _objects(s, "Deployment"), build_mod.plan(s)
    return [*(BuildImage(plan, n.name) for n in s.nodes), CreateMissing(deploy), WaitRollout(deploy, build_mod.images(s))]


# Sections the kit does with its own bring-up steps (sections.Solve.kit), each exactly that section.
SECTION_STEPS = {
    3: lambda s: [KubeadmInit(s)],
    4: lambda s: [ExportKubeconfig(s), MasterTaint(s)],
    5: lambda s: [WaitForApi(), InstallWeave(s), WaitReady()],
    6: _pods,
    7: _deployment,
    8: lambda s: [CreateMissing(_objects(s, "Service"))],
}


def section_steps(s, number: int) -> list:
    how = SECTIONS[number].solve
    if how.node:
        return [RunLabCommands(number)]
    if how.provision:
        return [ProvisionNode(s.master, how.provision)]
    return SECTION_STEPS[number](s)


def solve_plan(s, number: int) -> list:
    """Every section up to `number`, each skipped when done: earlier ones first, never a later one."""
    judge = Judge(number)
    return [SolveSection(k, section_steps(s, k), judge) for k in range(1, number + 1)]


def student_provisioning(s) -> list:
    """The provision steps a student's new VM gets: those before `kubernetes` (sections 1-2 are the student's)."""
    steps = list(s.data["provision"])
    return steps[:steps.index("kubernetes")] if "kubernetes" in steps else steps


def restorable(s, number: int) -> bool:
    """Does snapshot section-N of this very VM exist, by the record section.start wrote when it saved it?
    Read from files only (the record and Vagrant's machine id): no Vagrant start-up before the restore."""
    machine = vagrant.machine_id(s.root, s.master.name)
    if machine is None or snapshots.machine(s, number) != machine:
        return False
    why = snapshots.refusal(s, number)
    if why:
        name = snapshots.name(number)
        raise LabkitError(why, f"invoke section.start {number} --fresh builds {name} again (and saves over it)")
    return True


def start_plan(s, number: int, fresh: bool = False) -> tuple[list, bool]:
    """(plan, restores): restore snapshot section-N, or build the state and save it as section-N."""
    master = s.master
    if not fresh and restorable(s, number):
        return [RestoreSection(master, number)], True
    judge = Judge(number)
    return [*up_plan(s, [master], provision=student_provisioning(s)),
            *(SolveSection(k, section_steps(s, k), judge) for k in range(1, number)),
            AtStartOf(number, judge), *preparations(s), SaveSection(master, number, Found())], False
