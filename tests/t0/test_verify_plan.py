"""The checklist: the lab's sections, targets taken from the API, prerequisites that exist."""
import pytest

from tests import verify_transcript as tx
from labkit import settings as settings_mod
from labkit.backends import Backend, Local, Pod, CommandResult, Ssh
from labkit.errors import LabkitError
from labkit.vagrant import NodeDown
from labkit.checks import FAIL, PASS, SKIP
from labkit.verify import plan, run_lab, select, where_for
from labkit.verify import run as verify_run
from labkit.verify.model import SECTIONS, Lab
from tests.t0.test_verify_parse import LAB_RESOLV

ISSUE_CHECKS = {  # what issue 6 lists, by section
    3: {"api", "node.ready", "node.taint", "cp.etcd", "cp.kube-apiserver", "cp.kube-controller-manager",
        "cp.kube-scheduler", "cp.kube-proxy"},
    5: {"weave", "coredns", "net.route"},
    6: {"web.running", "web.node", "web.client"},
    7: {"deploy.available", f"inv.node.{tx.INV_A}", f"inv.node.{tx.INV_B}", f"inv.client.{tx.INV_A}",
        f"inv.client.{tx.INV_B}"},
    8: {"svc.ip", "svc.endpoints-match", "svc.client.name", "svc.client.fqdn", "dns.resolvconf", "svc.node.ip",
        "svc.node.name", "svc.lb"},
}


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


@pytest.fixture
def checks(lab):
    return plan.build(lab, tx.snapshot(), plan.Where(node=Local(name="node"), client=Local(name="client")))


def test_every_check_of_the_issue_is_planned_in_its_section(checks):
    sections = {c.id: c.section for c in checks}
    for section, ids in ISSUE_CHECKS.items():
        assert {i: sections.get(i) for i in ids} == {i: section for i in ids}
    assert set(sections.values()) == set(SECTIONS)
    assert len({c.id for c in checks}) == len(checks)


def test_each_check_is_declared_in_the_file_of_its_section(lab):
    """The plan is the section files concatenated: s3 … s8 declare only their section's checks."""
    from labkit.verify.checks import Inputs, s3, s5, s6, s7, s8

    x = Inputs(lab, tx.snapshot(), plan.Where(node=Local(), client=Local()))
    files = {3: s3, 5: s5, 6: s6, 7: s7, 8: s8}
    declared = {n: {c.id for c in f.checks(x)} for n, f in files.items()}
    assert all({c.section for c in f.checks(x)} == {n} for n, f in files.items())
    for section, ids in ISSUE_CHECKS.items():
        assert ids <= declared[section], section
    assert [c.id for c in plan.build(lab, tx.snapshot(), x.where)] == [i for f in files.values() for i in
                                                                       [c.id for c in f.checks(x)]]


def test_prerequisites_exist_and_come_first(checks):
    position = {c.id: i for i, c in enumerate(checks)}
    for c in checks:
        for need in c.needs:
            assert need in position, (c.id, need)
            assert position[need] < position[c.id], (c.id, need)


def test_targets_come_from_the_api_answers(checks):
    by_id = {c.id: c for c in checks}
    assert by_id["web.node"].target == "10.32.0.4:80"
    assert by_id[f"inv.client.{tx.INV_B}"].target == "10.32.0.7:8080"
    assert by_id["svc.node.ip"].target == "10.103.51.48:80"
    assert by_id["svc.lb"].target == "10.103.51.48:80 ×20"
    assert by_id["dns.lookup"].target == "inv.default.svc.cluster.local @10.96.0.10"
    assert (by_id["web.node"].source, by_id["web.client"].source) == ("ubuntu", "client")


def test_service_probes_stand_on_the_weave_route_but_pod_to_pod_does_not(checks):
    by_id = {c.id: c for c in checks}
    for cid in ("dns.lookup", "svc.client.name", "svc.client.fqdn", "svc.node.ip", "svc.lb", "web.node"):
        assert "net.route" in by_id[cid].needs, cid
    for cid in ("web.client", f"inv.client.{tx.INV_A}", "dns.resolvconf"):
        assert "net.route" not in by_id[cid].needs, cid


class Replay(Backend):
    """A node or pod that answers each command (by its program) with a recorded output; never runs anything."""

    def __init__(self, answers: dict):
        self.answers, self.ran = answers, []

    def run(self, argv, timeout=30, stdin=None) -> CommandResult:
        self.ran.append(argv[0])
        return self.answers[argv[0]]


def test_a_pod_that_is_not_ready_is_skipped_by_plan(lab):
    snap = tx.inv_pod_stopped(tx.snapshot())
    checks = plan.build(lab, snap, plan.Where(node=Local(), client=Local()))
    skips = {c.id: c.skip for c in checks if c.skip}
    assert skips == {f"inv.node.{tx.INV_B}": f"pod {tx.INV_B} is not Ready",
                     f"inv.client.{tx.INV_B}": f"pod {tx.INV_B} is not Ready"}


