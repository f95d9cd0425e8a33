"""The checklist: the lab's sections, targets taken from the API, prerequisites that exist."""
import pytest

from tests import verify_transcript as tx
from labkit import settings as settings_mod
from labkit.backends import Local, Pod, Result
from labkit.errors import LabkitError
from labkit.verify import Deferred, plan, select, where_for
from labkit.verify.model import SECTIONS, Lab

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


def test_a_pod_that_is_not_ready_is_skipped_by_plan(lab):
    snap = tx.inv_pod_stopped(tx.snapshot())
    checks = plan.build(lab, snap, plan.Where(node=Local(), client=Local()))
    skips = {c.id: c.skip for c in checks if c.skip}
    assert skips == {f"inv.node.{tx.INV_B}": f"pod {tx.INV_B} is not Ready",
                     f"inv.client.{tx.INV_B}": f"pod {tx.INV_B} is not Ready"}


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


def test_a_backend_that_cannot_be_made_gives_a_one_line_ssh_failure():
    """What happens when `vagrant ssh-config` fails because the VM is down: a result, not an exception."""
    calls = []

    def vm_down():
        calls.append(1)
        raise LabkitError("vagrant ssh-config failed: The VM is not running", "invoke vm.up")

    node = Deferred("ubuntu", vm_down)
    first, second = node.run(["true"], timeout=1), Pod(node, "client").run(["true"], timeout=1)
    assert (first.exit_code, first.stderr) == (255, "ssh to ubuntu failed: vagrant ssh-config failed: The VM is not running")
    assert second == Result(255, "", first.stderr, second.seconds)
    assert calls == [1]  # tried once, remembered


def test_a_deferred_backend_runs_through_the_real_one():
    node = Deferred("here", lambda: Local(name="here"))
    assert node.run(["echo", "hi"]).stdout == "hi\n"
