"""verify's probes against a real miniature pod network (network namespaces), fault by fault.

The API's answers are the lab transcript's (tests/support/transcript.py), changed the way the cluster
itself would show each fault; packets, DNS, HTTP and the inventory service are real. For every fault,
verify must flag exactly the affected checks with the right hint, show the checks standing on a failed
one as skipped, and (proof that skipping hides nothing) each skipped probe, run anyway, must fail.
"""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import transcript as tx
from labkit import settings as settings_mod
from labkit.backends import Netns
from labkit.verify import run_lab
from labkit.checks import FAIL, PASS, SKIP
from labkit.verify.model import Lab
from labkit.verify.plan import Where
from tests.support.podnet import BusyboxNetns, PodNetwork, running
from tests.support.faults import FAULTS, INV_CLIENT_B, INV_NODE_A, INV_NODE_B

pytestmark = pytest.mark.t1


@pytest.fixture(scope="module")
def lab(repo) -> Lab:
    return Lab.from_settings(settings_mod.load(repo, {}))


@pytest.fixture(scope="module")
def net(repo, lab, tmp_path_factory):
    pods = {"coredns": ("coredns-5c98db65d4-jklpz", tx.COREDNS["coredns-5c98db65d4-jklpz"]),
            "web": ("web", tx.WEB_IP), "client": ("client", tx.CLIENT_IP),
            "inv-a": (tx.INV_A, tx.INV_A_IP), "inv-b": (tx.INV_B, tx.INV_B_IP)}
    with running(PodNetwork(uuid.uuid4().hex[:6], tmp_path_factory.mktemp("podnet"), repo, lab, pods,
                            tx.SERVICE_IP)) as network:
        yield network


@pytest.fixture
def where(net) -> Where:
    return Where(node=Netns(net.node), client=BusyboxNetns(net.ns("client")))


def verdict(results) -> dict:
    return {r.check.id: r for r in results}


def not_passed(results) -> dict:
    return {r.check.id: r for r in results if r.status != PASS}


# --- the healthy lab ----------------------------------------------------------------------------

def test_healthy_lab_passes_every_check(lab, net, where):
    results = run_lab(lab, tx.snapshot(), where)
    assert not_passed(results) == {}, {k: r.result for k, r in not_passed(results).items()}
    got = verdict(results)
    # Values verify read from the real network, not from the API answers.
    assert got["net.route"].result.detail.startswith("10.32.0.0/12 dev weave proto kernel scope link src 10.32.0.1")
    assert got["dns.resolvconf"].result.detail.startswith("nameserver 10.96.0.10; search default.svc.cluster.local")
    assert got["dns.lookup"].result.detail == "inv.default.svc.cluster.local → 10.103.51.48 (server 10.96.0.10)"
    assert got[INV_NODE_A].result.detail == '{"version":"0.1"}'
    assert "not resolved" in got["svc.node.name"].result.detail
    # Both replicas, named by the header the real service adds (their hostnames are the pod names).
    lb = got["svc.lb"].result.detail
    assert tx.INV_A in lb and tx.INV_B in lb and lb.startswith("20 requests")
    print(f"\nhealthy run: {len(results)} checks in {max(r.seconds for r in results):.2f}s (slowest check)")


def test_section_selection_runs_the_section_and_its_prerequisites(lab, net, where):
    results = run_lab(lab, tx.snapshot(), where, section=7)
    ids = {r.check.id for r in results}
    assert {"deploy.available", INV_NODE_A, INV_NODE_B, f"inv.client.{tx.INV_A}", INV_CLIENT_B} <= ids
    assert {"api", "node.ssh", "net.route", "client.exec"} <= ids  # what section 7 stands on
    assert not ids & {"svc.lb", "dns.lookup", "web.node", "coredns"}
    assert all(r.status == PASS for r in results)


# --- faults -------------------------------------------------------------------------------------


# Each fault is injected inside its `try`, so that a half-done injection is undone too.


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_flagged_exactly(name, lab, net, where):
    fault = FAULTS[name]
    with fault.inject(net):
        snap = fault.api(tx.snapshot())
        results = run_lab(lab, snap, where)
        flagged = not_passed(results)
        described = {k: (r.status, r.result.detail, r.result.key) for k, r in flagged.items()}

        assert {k for k, r in flagged.items() if r.status == FAIL} == set(fault.failed), described
        assert {k for k, r in flagged.items() if r.status == SKIP} == set(fault.skipped), described
        for cid, key in fault.failed.items():
            assert flagged[cid].result.key == key, described[cid]
            hint = flagged[cid].result
            assert hint.fix and not re.search(r"\{\w+\?\}", hint.cause + hint.fix), hint  # filled, with a command
        by_title = {r.check.id: r.check.title for r in results}
        for cid, blocker in fault.skipped.items():
            outcome = flagged[cid].result
            assert outcome.blocked_by == blocker, described[cid]
            assert by_title[blocker] in outcome.detail, described[cid]

        # Skipping hid nothing that works: every skipped probe, run anyway, fails for real.
        checks = {r.check.id: r.check for r in results}
        with ThreadPoolExecutor(max_workers=max(len(fault.skipped), 1)) as pool:
            forced = dict(zip(fault.skipped, pool.map(lambda cid: checks[cid].run(3), fault.skipped)))
        assert {cid: o.status for cid, o in forced.items()} == {cid: FAIL for cid in fault.skipped}, forced
        # ...each with the hint the fault is known to cause (a changed failure mode shows here).
        assert {cid: o.key for cid, o in forced.items()} == fault.forced, {
            cid: (o.detail, o.key) for cid, o in forced.items()}
    print(f"\n{name}: failed {sorted(fault.failed)}, skipped {len(fault.skipped)}")


def test_network_is_healthy_again_after_the_faults(lab, net, where):
    """The faults above were undone: the fixture's network is back to a fully passing lab."""
    assert not_passed(run_lab(lab, tx.snapshot(), where)) == {}