def test_probes_of_a_pod_that_is_not_ready_name_the_failed_deployment_check(lab):
    """They wait for deploy.available, whose hint says why the pod is not Ready; the Ready pod does not."""
    by_id = {c.id: c for c in plan.build(lab, tx.inv_pod_stopped(tx.snapshot()),
                                         plan.Where(node=Replay({}), client=Replay({})))}
    ids = ("deploy.available", f"inv.node.{tx.INV_B}", f"inv.client.{tx.INV_B}")
    results = {r.check.id: r for r in verify_run([by_id[i] for i in ids])}  # their other prerequisites left out
    assert results["deploy.available"].result.key == "crashloop"
    for cid in ids[1:]:
        out = results[cid].result
        assert (out.status, out.blocked_by) == (SKIP, "deploy.available"), cid
        assert out.detail == f"needs: can-inventory 2/2 available; pod {tx.INV_B} is not Ready"
    assert "deploy.available" not in by_id[f"inv.node.{tx.INV_A}"].needs


def test_resolv_conf_waits_for_the_kube_dns_service(lab):
    """Its expected nameserver is kube-dns's ClusterIP: without that Service there is nothing to compare with."""
    snap = tx.snapshot()
    snap.dns_service = None
    client = Replay({"true": CommandResult(0, "", "", 0.1), "cat": CommandResult(0, LAB_RESOLV, "", 0.1)})
    by_id = {c.id: c for c in plan.build(lab, snap, plan.Where(node=Replay({}), client=client))}
    results = {r.check.id: r for r in verify_run([by_id["dns.service"], by_id["dns.resolvconf"]])}
    assert results["dns.service"].result.key == "kube-dns-missing"
    assert results["dns.resolvconf"].result.blocked_by == "dns.service" and client.ran == []


def test_whole_plan_on_the_cluster_without_cni(lab):
    """Section 4 of the lab, everything run: one root for the missing network, one for the missing app."""
    node = Replay({"true": CommandResult(0, "", "", 0.1),
                   "curl": CommandResult(6, "", "curl: (6) Could not resolve host: inv\n", 0.1)})
    results = {r.check.id: r for r in run_lab(lab, tx.no_cni(tx.snapshot()), plan.Where(node=node,
                                                                                         client=Replay({})))}
    failed = {cid: r.result.key for cid, r in results.items() if r.status == FAIL}
    skipped = {cid: r.result.blocked_by for cid, r in results.items() if r.status == SKIP}
    assert failed == {"node.ready": "cni-missing", "svc.ip": "svc-missing"}
    assert skipped == {
        **dict.fromkeys(("weave", "coredns", "net.route", "web.running", "client.running", "client.exec", "web.node",
                         "web.client", "deploy.available", "inv.node", "inv.client", "dns.resolvconf", "dns.lookup",
                         "svc.client.name", "svc.client.fqdn"), "node.ready"),
        **dict.fromkeys(("svc.endpoints", "svc.endpoints-match", "svc.node.ip", "svc.lb"), "svc.ip")}
    assert {cid for cid, r in results.items() if r.status == PASS} == {
        "api", "node.ssh", "node.taint", "dns.service", "svc.node.name",
        *(f"cp.{c}" for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"))}
    assert sorted(node.ran) == ["curl", "true"]  # node.ssh and svc.node.name; nothing ran in the pod


def test_no_inv_pods_gives_one_placeholder_row_per_side(lab):
    checks = plan.build(lab, tx.no_cni(tx.snapshot()), plan.Where(node=Local(), client=Local()))
    by_id = {c.id: c for c in checks}
    assert by_id["inv.node"].skip and "deploy.available" in by_id["inv.node"].needs
    assert by_id["web.node"].skip == "pod web has no address"


def test_section_selection_keeps_what_the_section_stands_on(checks):
    picked = {c.id for c in select(checks, 8)}
    assert ISSUE_CHECKS[8] <= picked
    assert {"api", "node.ssh", "client.exec", "net.route", "deploy.available", "coredns"} <= picked
    assert not picked & {"web.node", "cp.etcd", f"inv.node.{tx.INV_A}"}
    assert {c.id for c in select(checks, 4)} == {c.id for c in select(checks, 3)}
    assert select(checks, None) == checks


def test_where_for_the_real_lab_is_the_node_and_kubectl_exec_through_it(repo):
    where = where_for(settings_mod.load(repo, {}))  # builds nothing yet: no VM needed
    assert where.node.name == "ubuntu"
    assert isinstance(where.client, Pod) and where.client.pod == "client" and where.client.via is where.node


def test_a_node_whose_facts_cannot_be_found_gives_a_one_line_ssh_failure():
    """What happens when Vagrant says the VM is down: a result, not an exception, and Vagrant asked once."""
    calls = []

    def vm_down(refresh):
        calls.append(refresh)
        raise NodeDown("ubuntu", "the VM is poweroff")

    node = Ssh("ubuntu", facts=vm_down)
    first, second = node.run(["true"], timeout=1), Pod(node, "client").run(["true"], timeout=1)
    assert (first.exit_code, first.stderr) == (
        255, "ssh to ubuntu failed: cannot reach ubuntu over SSH (the VM is poweroff). Fix: start the VM: invoke vm.up")
    assert second == CommandResult(255, "", first.stderr, second.seconds)
    assert calls == [False]  # tried once, remembered


