"""Each probe's decision and hint, on the output the lab's tools really print."""
import re

import pytest

from labkit import settings as settings_mod
from labkit.backends import TIMEOUT_EXIT, CommandResult
from labkit.checks import FAIL, PASS
from labkit.verify import probes
from labkit.verify.checks import s3, s5, s6, s8
from labkit.verify.model import Lab
from tests.t0.test_verify_parse import (LAB_RESOLV, LAB_ROUTES, NSLOOKUP_COREDNS, NSLOOKUP_DOWN, NSLOOKUP_NEW,
                                       NSLOOKUP_NXDOMAIN, WGET_S)

NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
</body>
</html>
"""
INV_A, INV_B = "can-inventory-756c87dc9f-lmxcp", "can-inventory-756c87dc9f-b45ns"


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


def res(code=0, out="", err=""):
    return CommandResult(code, out, err, 0.1)


def key(outcome):
    """The hint's key, after checking that the decision filled every value its hint uses."""
    if not outcome.key:
        return None
    assert not re.search(r"\{\w+\?\}", outcome.cause + outcome.fix), outcome
    return outcome.key


def http(result, lab, *, on_node=True, exact=True, expect='{"version":"0.1"}', service=False):
    ctx = {"source": lab.node if on_node else "client", "target": "10.32.0.6:8080", "pod": INV_A, "node": lab.node,
           "service": "inv", "exec_pod": None if on_node else "client"}
    refused, unreachable = ("service-refused", "service-unreachable") if service else (
        "http-refused", "pod-unreachable-node" if on_node else "pod-unreachable-pod")
    return probes.decide_http(result, tool="curl" if on_node else "wget", expect=expect, exact=exact, ctx=ctx,
                              on_refused=refused, on_unreachable=unreachable, body_fix="invoke app.build")


# --- the node -----------------------------------------------------------------------------------

def test_route_of_the_lab_passes(lab):
    out = s5.decide_route(res(out=LAB_ROUTES), lab)
    assert out.status == PASS
    assert out.detail == "10.32.0.0/12 dev weave proto kernel scope link src 10.32.0.1"


def test_route_missing_and_route_elsewhere(lab):
    without = "\n".join(ln for ln in LAB_ROUTES.splitlines() if "weave" not in ln)
    out = s5.decide_route(res(out=without), lab)
    assert (out.status, key(out)) == (FAIL, "route-missing")
    assert 'sudo ip route replace 10.32.0.0/12 dev weave' in out.fix
    hijacked = LAB_ROUTES.replace("dev weave", "dev docker0")
    out = s5.decide_route(res(out=hijacked), lab)
    assert key(out) == "route-wrong-dev" and "docker0" in out.cause


def test_node_over_ssh_unreachable(lab):
    out = s5.decide_route(res(255, err="ssh to ubuntu failed: [Errno 111] Connection refused"), lab)
    assert key(out) == "node-unreachable" and out.fix == "invoke vm.up"
    out = s3.decide_reachable(res(255, err="ssh to ubuntu failed: VM not created"), lab.node)
    assert key(out) == "node-unreachable"
    assert s3.decide_reachable(res(0), lab.node).status == PASS


def test_curl_from_the_node(lab):
    assert http(res(out='{"version":"0.1"}'), lab).detail == '{"version":"0.1"}'
    assert http(res(out=NGINX_PAGE), lab, exact=False, expect="<title>Welcome to nginx!</title>").status == PASS
    refused = http(res(7, err="curl: (7) Failed to connect to 10.32.0.6 port 8080: Connection refused"), lab)
    assert key(refused) == "http-refused" and f"kubectl logs {INV_A}" in refused.fix
    timeout = http(res(28, err="curl: (28) Connection timed out after 9001 milliseconds"), lab)
    assert key(timeout) == "pod-unreachable-node"
    wrong = http(res(out='{"version":"0.2"}'), lab)
    assert key(wrong) == "wrong-body" and '{"version":"0.2"}' in wrong.cause and wrong.fix == "invoke app.build"
    # 0.1 with a trailing newline is the same answer; a page that merely contains it is not.
    assert http(res(out='{"version":"0.1"}\n'), lab).status == PASS
    assert http(res(out='x{"version":"0.1"}'), lab).status == FAIL


