"""The API-side checks on the lab transcript's cluster, healthy and as the cluster shows each fault."""
import copy
import re

import pytest

from tests import verify_transcript as tx
from labkit import settings as settings_mod
from labkit.kube import errors as kube_errors
from labkit.checks import FAIL, PASS
from labkit.verify import from_api
from labkit.verify.checks import s3, s5, s6, s7, s8
from labkit.verify.model import Lab

CHECKS = {
    "api": s3.api_reachable, "node.ready": s3.node_ready, "node.taint": s3.master_untainted,
    "weave": s5.weave_running, "coredns": s5.coredns_running, "dns.service": s5.kube_dns_service,
    "web.running": s6.pod_running("web"), "client.running": s6.pod_running("client"),
    "deploy.available": s7.deployment_available, "svc.ip": s8.service_ip,
    "svc.endpoints": s8.service_has_endpoints, "svc.endpoints-match": s8.endpoints_match_pods,
    **{f"cp.{c}": s3.component_running(c) for c in s3.CONTROL_PLANE + ("kube-proxy",)},
}


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


def decide(lab, snap):
    return {cid: check(lab, snap) for cid, check in CHECKS.items()}


def failures(lab, snap):
    out = {cid: o for cid, o in decide(lab, snap).items() if o.status != PASS}
    for o in out.values():  # every value a hint uses was filled in
        assert not re.search(r"\{\w+\?\}", o.cause + o.fix), o
    return {cid: o.key for cid, o in out.items()}


def test_lab_values_come_from_settings(lab):
    assert (lab.node, lab.node_ip, str(lab.pod_cidr), str(lab.service_cidr)) == \
        ("ubuntu", "192.168.56.10", "10.32.0.0/12", "10.96.0.0/12")
    assert lab.kube_dns_ip == "10.96.0.10"
    assert lab.inv_body == '{"version":"0.1"}'
    assert lab.service_fqdn == "inv.default.svc.cluster.local"


def test_settings_overrides_change_the_expectations(repo):
    lab = Lab.from_settings(settings_mod.load(repo, {"LABKIT_NETWORK__SERVICE_CIDR": "10.100.0.0/16",
                                                     "LABKIT_NETWORK__DNS_DOMAIN": "lab.local"}))
    assert lab.kube_dns_ip == "10.100.0.10" and lab.service_fqdn == "inv.default.svc.lab.local"
    out = s5.kube_dns_service(lab, tx.snapshot())  # the transcript's cluster has 10.96.0.10
    assert out.status == FAIL and out.key == "kube-dns-ip"


def test_healthy_transcript_passes_every_api_check(lab):
    got = decide(lab, tx.snapshot())
    assert {cid: o.status for cid, o in got.items() if o.status != PASS} == {}
    assert got["api"].detail == "v1.15.12"
    assert got["weave"].detail == "weave-net-xjfwm 2/2 Running"
    assert got["coredns"].detail == "2/2 Running"
    assert got["web.running"].detail == "Running at 10.32.0.4"
    assert got["svc.ip"].detail == "10.103.51.48:80 → 8080"
    assert got["svc.endpoints"].detail == "2 ready: 10.32.0.6:8080, 10.32.0.7:8080"
    assert got["dns.service"].detail == "10.96.0.10 (53/UDP,53/TCP,9153/TCP)"


def test_section_4_cluster_without_cni(lab):
    """The lab's own broken state: kubeadm init done, no Weave: NotReady, CoreDNS Pending.

    Each decision on its own; the plan runs weave and coredns only after node.ready (test_verify_plan)."""
    got = failures(lab, tx.no_cni(tx.snapshot()))
    assert got["node.ready"] == got["weave"] == "cni-missing"
    assert "node.taint" not in got  # the not-ready taint is not the master taint
    assert got["web.running"] == "not-deployed" and got["svc.ip"] == "svc-missing"
    assert got["svc.endpoints"] == "endpoints-no-pods"
    out = s3.node_ready(lab, tx.no_cni(tx.snapshot()))
    assert "NetworkPluginNotReady" in out.detail and out.fix == "invoke cluster.init (it applies Weave Net)"


