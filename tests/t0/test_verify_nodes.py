"""verify with workers: the cross-node checks decided on the API's and weave's real output formats."""
import copy

import pytest

from tests import multinode_cluster as mc
from tests import verify_transcript as tx
from labkit import settings as settings_mod
from labkit.backends import Local, CommandResult
from labkit.checks import FAIL, PASS, SKIP, WARN
from labkit.verify import plan, report, run_lab
from labkit.verify import run as verify_run
from labkit.verify.checks import Inputs, multinode, s3
from labkit.verify.model import Lab


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, mc.ENV))


@pytest.fixture(scope="module")
def single(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


def res(code=0, out="", err=""):
    return CommandResult(code, out, err, 0.1)


def where():
    return plan.Where(node=Local(name="node"), client=Local(name="client"), nodes={mc.WORKER: Local(name="w")})


def by_id(lab, snap):
    return {c.id: c for c in plan.build(lab, snap, where())}


def test_settings_reach_the_lab_values(lab, single):
    assert lab.nodes == ((mc.MASTER, mc.MASTER_IP, "master"), (mc.WORKER, mc.WORKER_IP, "worker"))
    assert lab.master_runs_pods is False and single.master_runs_pods is True


def test_a_single_node_gets_no_node_checks_and_keeps_its_checklist(single):
    ids = set(by_id(single, tx.snapshot()))
    assert not {i for i in ids if i.startswith(("node.ip.", "weave.", "xnode.", "dns.ubuntu", "svc.nodes"))}
    assert multinode.checks(Inputs(single, tx.snapshot(), where())) == []


def test_every_node_gets_its_checks_with_prerequisites_that_come_first(lab):
    checks = plan.build(lab, mc.snapshot(), where())
    ids = [c.id for c in checks]
    for cid in ("node.ssh.worker-1", "node.ready.worker-1", "node.ip.ubuntu", "node.ip.worker-1", "weave.ubuntu",
                "weave.worker-1", "weave.peers.ubuntu", "weave.peers.worker-1", "xnode.ubuntu.worker-1",
                "xnode.worker-1.ubuntu", "dns.worker-1", "svc.nodes"):
        assert cid in ids
    assert len(set(ids)) == len(ids)
    position = {c: i for i, c in enumerate(ids)}
    for c in checks:
        for need in c.needs:
            assert position[need] < position[c.id], (c.id, need)


def test_the_taint_must_stay_with_workers_and_go_without(lab, single):
    with_workers = run_lab(lab, mc.snapshot(), where(), section=3)
    taint = {r.check.id: r for r in with_workers}["node.taint"]
    assert (taint.status, taint.check.title) == (PASS, "master taint kept (workers run the pods)")
    untainted = s3.master_kept(lab, mc.snapshot(tainted=False))
    assert untainted.status == FAIL and untainted.key == "master-untainted"
    assert "kubectl taint nodes ubuntu node-role.kubernetes.io/master=:NoSchedule" in untainted.fix
    # the single-node lab still wants it removed
    assert {r.check.id: r for r in run_lab(single, tx.snapshot(), where(), section=3)}["node.taint"].status == PASS


def test_a_worker_on_the_nat_address_is_named_with_its_fix(lab):
    snap = mc.snapshot()
    snap.nodes[1]["status"]["addresses"][0]["address"] = mc.NAT_IP
    out = multinode.node_ip(mc.WORKER, mc.WORKER_IP)(lab, snap)
    assert out.status == FAIL and out.detail == "InternalIP 10.0.2.15, not 192.168.56.11"
    assert out.key == "node-ip-wrong" and "worker-1" in out.cause
    assert out.fix.startswith("invoke vm.provision --node worker-1 --step kubernetes")
    assert multinode.node_ip(mc.MASTER, mc.MASTER_IP)(lab, snap).status == PASS


def test_a_worker_that_never_joined_or_is_not_ready(lab):
    snap = mc.snapshot()
    snap.nodes = snap.nodes[:1]
    missing = multinode.worker_ready(mc.WORKER)(lab, snap)
    assert missing.key == "worker-missing" and missing.fix == "invoke cluster.join --node worker-1"
    assert missing.detail == "no node worker-1 (registered: ubuntu)"
    snap = mc.snapshot()
    ready = next(c for c in snap.nodes[1]["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status="False", reason="KubeletNotReady", message="PLEG is not healthy: pleg was last seen active 3m0s ago")
    down = multinode.worker_ready(mc.WORKER)(lab, snap)
    assert down.key == "worker-not-ready" and "--node worker-1" in down.fix and "PLEG" in down.cause
    assert multinode.worker_ready(mc.WORKER)(lab, mc.snapshot()).status == PASS


def test_weave_missing_or_not_ready_on_one_node(lab):
    snap = mc.snapshot()
    snap.pods["kube-system"] = [p for p in snap.pods["kube-system"] if p["metadata"]["name"] != "weave-net-7kq2d"]
    gone = multinode.weave_on(mc.WORKER)(lab, snap)
    assert gone.key == "weave-missing-on" and "worker-1" in gone.cause
    assert multinode.weave_on(mc.MASTER)(lab, snap).status == PASS
    snap = mc.snapshot()
    tx.crash(tx.find(snap, "kube-system", "weave-net-7kq2d"), "weave")
    bad = multinode.weave_on(mc.WORKER)(lab, snap)
    assert bad.key == "weave-not-ready-on" and "weave-net-7kq2d" in bad.fix and bad.detail.startswith(
        "weave-net-7kq2d 1/2")


PEERS = {mc.WORKER: mc.WORKER_IP}


def test_weave_connections_format_is_read_line_by_line():
    text = mc.weave_connections([mc.established(mc.WORKER_IP, mc.WORKER),
                                 mc.established(mc.MASTER_IP, mc.MASTER, outbound=False, mode="sleeve"),
                                 mc.failed("192.168.56.12", "dial tcp4 :0->192.168.56.12:6783: connect: no route to host")])
    conns = multinode.weave_connections(text)
    assert [(c.outbound, c.host, c.state) for c in conns] == [
        (True, mc.WORKER_IP, "established"), (False, mc.MASTER_IP, "established"), (True, "192.168.56.12", "failed")]
    assert conns[1].address == "192.168.56.10:44962" and conns[1].info.startswith("sleeve")
    assert conns[2].info.startswith("dial tcp4 :0->192.168.56.12:6783: connect: no route to host, retry: ")


def test_peers_connected_or_named_when_not(lab):
    ok = multinode.decide_peers(res(out=mc.weave_connections([mc.established(mc.WORKER_IP, mc.WORKER)])), lab,
                            mc.MASTER, PEERS)
    assert ok.status == PASS and ok.detail == "established to worker-1 fastdp"
    refused = "dial tcp4 :0->192.168.56.11:6783: connect: connection refused"
    down = multinode.decide_peers(res(out=mc.weave_connections([mc.failed(mc.WORKER_IP, refused)])), lab, mc.MASTER, PEERS)
    assert down.status == FAIL and down.key == "weave-peer-down"
    assert "worker-1 (192.168.56.11)" in down.cause and "connection refused" in down.cause
    assert "TCP 6783 and UDP 6783-6784" in down.cause and "--node ubuntu" in down.fix
    # an inbound connection from the peer counts too (its port is ephemeral); nothing at all is named
    inbound = mc.weave_connections([mc.established(mc.WORKER_IP, mc.WORKER, outbound=False)])
    assert multinode.decide_peers(res(out=inbound), lab, mc.MASTER, PEERS).status == PASS
    nothing = multinode.decide_peers(res(out=""), lab, mc.MASTER, PEERS)
    assert nothing.status == FAIL and "no connection at all" in nothing.cause
    # weave's router not listening: curl 7.47's words on the node
    closed = multinode.decide_peers(res(7, err="curl: (7) Failed to connect to 127.0.0.1 port 6784: Connection refused"),
                                lab, mc.WORKER, {mc.MASTER: mc.MASTER_IP})
    assert closed.key == "weave-status-unreadable" and "worker-1" in closed.cause


def test_cross_node_sources_and_targets_come_from_where_pods_run(lab):
    checks = by_id(lab, mc.snapshot())
    # the tainted master runs no lab pod: its side is probed from the node itself, over SSH
    from_master = checks["xnode.ubuntu.worker-1"]
    assert from_master.source == mc.MASTER and "node.ssh" in from_master.needs
    assert from_master.target == f"{mc.INV_B_IP}:8080"  # an inv replica on the worker (first by name)
    from_worker = checks["xnode.worker-1.ubuntu"]
    assert from_worker.source == "client" and from_worker.target == "10.32.0.2:8080"  # CoreDNS's health port
    assert {"weave.peers.ubuntu", "weave.peers.worker-1"} <= set(from_worker.needs)
    assert checks["dns.worker-1"].source == "client" and checks["dns.worker-1"].skip is None
    # one worker under a tainted master: the replicas cannot spread; a warning (verify still passes), not a skip
    spread = checks["svc.nodes"]
    assert spread.skip is None
    found = spread.run(5)
    assert found.status == "warn" and found.detail == "only 1 node can run the replicas"
    assert "LABKIT_WORKERS=2" in found.fix and found.ok


def test_cross_node_failure_names_both_nodes(lab):
    check = by_id(lab, mc.snapshot())["xnode.worker-1.ubuntu"]
    calls = []

    class Exec(Local):
        def run(self, argv, timeout=30, stdin=None):
            calls.append(argv)
            return res(1, err="wget: can't connect to remote host (10.32.0.2): No route to host")

    check_where = plan.Where(node=Exec(), client=Local(), nodes={mc.WORKER: Local()})
    check = {c.id: c for c in plan.build(lab, mc.snapshot(), check_where)}["xnode.worker-1.ubuntu"]
    out = check.run(5)
    assert calls[0][:5] == ["kubectl", "exec", "-n", "default", "client"]
    assert calls[0][-1] == "http://10.32.0.2:8080/health"
    assert out.key == "xnode-unreachable"
    assert "client on worker-1 cannot reach" in out.cause and "on ubuntu" in out.cause
    assert "--node worker-1" in out.fix


def test_dns_down_on_one_node_names_it(lab):
    down = multinode._dns(lab, mc.WORKER, "client", res(1, out=";; connection timed out; no servers could be reached\n"),
                      tx.SERVICE_IP)
    assert down.key == "dns-down-node" and "client on worker-1" in down.cause
    assert "spec.nodeName=worker-1" in down.fix
    good = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\nName:\tinv.default.svc.cluster.local\nAddress: 10.103.51.48\n"
    assert multinode._dns(lab, mc.WORKER, "client", res(out=good), tx.SERVICE_IP).status == PASS


def served(*names):
    return "".join(f"  HTTP/1.1 200 OK\n  Content-Length: 17\n  X-Served-By: {n}\n  \n" for n in names)


@pytest.fixture(scope="module")
def lab3(repo):
    return Lab.from_settings(settings_mod.load(repo, {"LABKIT_WORKERS": "2"}))


def spread_snapshot():
    """Two workers: the anti-affinity put one replica on each."""
    snap = mc.snapshot()
    third = copy.deepcopy(snap.nodes[1])
    third["metadata"]["name"] = third["metadata"]["labels"]["kubernetes.io/hostname"] = "worker-2"
    third["status"]["addresses"] = [{"type": "InternalIP", "address": "192.168.56.12"},
                                    {"type": "Hostname", "address": "worker-2"}]
    snap.nodes.append(third)
    tx.find(snap, "default", tx.INV_B)["spec"]["nodeName"] = "worker-2"
    return snap


def test_service_answered_from_both_nodes_or_the_silent_one_named(lab3):
    snap = spread_snapshot()
    assert multinode.schedulable(snap) == ["worker-1", "worker-2"]
    both = multinode.decide_spread(res(out=served(tx.INV_A, tx.INV_B, tx.INV_A)), lab3, snap, 3)
    assert both.status == PASS and both.detail == "3 requests answered from worker-1 ×2, worker-2 ×1"
    local = multinode.decide_spread(res(1, out=served(tx.INV_A, tx.INV_A) + "wget: download timed out\n"), lab3, snap, 3)
    assert local.status == FAIL and local.key == "svc-remote-silent"
    assert "never by those on worker-2" in local.cause and "--node worker-2" in local.fix
    together = multinode.decide_spread(res(out=served(tx.INV_A, tx.INV_B)), lab3, mc.snapshot(tainted=False), 2)
    # a healthy lab whose replicas share a node (the anti-affinity is only preferred): a warning with the fix
    assert together.status == WARN and together.detail == "every ready replica runs on worker-1"
    assert together.key == "svc-one-node" and "runs on worker-1" in together.cause
    assert "kubectl delete pod -l app=inv" in together.fix
    assert by_id(lab3, snap)["svc.nodes"].skip is None


def test_the_deployment_spreads_its_replicas_with_what_1_15_accepts(repo):
    import yaml

    deploy = yaml.safe_load((repo / "manifests" / "deploy.yaml").read_text())
    spec = deploy["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in spec  # 1.16+ only
    term = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]


def test_healthy_two_node_run_skips_nothing_and_only_warns_of_the_spread(lab):
    """Every node check passes on healthy answers; svc.nodes warns (nowhere to spread), and the run is ok."""
    weave = {mc.MASTER: mc.weave_connections([mc.established(mc.WORKER_IP, mc.WORKER)]),
             mc.WORKER: mc.weave_connections([mc.established(mc.MASTER_IP, mc.MASTER, outbound=False)])}

    class Node(Local):
        def __init__(self, name):
            super().__init__(name=name)
            self.node = name

        def run(self, argv, timeout=30, stdin=None):
            if argv[0] == "curl" and argv[-1] == multinode.WEAVE_CONNECTIONS_URL:
                return res(out=weave[self.node])
            if argv[0] == "curl":
                return res(out='{"version":"0.1"}')
            if argv[:2] == ["kubectl", "exec"] and "nslookup" in argv:
                return res(out="Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\nName:\tinv.default.svc.cluster.local\n"
                               "Address: 10.103.51.48\n")
            if argv[:2] == ["kubectl", "exec"] and "wget" in argv:
                return res(out="OK")
            return res()

    w = plan.Where(node=Node(mc.MASTER), client=Local(), nodes={mc.WORKER: Node(mc.WORKER)})
    # the node checks alone (the runner ignores prerequisites outside the list it is given)
    results = {r.check.id: r for r in verify_run(multinode.checks(Inputs(lab, mc.snapshot(), w)))}
    assert len(results) == 12
    assert {k: r.status for k, r in results.items() if r.status != PASS} == {"svc.nodes": WARN}
    assert report.all_passed(list(results.values()))


def test_readme_memory_per_node_count_is_doctors_rule(repo):
    """README's table, row by row, against doctor.check_memory at the stated limits (and just below)."""
    import re as re_mod

    from labkit import doctor
    from tests.t0.test_doctor import GIB, Laptop

    text = (repo / "README.md").read_text(encoding="utf-8")
    rows = re_mod.findall(r"^\| (\d) \| [^|]+ \| ([\d.]+) GiB \| ([\d.]+) GiB \|$", text, re_mod.M)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    mib = 1024 ** 2
    for count, installed, free in rows:
        s = settings_mod.load(repo, {"LABKIT_WORKERS": str(int(count) - 1)})
        total, avail = int(float(installed) * GIB), int(float(free) * GIB)
        assert doctor.check_memory(s, Laptop(total=total, available=avail)).status == doctor.OK
        assert doctor.check_memory(s, Laptop(total=total, available=avail - mib)).status == doctor.WARN
        assert doctor.check_memory(s, Laptop(total=total - mib, available=avail)).status == doctor.FAIL


def test_single_node_probes_that_cross_nodes_wait_for_weaves_peers(lab, single):
    checks = by_id(lab, mc.snapshot())
    peers = {f"weave.peers.{mc.MASTER}", f"weave.peers.{mc.WORKER}"}
    # the master curls pods on the worker; the client (worker) resolves through CoreDNS (master)
    for cid in ("web.node", f"inv.node.{tx.INV_A}", "svc.node.ip", "dns.lookup"):
        assert peers <= set(checks[cid].needs), cid
    # client and replicas share the worker: nothing crosses (a name lookup waits through dns.lookup)
    for cid in ("svc.lb", "web.client", f"inv.client.{tx.INV_B}", "svc.client.name"):
        assert not peers & set(checks[cid].needs), cid
    sections = [c.section for c in plan.build(lab, mc.snapshot(), where())]
    assert sections == sorted(sections)  # the node checks sit in their sections
    assert not any("weave.peers" in n for c in plan.build(single, tx.snapshot(), where()) for n in c.needs)


def test_replicas_sharing_a_node_are_a_warning_that_keeps_verify_passing(lab3):
    from labkit.checks import Checked
    from labkit.verify import report

    together = multinode.decide_spread(res(out=served(tx.INV_A, tx.INV_B)), lab3, mc.snapshot(tainted=False), 2)
    result = Checked(by_id(lab3, spread_snapshot())["svc.nodes"], together, 0.4)
    assert report.all_passed([result])
    assert report.summary_line([result], 1.0).startswith("1 checks: all pass, 1 with a warning in ")
    lines = report.hint_lines([result])
    assert lines[0].startswith("! warning: the Service is answered by replicas on different nodes")
    assert lines[-1].startswith("    fix:   ") and "kubectl delete pod -l app=inv" in lines[-1]
    assert report.rows([result])[0][3].endswith("warn: every ready replica runs on worker-1")
