"""The lab's eight sections as data: what must be true after each, and how the kit does it.

    SECTIONS[n].checks  node commands (run with sudo over SSH) and the student/checks.py function
                        that reads their output, run as labkit.checks Checks (SectionCheck) in order,
                        each needing the one before; sections 5-8 use `invoke verify`'s checks
                        instead, told by student/labnext.py
    SECTIONS[n].solve   how the kit does the section: a command on the node, a provision step, or
                        the bring-up steps of exactly that section (labkit/student/actions/)

Section numbers and titles follow the lab (docs/student.md maps each to the lab's text).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from labkit import checks as model
from labkit.student import checks
from labkit.student.checks import Want

SOURCE_FILE = "/etc/apt/sources.list.d/kubernetes.list"
PACKAGES = ("kubelet", "kubeadm", "kubectl", "kubernetes-cni", "cri-tools")
ADMIN = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


@dataclass(frozen=True)
class NodeCheck:
    id: str
    title: str
    command: Callable[[Want], str]  # shell, run as root on the node
    decide: Callable  # (CommandResult, Want) -> Optional[checks.Result]: None when it passed


@dataclass(frozen=True)
class SectionCheck(model.Check):
    """A check of the lab by hand: labkit.checks.Check plus the lab's section it belongs to."""

    section: int = 0


@dataclass(frozen=True)
class Solve:
    """How the kit does a section: exactly one of `node` (shell as root), `provision` (a provision/
    step), `kit` (what the section's own bring-up steps do; the steps are in labkit/student/actions/)."""

    node: Optional[Callable[[Want], str]] = None
    provision: Optional[str] = None
    kit: Optional[str] = None

    def describe(self) -> str:
        if self.provision:
            return f"the kit's provision step '{self.provision}'"
        if self.kit:
            return f"the kit's steps: {self.kit}"
        return "the lab's commands, run by the kit on the VM"


@dataclass(frozen=True)
class Section:
    number: int
    title: str  # the lab's heading
    short: str  # for the progress table
    checks: tuple = ()  # NodeCheck...; empty: `invoke verify`'s checks of this section decide (student/labnext.py)
    solve: Solve = Solve()

    @property
    def uses_verify(self) -> bool:
        return not self.checks


def _local_update(want: Want) -> str:
    """Section 1 as the kit does it: the source line, then apt-get update of that source only."""
    return (f"printf '%s\\n' {shlex.quote(want.source_line)} > {SOURCE_FILE} && "
            f"apt-get update -qq -o Dir::Etc::SourceList={SOURCE_FILE} -o Dir::Etc::SourceParts=/nonexistent "
            "-o APT::Get::List-Cleanup=0")