def test_node_not_ready_while_weave_starts_names_weave(lab):
    """The transcript a moment after `kubectl apply` of Weave: weave-net-xjfwm 1/2, node still NotReady."""
    snap = tx.no_cni(tx.snapshot())
    snap.pods["kube-system"] += [tx.find(tx.snapshot(), "kube-system", "weave-net-xjfwm")]
    weave = tx.find(snap, "kube-system", "weave-net-xjfwm")
    for cond in weave["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady", message="containers with unready status: [weave]")
    weave["status"]["containerStatuses"][0].update(ready=False, state={"running": {"startedAt": tx.STARTED}})
    out = s3.node_ready(lab, snap)
    assert out.key == "weave-not-ready" and "-c weave" in out.fix


def test_master_taint_still_there(lab):
    snap = tx.snapshot()
    snap.nodes[0]["spec"]["taints"] = [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]
    out = s3.master_untainted(lab, snap)
    assert out.key == "master-taint"
    assert out.fix == 'invoke vm.ssh --command "kubectl taint nodes --all node-role.kubernetes.io/master-"'


def test_inv_pod_stopped_as_the_cluster_shows_it(lab):
    got = decide(lab, tx.inv_pod_stopped(tx.snapshot()))
    dep = got["deploy.available"]
    assert dep.status == FAIL and dep.key == "crashloop"
    assert dep.detail.startswith("1/2 available; can-inventory-756c87dc9f-b45ns: inv: CrashLoopBackOff")
    assert "kubectl logs can-inventory-756c87dc9f-b45ns --previous" in dep.fix
    # The endpoints follow the Ready pods: still exactly right.
    assert got["svc.endpoints-match"].status == PASS


def test_deployment_scaled_away_from_the_lab(lab):
    snap = tx.snapshot()
    snap.deployment["spec"]["replicas"] = 1
    snap.deployment["status"].update(replicas=1, readyReplicas=1, availableReplicas=1)
    out = s7.deployment_available(lab, snap)
    assert out.key == "deploy-replicas" and out.detail == "1/1 available; the lab runs 2"


def test_image_never_pulled(lab):
    snap = tx.snapshot()
    p = tx.find(snap, "default", tx.INV_A)
    p["status"]["phase"] = "Pending"
    p["status"]["containerStatuses"][0].update(ready=False, state={"waiting": {
        "reason": "ErrImageNeverPull", "message": 'Container image "trash-can/inv:0.1" is not present with pull '
                                                  'policy of Never'}})
    snap.deployment = tx.deployment(available=1)
    out = s7.deployment_available(lab, snap)
    assert out.key == "image-missing" and out.fix == "invoke app.build, then invoke app.deploy"
    web = tx.find(snap, "default", "web")
    web["status"]["phase"] = "Pending"
    web["status"]["containerStatuses"][0].update(ready=False, state={"waiting": {"reason": "ImagePullBackOff"}})
    out = s6.pod_running("web")(lab, snap)
    assert out.key == "image-missing" and out.fix.startswith("invoke vm.provision")


def test_pod_outside_the_pod_range(lab):
    snap = tx.snapshot()
    tx.find(snap, "default", "client")["status"]["podIP"] = "172.17.0.2"  # docker0: no CNI in use
    out = s6.pod_running("client")(lab, snap)
    assert out.key == "pod-ip-outside" and "172.17.0.2" in out.cause


