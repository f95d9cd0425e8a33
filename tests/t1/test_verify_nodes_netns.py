"""verify's cross-node probes against two real miniature nodes (network namespaces), fault by fault.

The API's answers are the two-node cluster of tests/support/multinode.py; packets, weave's peer
connections (a stand-in router reporting real TCP reachability in weave's format), DNS, HTTP and the
inventory service are real. For each fault verify must flag exactly the expected checks with hints
that name the node, and every check skipped behind a failed one must fail when run anyway.
"""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from tests.support import multinode as mc
from tests.support import transcript as tx
from labkit import settings as settings_mod
from labkit.backends import Netns
from labkit.verify import run_lab
from labkit.checks import FAIL, PASS, SKIP, WARN
from labkit.verify.model import Lab
from labkit.verify.plan import Where
from tests.support.podnet import BusyboxNetns, running
from tests.support.twonodes import TwoNodes

pytestmark = pytest.mark.t1

ROLES = {"coredns": "coredns-5c98db65d4-jklpz", "web": "web", "client": "client", "inv-a": tx.INV_A, "inv-b": tx.INV_B}
IPS = {"coredns": "10.32.0.2", "web": mc.WEB_IP, "client": mc.CLIENT_IP, "inv-a": mc.INV_A_IP, "inv-b": mc.INV_B_IP}
M, W = mc.MASTER, mc.WORKER


@pytest.fixture(scope="module")
def lab(repo) -> Lab:
    return Lab.from_settings(settings_mod.load(repo, mc.ENV))


@pytest.fixture(scope="module")
def net(repo, lab, tmp_path_factory):
    pods = {role: (name, IPS[role]) for role, name in ROLES.items()}
    placement = {role: "node" if role == "coredns" else "worker" for role in ROLES}
    with running(TwoNodes(uuid.uuid4().hex[:6], tmp_path_factory.mktemp("twonodes"), repo, lab, pods,
                          tx.SERVICE_IP, placement, {"node": M, "worker": W})) as network:
        yield network


@pytest.fixture
def where(net) -> Where:
    by_pod = {name: role for role, name in ROLES.items()}
    return Where(node=Netns(net.node), client=BusyboxNetns(net.ns("client")), nodes={W: Netns(net.worker)},
                 exec_in=lambda pod, namespace: BusyboxNetns(net.ns(by_pod[pod])))


def flagged(results) -> dict:
    return {r.check.id: r for r in results if r.status != PASS}


# One worker under a tainted master: the replicas have nowhere to spread; svc.nodes says so as a warning
# (verify passes), and is skipped only when a check it needs failed.
SPREAD = "svc.nodes"


def test_healthy_two_nodes_pass_every_check(lab, net, where):
    results = run_lab(lab, mc.snapshot(), where)
    assert {k: r.status for k, r in flagged(results).items()} == {SPREAD: WARN}, \
        {k: r.result for k, r in flagged(results).items()}
    got = {r.check.id: r.result.detail for r in results}
    assert got[f"weave.peers.{M}"] == f"established to {W} fastdp"
    assert got[f"weave.peers.{W}"] == f"established to {M} fastdp"
    assert got[f"xnode.{M}.{W}"] == '{"version":"0.1"}'  # the master node → an inv pod on the worker
    assert got[f"xnode.{W}.{M}"] == "OK"  # the client on the worker → CoreDNS's health port on the master
    assert got[f"dns.{W}"] == "inv.default.svc.cluster.local → 10.103.51.48 (server 10.96.0.10)"
    assert got[f"node.ip.{W}"] == f"InternalIP {mc.WORKER_IP}"


@contextmanager
def link_cut(net):
    try:
        for dev in ("eth1", "vx"):
            net.sh("ip", "-n", net.node, "link", "set", dev, "down")
        yield
    finally:
        for dev in ("eth1", "vx"):
            net.sh("ip", "-n", net.node, "link", "set", dev, "up")
        net.wait_http(mc.INV_A_IP, 8080)


@contextmanager
def worker_pods_cut_off(net):
    """The overlay between the bridges is gone, the host-only network is not: weave's peers stay connected
    (its control connection is TCP on the host-only network), but no pod packet crosses."""
    try:
        net.sh("ip", "-n", net.worker, "link", "set", "vx", "nomaster")
        yield
    finally:
        net.sh("ip", "-n", net.worker, "link", "set", "vx", "master", "weave", "up")
        net.wait_http(mc.INV_A_IP, 8080)


KUBE_DNS_RULES = [("-t", "nat", "{op}", "KUBE-SERVICES", "-d", "10.96.0.10/32", "-p", proto, "--dport", "53", "-j", "DNAT",
                   "--to-destination", "10.32.0.2:53") for proto in ("udp", "tcp")]