def test_http_error_status(lab):
    # curl -f on the node (Ubuntu 16.04's curl 7.47 message) and busybox wget in the pod.
    curl = http(res(22, err="curl: (22) The requested URL returned error: 404 Not Found"), lab)
    assert key(curl) == "http-error" and "404 Not Found" in curl.cause
    assert curl.fix == f'invoke vm.ssh --command "kubectl logs {INV_A}"'
    wget = http(res(1, err="wget: server returned error: HTTP/1.1 404 Not Found\n"
                           "command terminated with exit code 1\n"), lab, on_node=False)
    assert key(wget) == "http-error" and "HTTP/1.1 404 Not Found" in wget.cause


def test_wget_from_the_client_pod(lab):
    unreachable = http(res(1, err="wget: can't connect to remote host (10.32.0.6): No route to host\n"
                                  "command terminated with exit code 1\n"), lab, on_node=False)
    assert key(unreachable) == "pod-unreachable-pod" and "client cannot reach 10.32.0.6:8080" in unreachable.cause
    not_found = http(res(1, err="wget: bad address 'inv'\ncommand terminated with exit code 1\n"), lab, on_node=False)
    assert key(not_found) == "name-not-found"
    refused = http(res(1, err="wget: can't connect to remote host (10.103.51.48): Connection refused"), lab,
                   on_node=False, service=True)
    assert key(refused) == "service-refused"


def test_kubectl_exec_problems_are_reported_as_such(lab):
    gone = http(res(1, err='Error from server (NotFound): pods "client" not found\n'), lab, on_node=False)
    assert key(gone) == "exec-failed" and "kubectl get pod client" in gone.fix
    # "refused" here is kubectl's, not the probe's: the node user has no kubeconfig.
    nokube = http(res(1, err="The connection to the server localhost:8080 was refused - did you specify the right "
                             "host or port?\n"), lab, on_node=False)
    assert key(nokube) == "exec-no-kubeconfig" and nokube.fix == "invoke cluster.init"
    assert key(s6.decide_exec(res(1, err='error: unable to upgrade connection: container not found ("client")'),
                                  "client", lab.node)) == "exec-failed"
    assert s6.decide_exec(res(0), "client", lab.node).status == PASS


def test_missing_tools(lab):
    assert key(http(res(127, err="bash: curl: command not found"), lab)) == "tool-missing"


# --- the client pod's DNS -----------------------------------------------------------------------

def test_resolv_conf_of_the_lab_passes(lab):
    out = s8.decide_resolv_conf(res(out=LAB_RESOLV), lab, "client", "10.96.0.10")
    assert out.status == PASS
    assert out.detail == ("nameserver 10.96.0.10; search default.svc.cluster.local svc.cluster.local "
                          "cluster.local localdomain; options ndots:5")


def test_resolv_conf_is_held_to_the_kube_dns_service_the_api_shows(repo):
    """The expected nameserver is kube-dns's ClusterIP from the API, not one computed from settings."""
    other = Lab.from_settings(settings_mod.load(repo, {"LABKIT_NETWORK__SERVICE_CIDR": "10.100.0.0/16"}))
    assert s8.decide_resolv_conf(res(out=LAB_RESOLV), other, "client", "10.96.0.10").status == PASS
    out = s8.decide_resolv_conf(res(out=LAB_RESOLV), other, "client", "10.100.0.10")
    assert key(out) == "resolv-nameserver" and "not kube-dns 10.100.0.10" in out.cause


def test_resolv_conf_wrong_nameserver_or_search(lab):
    node_like = s8.decide_resolv_conf(res(out="nameserver 10.0.2.3\nsearch localdomain\n"), lab, "client",
                                          "10.96.0.10")
    assert key(node_like) == "resolv-nameserver"
    assert "names nameserver 10.0.2.3, not kube-dns 10.96.0.10" in node_like.cause
    assert 'kubectl delete pod client' in node_like.fix
    bad_search = LAB_RESOLV.replace("search default.svc.cluster.local ", "search ")
    out = s8.decide_resolv_conf(res(out=bad_search), lab, "client", "10.96.0.10")
    assert key(out) == "resolv-search" and "must start with default.svc.cluster.local" in out.cause
    unreadable = s8.decide_resolv_conf(res(1, err="cat: can't open '/etc/resolv.conf': No such file"), lab,
                                           "client", "10.96.0.10")
    assert key(unreadable) == "resolv-unreadable"