def test_endpoints_problems(lab):
    assert failures(lab, tx.endpoint_missing(tx.snapshot())) == {"svc.endpoints-match": "endpoint-missing"}
    out = s8.endpoints_match_pods(lab, tx.endpoint_missing(tx.snapshot()))
    assert "can-inventory-756c87dc9f-b45ns (10.32.0.7:8080)" in out.detail

    extra = tx.snapshot()
    extra.endpoints = tx.endpoints(ready=[(tx.INV_A_IP, tx.INV_A), (tx.INV_B_IP, tx.INV_B), (tx.WEB_IP, "web")])
    assert failures(lab, extra) == {"svc.endpoints-match": "endpoint-extra"}

    wrong_port = tx.snapshot()
    wrong_port.endpoints["subsets"][0]["ports"] = [{"port": 80, "protocol": "TCP"}]
    assert failures(lab, wrong_port)["svc.endpoints-match"] == "svc-ports"

    none_ready = tx.snapshot()
    none_ready.endpoints = tx.endpoints(ready=[], not_ready=[(tx.INV_A_IP, tx.INV_A)])
    assert failures(lab, none_ready)["svc.endpoints"] == "endpoints-not-ready"


def test_service_ports_and_range(lab):
    snap = tx.snapshot()
    snap.service["spec"]["ports"] = [{"protocol": "TCP", "port": 8080, "targetPort": 8080}]
    out = s8.service_ip(lab, snap)
    assert out.key == "svc-ports" and "8080→8080" in out.detail
    snap = tx.snapshot()
    snap.service["spec"]["ports"][0]["targetPort"] = "8080"  # a string targetPort is the same port
    assert s8.service_ip(lab, snap).status == PASS
    snap.service["spec"]["clusterIP"] = "192.168.1.5"
    assert s8.service_ip(lab, snap).key == "svc-ip-outside"


def test_coredns_needs_both_replicas(lab):
    snap = tx.coredns_one_pod(tx.snapshot())
    out = s5.coredns_running(lab, snap)
    assert (out.status, out.detail, out.key) == (FAIL, "1/2 Running", "coredns-replicas")
    assert "only 1 of the 2 CoreDNS pods" in out.cause
    snap.coredns = None  # Deployment not readable: kubeadm's two
    assert s5.coredns_running(lab, snap).key == "coredns-replicas"


def test_coredns_pending_with_the_network_up(lab):
    """Weave 2/2 and the node Ready, CoreDNS not yet scheduled (the transcript's FailedScheduling events)."""
    snap = tx.snapshot()
    for name in tx.COREDNS:
        tx.unschedulable(tx.find(snap, "kube-system", name))
    out = s5.coredns_running(lab, snap)
    assert out.key == "coredns-pending" and tx.UNSCHEDULABLE in out.cause
    assert out.fix == 'invoke vm.ssh --command "kubectl -n kube-system describe pod -l k8s-app=kube-dns"'


def test_kube_dns_service_missing(lab):
    snap = tx.snapshot()
    snap.dns_service = None  # GET kube-system/services/kube-dns: 404
    out = s5.kube_dns_service(lab, snap)
    assert (out.detail, out.key, out.fix) == ("no Service kube-system/kube-dns", "kube-dns-missing",
                                                        "invoke cluster.init")


def test_pod_pending_and_pod_not_ready(lab):
    snap = tx.snapshot()
    tx.unschedulable(tx.find(snap, "default", "web"))
    out = s6.pod_running("web")(lab, snap)
    assert out.key == "pod-pending" and out.cause == f"web is Pending: {tx.UNSCHEDULABLE}"
    # inv's readiness probe failing: the container runs, never restarted, but is not Ready.
    snap = tx.snapshot()
    p = tx.find(snap, "default", tx.INV_B)
    for cond in p["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady", message="containers with unready status: [inv]")
    p["status"]["containerStatuses"][0]["ready"] = False
    snap.deployment = tx.deployment(available=1)
    out = s7.deployment_available(lab, snap)
    assert out.key == "pod-not-ready"
    assert out.cause == f"{tx.INV_B} is Running but not Ready (inv: Running, not ready)"