SECTIONS = {s.number: s for s in (
    Section(1, "Install Kubernetes package support", "package source", (
        NodeCheck("repo", "local Kubernetes repository present",
                  lambda w: f"test -f {shlex.quote(w.repo_dir)}/dists/{shlex.quote(w.suite)}/Release", checks.repository),
        NodeCheck("source", "package source configured",
                  lambda w: "grep -Hs '^[[:space:]]*deb' /etc/apt/sources.list /etc/apt/sources.list.d/*.list; true",
                  checks.sources),
        NodeCheck("lists", "apt has read it (apt-get update)", lambda w: "apt-cache policy kubeadm", checks.candidate),
    ), Solve(node=_local_update)),
    Section(2, "Install kubeadm and other prereq packages", "packages", (
        NodeCheck("packages", "kubelet kubeadm kubectl kubernetes-cni cri-tools installed",
                  lambda w: "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' " + " ".join(PACKAGES),
                  checks.packages),
        NodeCheck("kubelet", "kubelet enabled", lambda w: "systemctl is-enabled kubelet", checks.kubelet_enabled),
        NodeCheck("swap", "swap off", lambda w: "cat /proc/swaps", checks.swap_off),
        NodeCheck("sysctl", "bridged traffic through iptables, IP forwarding",
                  lambda w: "sysctl -n " + " ".join(checks.SYSCTLS), checks.kernel_settings),
    ), Solve(provision="kubernetes")),
    Section(3, "Install and start the Kubernetes master components", "kubeadm init", (
        NodeCheck("manifests", "control plane manifests written", lambda w: "ls /etc/kubernetes/manifests",
                  checks.manifests),
        NodeCheck("static-pods", "control plane static pods running", lambda w: "docker ps --format '{{.Names}}'",
                  checks.static_pods),
        NodeCheck("node", "node registered", lambda w: f"{ADMIN} get nodes", checks.node_registered),
        NodeCheck("advertise", "API server advertises the host-only address",
                  lambda w: f"{ADMIN} get endpoints kubernetes -o jsonpath='{{.subsets[*].addresses[*].ip}}'",
                  checks.advertised),
        NodeCheck("address", "node registered at its host-only address",
                  lambda w: f"{ADMIN} get node {shlex.quote(w.node)} -o "
                            "jsonpath='{.status.addresses[?(@.type==\"InternalIP\")].address}'", checks.node_address),
    ), Solve(kit="kubeadm init")),
    Section(4, "Exploring the cluster", "kubectl, taint", (
        NodeCheck("kubeconfig", "kubectl configured for the VM user",
                  lambda w: f"stat -c '%U' ~{w.user}/.kube/config && (cmp -s /etc/kubernetes/admin.conf "
                            f"~{w.user}/.kube/config && echo same || echo differs)", checks.user_kubeconfig),
        NodeCheck("taint", "master taint removed",
                  lambda w: f"{ADMIN} get node {shlex.quote(w.node)} -o json", checks.untainted),
    ), Solve(kit="the VM user's kubeconfig, the master taint removed")),
    Section(5, "Enable networking and related features", "networking", (), Solve(kit="Weave Net from the bundle")),
    Section(6, "Run a container", "a pod", (), Solve(kit="the pods web and client, unless they exist")),
    Section(7, "Run a deployment", "a deployment", (),
            Solve(kit="the inv image, the Deployment unless it exists")),
    Section(8, "Run a service", "a service", (), Solve(kit="the Service, unless it exists")),
)}


def want_for(settings) -> Want:
    """The expected values, from settings and provision/files/kubernetes.list (the one source line)."""
    from labkit.app.build import images
    from labkit.cluster.actions.weave import guest_manifest

    line = (Path(settings.root) / "provision" / "files" / "kubernetes.list").read_text().strip()
    k8s = str(settings.versions["kubernetes"]).lstrip("v") + "-00"
    versions = {"kubelet": k8s, "kubeadm": k8s, "kubectl": k8s,
                "kubernetes-cni": f"{settings.versions['cni']}-00", "cri-tools": f"{settings.versions['crictl']}-00"}
    named = images(settings)
    return Want(source_line=line, versions=versions, node=settings.master.name, node_ip=settings.master.ip,
                weave_manifest=guest_manifest(settings),
                images={k: named[k] for k in ("web", "client", "inv", "inv_base")})


def node_check(chk: NodeCheck, node, want: Want, needs: tuple, section: int, timeout: float = 30) -> SectionCheck:
    def run(t: float) -> model.Result:
        res = node.run(["sudo", "-n", "sh", "-c", chk.command(want)], timeout=t)
        return chk.decide(res, want) or model.passed()
    return SectionCheck(chk.id, chk.title, run, needs=needs, timeout=timeout, section=section)


def run_node_checks(section: Section, node, want: Want, timeout: float = 30) -> list[model.Checked]:
    """Every check of a node-checked section (1-4), in order; each stands on the one before, so after
    the first failure the rest are skipped naming it: the student sees one cause, not a cascade."""
    planned, before = [], ()
    for chk in section.checks:
        planned.append(node_check(chk, node, want, before, section.number, timeout))
        before = (chk.id,)
    return model.run(planned, workers=1)