@contextmanager
def dns_down_on_worker(net):
    """kube-proxy on the worker lost its kube-dns rules: pods there get no DNS; the master's still work."""
    try:
        for rule in KUBE_DNS_RULES:
            net.iptables(*[a.format(op="-D") for a in rule], ns=net.worker)
        yield
    finally:
        for rule in KUBE_DNS_RULES:
            net.iptables(*[a.format(op="-I") for a in rule], ns=net.worker)
        net.wait_dns()


# Cross-node traffic the single-node checklist already probes (from the master node, whose pods are all on
# the worker here), with the hint each gives when the overlay itself fails.
FROM_MASTER = {"web.node": "pod-unreachable-node", f"inv.node.{tx.INV_A}": "pod-unreachable-node",
               f"inv.node.{tx.INV_B}": "pod-unreachable-node", "svc.node.ip": "service-unreachable"}
SERVICE_BY_NAME = ("svc.client.name", "svc.client.fqdn")
# DNS queries from the worker's pods are dropped, not refused: run anyway, wget is still waiting for a name
# when the probe's time is up, which reads as a Service that does not answer.
FORCED_BY_NAME = dict.fromkeys(SERVICE_BY_NAME, "service-unreachable")
# The client and both inv replicas share the worker: the balancing probe never leaves it and still passes.

FAULTS = {
    "host-only and overlay link cut": (  # one finding, both sides; every probe that crosses waits for it
        link_cut,
        {f"weave.peers.{M}": "weave-peer-down", f"weave.peers.{W}": "weave-peer-down"},
        {f"xnode.{M}.{W}": f"weave.peers.{M}", f"xnode.{W}.{M}": f"weave.peers.{W}",  # the source side first
         f"dns.{W}": f"weave.peers.{W}", "dns.lookup": f"weave.peers.{W}",
         **dict.fromkeys(SERVICE_BY_NAME, f"weave.peers.{W}"), **dict.fromkeys(FROM_MASTER, f"weave.peers.{M}")},
        {f"xnode.{M}.{W}": "xnode-unreachable", f"xnode.{W}.{M}": "xnode-unreachable", f"dns.{W}": "dns-down-node",
         "dns.lookup": "dns-down", **FROM_MASTER, **FORCED_BY_NAME}),
    "worker's pods cut off, weave peers still connected": (
        worker_pods_cut_off,
        {f"xnode.{M}.{W}": "xnode-unreachable", f"xnode.{W}.{M}": "xnode-unreachable", f"dns.{W}": "dns-down-node",
         "dns.lookup": "dns-down", **FROM_MASTER},
        dict.fromkeys(SERVICE_BY_NAME, "dns.lookup"),
        FORCED_BY_NAME),
    "DNS down on the worker only": (
        dns_down_on_worker,
        {f"dns.{W}": "dns-down-node", "dns.lookup": "dns-down"},
        dict.fromkeys(SERVICE_BY_NAME, "dns.lookup"),
        FORCED_BY_NAME),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_flagged_with_the_node_named(name, lab, net, where):
    inject, failed, skipped, forced = FAULTS[name]
    with inject(net):
        results = run_lab(lab, mc.snapshot(), where)
        got = flagged(results)
        described = {k: (r.status, r.result.detail, r.result.key) for k, r in got.items()}
        assert {k for k, r in got.items() if r.status == FAIL} == set(failed), described
        assert {k for k, r in got.items() if r.status == SKIP and k != SPREAD} == set(skipped), described
        # the spread check waits for weave's peers: blocked when they fail, else its warning as when healthy
        assert got[SPREAD].status == (SKIP if f"weave.peers.{W}" in failed else WARN), described[SPREAD]
        for cid, key in failed.items():
            hint = got[cid].result
            assert hint.key == key, described[cid]
            assert not re.search(r"\{\w+\?\}", hint.cause + hint.fix), hint
            if cid.startswith(("weave.peers.", "xnode.", "dns.worker")):
                assert W in hint.cause or M in hint.cause, hint  # the hint names the node
        for cid, blocker in skipped.items():
            assert got[cid].result.blocked_by == blocker, described[cid]
        # Skipping hid nothing that works: each skipped probe, run anyway, fails, with the expected hint.
        checks = {r.check.id: r.check for r in results}
        with ThreadPoolExecutor(max_workers=len(skipped)) as pool:
            ran = dict(zip(skipped, pool.map(lambda cid: checks[cid].run(4), skipped)))
        assert {cid: (o.status, o.key) for cid, o in ran.items()} == {
            cid: (FAIL, key) for cid, key in forced.items()}, {cid: o.detail for cid, o in ran.items()}
    print(f"\n{name}: failed {sorted(failed)}")


def test_the_nodes_are_healthy_again_after_the_faults(lab, net, where):
    assert {k: r.status for k, r in flagged(run_lab(lab, mc.snapshot(), where)).items()} == {SPREAD: WARN}