def test_service_selector_is_the_services_own(lab):
    """A mistyped selector (app: inventory) selects nothing although both inv pods are Ready."""
    snap = tx.selector_typo(tx.snapshot())
    out = s8.service_has_endpoints(lab, snap)
    assert out.key == "endpoints-no-pods" and "selector's labels app=inventory" in out.cause
    assert failures(lab, snap) == {"svc.endpoints": "endpoints-no-pods", "svc.endpoints-match": "endpoint-missing"}
    assert "the selector app=inventory" in s8.endpoints_match_pods(lab, snap).cause


def test_coredns_crash_loop_names_the_loop(lab):
    out = s5.coredns_running(lab, tx.coredns_crashing(tx.snapshot()))
    assert out.key == "coredns-crash" and "loop" in out.cause
    assert out.detail.startswith("0/2 ready; coredns-5c98db65d4-jklpz Running: coredns: CrashLoopBackOff")


def test_control_plane_component_down_or_missing(lab):
    snap = tx.snapshot()
    tx.crash(tx.find(snap, "kube-system", "kube-scheduler-ubuntu"), "kube-scheduler", exit_code=255)
    out = s3.component_running("kube-scheduler")(lab, snap)
    assert out.key == "component-down" and "kubectl -n kube-system logs kube-scheduler-ubuntu" in out.fix
    snap.pods["kube-system"] = [p for p in snap.pods["kube-system"] if "kube-proxy" not in p["metadata"]["name"]]
    assert s3.component_running("kube-proxy")(lab, snap).key == "component-missing"


def test_weave_half_ready(lab):
    snap = tx.snapshot()
    tx.crash(tx.find(snap, "kube-system", "weave-net-xjfwm"), "weave")
    out = s5.weave_running(lab, snap)
    assert out.key == "weave-not-ready" and out.detail == "weave-net-xjfwm 1/2 Running"
    assert "-c weave" in out.fix


def test_node_problems(lab):
    snap = tx.snapshot()
    snap.nodes[0]["metadata"]["name"] = "ip-10-0-0-195"
    out = s3.node_ready(lab, snap)
    assert out.key == "node-missing" and "ip-10-0-0-195" in out.detail
    snap = tx.snapshot()
    ready = next(c for c in snap.nodes[0]["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    assert s3.node_ready(lab, snap).key == "kubelet-down"
    ready.update(status="False", reason="KubeletNotReady", message="PLEG is not healthy")
    assert s3.node_ready(lab, snap).key == "kubelet-not-ready"


def test_api_problems(lab):
    no_config = from_api.Snapshot(problem=("no-kubeconfig", {"path": "/lab/.labkit/kubeconfig"}))
    out = s3.api_reachable(lab, no_config)
    assert out.key == "no-kubeconfig" and out.fix == "invoke cluster.init"
    assert "/lab/.labkit/kubeconfig" in out.cause

    refused = kube_errors.Unreachable("https://192.168.56.10:6443", "[Errno 111] Connection refused")
    key, values = from_api.api_problem(refused)
    assert key == "api-unreachable" and "192.168.56.10" in values["error"]
    assert from_api.api_problem(kube_errors.Unauthorized("https://192.168.56.10:6443", 401))[0] == "api-auth"
    for cause, key in (("other-ca", "api-auth"), ("expired", "api-cert-expired"),
                       ("not-yet-valid", "api-cert-not-yet-valid")):
        out = s3.api_reachable(lab, from_api.Snapshot(problem=from_api.api_problem(
            kube_errors.Untrusted("https://192.168.56.10:6443", cause))))
        assert out.key == key and "{" not in out.cause

    snap = tx.snapshot()
    snap.version["gitVersion"] = "v1.28.2"
    assert s3.api_reachable(lab, snap).key == "api-version"
    snap.version["gitVersion"] = "v1.15.0"  # another patch of 1.15: the same lab
    assert s3.api_reachable(lab, snap).status == PASS


def test_checks_do_not_change_the_snapshot(lab):
    snap = tx.inv_pod_stopped(tx.snapshot())
    before = copy.deepcopy(snap)
    decide(lab, snap)
    assert snap == before