def test_lookup(lab):
    ok = s8.decide_lookup(res(out=NSLOOKUP_NEW), lab, "client", "10.103.51.48")
    assert ok.detail == "inv.default.svc.cluster.local → 10.103.51.48 (server 10.96.0.10)"
    # busybox 1.31 exits 1 when any query (the AAAA one, a search suffix) fails; the answer decides.
    assert s8.decide_lookup(res(1, out=NSLOOKUP_NEW), lab, "client", "10.103.51.48").status == PASS
    down = s8.decide_lookup(res(1, out=NSLOOKUP_DOWN), lab, "client", "10.103.51.48")
    assert key(down) == "dns-down" and "rollout restart deployment coredns" in down.fix
    nx = s8.decide_lookup(res(1, out=NSLOOKUP_NXDOMAIN), lab, "client", "10.103.51.48")
    assert key(nx) == "dns-nxdomain"
    # CoreDNS's answer: the A record, then "*** Can't find ...: No answer" for AAAA; exit 0 or 1.
    for code in (0, 1):
        coredns = s8.decide_lookup(res(code, out=NSLOOKUP_COREDNS), lab, "client", "10.103.51.48")
        assert coredns.status == PASS and coredns.detail.endswith("→ 10.103.51.48 (server 10.96.0.10)")
    stale = s8.decide_lookup(res(out=NSLOOKUP_NEW), lab, "client", "10.100.0.1")
    assert key(stale) == "dns-wrong-answer"


def test_bare_name_on_the_node_is_expected_to_fail(lab):
    assert s8.decide_node_name(res(6, err="curl: (6) Could not resolve host: inv"), lab, 4).status == PASS
    slow = s8.decide_node_name(res(28, err="curl: (28) Resolving timed out after 4000 milliseconds"), lab, 4)
    assert slow.status == PASS and "long wait" in slow.detail
    # Our backend's kill (a stalled SSH channel, say) is no evidence that the name does not resolve.
    stalled = s8.decide_node_name(CommandResult(TIMEOUT_EXIT, "", "timed out after 8s", 8.0), lab, 4)
    assert (stalled.status, key(stalled)) == (FAIL, "timeout") and "within 8s from ubuntu" in stalled.cause
    resolved = s8.decide_node_name(res(7, err="curl: (7) Failed to connect to inv port 80: Connection refused"),
                                       lab, 4)
    assert key(resolved) == "node-resolves-cluster"
    connect_slow = s8.decide_node_name(res(28, err="curl: (28) Connection timed out after 4001 milliseconds"),
                                           lab, 4)
    assert key(connect_slow) == "node-resolves-cluster"


# --- load balancing -----------------------------------------------------------------------------

def wget_s(names):
    return "".join(f"  HTTP/1.1 200 OK\n  Content-Length: 17\n  X-Served-By: {n}\n  \n" for n in names)


def test_balance_both_replicas(lab):
    out = s8.decide_balance(res(out=wget_s([INV_A, INV_B] * 10)), lab, "client", [INV_A, INV_B], 20)
    assert out.status == PASS and out.detail == f"20 requests: {INV_B} ×10, {INV_A} ×10"


def test_balance_one_replica_errors_and_old_image(lab):
    one = s8.decide_balance(res(out=wget_s([INV_A] * 20)), lab, "client", [INV_A, INV_B], 20)
    assert key(one) == "lb-one-replica" and f"never by {INV_B}" in one.cause
    assert "delete pod -l k8s-app=kube-proxy" in one.fix
    errors = s8.decide_balance(res(1, out=WGET_S), lab, "client", [INV_A, INV_B], 20)
    assert key(errors) == "lb-errors" and errors.detail.startswith("1/20 failed")
    old = s8.decide_balance(res(out="  HTTP/1.1 200 OK\n  Content-Length: 17\n  \n" * 20), lab, "client",
                                [INV_A, INV_B], 20)
    assert key(old) == "lb-no-header"


def test_lb_command_is_one_busybox_loop():
    argv = probes.lb_command("http://10.103.51.48:80/", 3)
    assert argv == ["sh", "-c", "for i in 1 2 3; do wget -S -q -O /dev/null http://10.103.51.48:80/ 2>&1; done"]
