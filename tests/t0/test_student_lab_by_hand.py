"""T0: sections 3-8 done by hand, judged as section.check judges them: after the lab's commands typed
verbatim, after this VM's substitutions, and after each common mistake, the expected status, cause and
next command.

Recorded outputs, in the formats the tools print (never the kit's parsers' idea of them):
  * kubectl 1.15 tables and -o json/jsonpath: the lab's transcript (lab7-orchestration.md sections 3-8),
    node ubuntu / 192.168.56.10 as on the kit's VM; jsonpath prints the bare values, no newline;
  * docker 18.09 `docker ps --format '{{.Names}}'`: dockershim's k8s_<container>_<pod>_<namespace>_<uid>_<attempt>
    (kubernetes v1.15 pkg/kubelet/dockershim/naming.go makeContainerName);
  * `kubectl get pod -o json` of a pod whose image cannot come: state.waiting reason ErrImagePull /
    ImagePullBackOff ("Back-off pulling image \"nginx\"") or ErrImageNeverPull ("Container image
    \"trash-can/inv:0.1\" is not present with pull policy of Never"), the messages of kubernetes v1.15
    pkg/kubelet/images/image_manager.go; a `kubectl run` Deployment's pod: labels run=<name> and
    pod-template-hash, owned by a ReplicaSet (kubectl 1.15 deployment/apps.v1 generator);
  * busybox 1.31 wget/nslookup, iproute2 `ip route`, curl: tests/t0/test_verify_parse.py's recordings;
  * stat -c %U, cmp -s: a user name, then the echo of the shell line sections.py runs.
Sections 5-8 go through verify's real plan and runner (tests/verify_transcript.py snapshots, the
probes answered by Replay) and student/labnext.py, as section.check does.
"""
from __future__ import annotations

import copy
import json

import pytest

from labkit import settings as settings_mod
from labkit.backends import Backend, CommandResult
from labkit.student import checks, progress
from labkit.student.sections import want_for
from labkit.verify import plan, run_lab
from labkit.verify.model import Lab
from tests import verify_transcript as tx
from tests.t0.test_student_checks import DPKG_ALL, LINE, LIST, POLICY_INSTALLED, Node, grep_h, out
from tests.t0.test_verify_parse import LAB_RESOLV, LAB_ROUTES, NSLOOKUP_COREDNS
from tests.t0.test_verify_probes import NGINX_PAGE

IP = tx.NODE_IP  # 192.168.56.10, the master's host-only address in settings.yaml
WEAVE = "/opt/labkit/bundle/manifests/weave-daemonset-k8s-1.11.yaml"


@pytest.fixture(scope="module")
def s(repo):
    return settings_mod.load(repo, {})


@pytest.fixture(scope="module")
def want(s):
    w = want_for(s)
    assert (w.node, w.node_ip) == (tx.NODE, IP)
    return w


# --- sections 3 and 4: what the node's tools print -----------------------------------------------------
MANIFESTS = "etcd.yaml\nkube-apiserver.yaml\nkube-controller-manager.yaml\nkube-scheduler.yaml\n"
UID = {"etcd": "0f1a5b8c9a4f1f6b3d1e5e1e9a2b6c7d", "kube-apiserver": "3d4b4a7a5c0ad6e5dd8f3f25c1cbf0b0",
       "kube-controller-manager": "9c89a2b5d6e1b2b2ed8a1b5a9ef0c2ee", "kube-scheduler": "ecae9d12d3610192347be3d1aa5aa552"}
CONTAINERS = "".join(f"k8s_{c}_{c}-ubuntu_kube-system_{u}_0\nk8s_POD_{c}-ubuntu_kube-system_{u}_0\n"
                     for c, u in UID.items())
NODES = "NAME     STATUS     ROLES    AGE     VERSION\nubuntu   NotReady   master   5m12s   v1.15.12\n"


def node_json(*taints) -> str:
    """`kubectl get node ubuntu -o json` (the API's Node, as verify_transcript builds it) with these taints."""
    n = tx.node()
    if taints:
        n["spec"]["taints"] = [{"key": k, "effect": "NoSchedule"} for k in taints]
    return json.dumps(n, indent=4)


MASTER = "node-role.kubernetes.io/master"
NOT_READY = "node.kubernetes.io/not-ready"

SECTIONS_1_2 = {"test -f": out(""), "grep -Hs": grep_h((LIST, LINE)), "apt-cache policy": out(POLICY_INSTALLED),
                "dpkg-query": out(DPKG_ALL), "systemctl is-enabled": out("enabled\n"),
                "cat /proc/swaps": out("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"), "sysctl -n": out("1\n1\n")}
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
# After the section 3 command as this VM's table gives it (--apiserver-advertise-address).
SECTION_3_DONE = {"ls /etc/kubernetes/manifests": out(MANIFESTS), "docker ps": out(CONTAINERS),
                  f"{KUBECTL} get nodes": out(NODES), f"{KUBECTL} get endpoints kubernetes": out(IP),
                  f"{KUBECTL} get node ubuntu -o jsonpath": out(IP)}
# After section 4 as the table gives it (chown vagrant; the taint command).
SECTION_4_DONE = {"stat -c": out("vagrant\nsame\n"), f"{KUBECTL} get node ubuntu -o json": out(node_json(NOT_READY))}


def judge(answers: dict, want, upto: int, verified=None):
    node = Node({**SECTIONS_1_2, **answers})
    states = progress.evaluate(upto, node, want, verify_results=verified or (lambda: pytest.fail("verify ran")))
    return states, node


def last(states):
    st = states[-1]
    f = st.failure
    return st.status, (f.result.key if f else None), (f.result.fix if f else None)


def test_section_3_as_typed_on_this_vm_is_done(want):
    states, node = judge(SECTION_3_DONE, want, 3)
    assert [st.status for st in states] == ["done"] * 3
    assert [o.check.id for o in states[2].outcomes] == ["manifests", "static-pods", "node", "advertise", "address"]
    asked = "\n".join(node.asked)
    assert f"{KUBECTL} get endpoints kubernetes -o jsonpath='{{.subsets[*].addresses[*].ip}}'" in asked


def test_section_3_typed_verbatim_advertises_the_nat_address_and_check_3_says_the_exact_command(want):
    """`sudo kubeadm init` with no flags: kubeadm advertises the default route's interface, VirtualBox's
    NAT 10.0.2.15; the node itself is fine (base.sh makes its name resolve to the host-only address)."""
    states, _ = judge({**SECTION_3_DONE, f"{KUBECTL} get endpoints kubernetes": out("10.0.2.15")}, want, 3)
    status, key, fix = last(states)
    assert (status, key) == ("in progress", "advertise-address")
    assert fix == f"sudo kubeadm reset -f && sudo kubeadm init --apiserver-advertise-address={IP}"
    cause = states[-1].failure.result.cause
    assert "advertises 10.0.2.15, not the node's host-only address 192.168.56.10" in cause
    assert "certificate does not cover 192.168.56.10" in cause
    assert [o.status for o in states[2].outcomes] == ["pass", "pass", "pass", "fail", "skip"]


def test_section_3_not_begun_and_half_done(want):
    none = judge({"ls /etc/kubernetes/manifests": out("", 2, "ls: cannot access '/etc/kubernetes/manifests': "
                                                              "No such file or directory\n")}, want, 3)[0]
    assert last(none) == ("not started", "no-init", f"sudo kubeadm init --apiserver-advertise-address={IP}")
    one_gone = judge({"ls /etc/kubernetes/manifests": out(MANIFESTS.replace("kube-scheduler.yaml\n", ""))}, want, 3)[0]
    assert last(one_gone)[:2] == ("in progress", "init-incomplete")
    down = judge({**SECTION_3_DONE, "docker ps": out("\n".join(line for line in CONTAINERS.splitlines()
                                                               if "k8s_kube-apiserver_" not in line))}, want, 3)[0]
    assert states_cause(down).startswith("kube-apiserver is not running")
    refused = out("", 1, "The connection to the server 192.168.56.10:6443 was refused - did you specify the right "
                         "host or port?\n")
    assert last(judge({**SECTION_3_DONE, f"{KUBECTL} get nodes": refused}, want, 3)[0])[1] == "api-down"


def states_cause(states) -> str:
    return states[-1].failure.result.cause


def test_section_3_kubelet_on_the_nat_address_gets_the_kits_own_flags(want):
    """A kubelet that registered 10.0.2.15: the fix writes /etc/default/kubelet as provision/kubernetes.sh does,
    --node-ip and --resolv-conf (the resolver list without loopback servers that provision/base.sh wrote)."""
    states, _ = judge({**SECTION_3_DONE, f"{KUBECTL} get node ubuntu -o jsonpath": out("10.0.2.15")}, want, 3)
    status, key, fix = last(states)
    assert (status, key) == ("in progress", "node-ip")
    assert fix == (f"echo 'KUBELET_EXTRA_ARGS=--node-ip={IP} --resolv-conf=/etc/labkit/resolv.conf' | "
                   "sudo tee /etc/default/kubelet && sudo systemctl restart kubelet")


def test_the_kubelet_flags_are_the_provisioning_scripts_own(repo, want):
    """One format: provision/kubernetes.sh writes the line check 3 offers, from the file provision/base.sh writes."""
    kubernetes_sh = (repo / "provision" / "kubernetes.sh").read_text()
    assert 'args="KUBELET_EXTRA_ARGS=--node-ip=$LABKIT_NODE_IP --resolv-conf=$KUBELET_RESOLV"' in kubernetes_sh
    assert f"KUBELET_RESOLV={checks.KUBELET_RESOLV} " in kubernetes_sh
    assert f"KUBELET_RESOLV={checks.KUBELET_RESOLV}\n" in (repo / "provision" / "base.sh").read_text()
    assert want.kubelet_args == f"KUBELET_EXTRA_ARGS=--node-ip={IP} --resolv-conf={checks.KUBELET_RESOLV}"


def test_section_4_as_typed_on_this_vm_is_done(want):
    states, node = judge({**SECTION_3_DONE, **SECTION_4_DONE}, want, 4)
    assert [st.status for st in states] == ["done"] * 4
    assert any(c.startswith("stat -c '%U' ~vagrant/.kube/config && (cmp -s /etc/kubernetes/admin.conf "
                            "~vagrant/.kube/config") for c in node.asked)


def test_section_4_mistakes(want):
    before = {**SECTION_3_DONE, "stat -c": out("", 1, "stat: cannot stat '/home/vagrant/.kube/config': "
                                                      "No such file or directory\n")}
    assert last(judge(before, want, 4)[0]) == (
        "not started", "no-kubeconfig",
        "mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config && "
        "sudo chown vagrant $HOME/.kube/config")
    # the lab's `sudo chown ubuntu $HOME/.kube/config` typed verbatim: "chown: invalid user: 'ubuntu'", root keeps it
    owner = judge({**SECTION_3_DONE, **SECTION_4_DONE, "stat -c": out("root\nsame\n")}, want, 4)[0]
    assert last(owner) == ("in progress", "kubeconfig-owner", "sudo chown vagrant $HOME/.kube/config")
    assert "this VM's user is vagrant, not the lab's ubuntu" in states_cause(owner)
    # copied before a kubeadm reset and a new init: kubectl would present the old cluster's credentials
    stale = judge({**SECTION_3_DONE, **SECTION_4_DONE, "stat -c": out("vagrant\ndiffers\n")}, want, 4)[0]
    assert last(stale) == ("in progress", "kubeconfig-stale",
                           "sudo cp /etc/kubernetes/admin.conf $HOME/.kube/config && sudo chown vagrant $HOME/.kube/config")


def test_section_4_taint_read_from_the_api_every_one_of_them(want):
    """`kubectl describe` prints the first taint on the Taints: line and the rest under it; the API lists
    them all. The master taint second in the list is still the master taint."""
    for taints in ((MASTER, NOT_READY), (NOT_READY, MASTER)):
        tainted = judge({**SECTION_3_DONE, **SECTION_4_DONE, f"{KUBECTL} get node ubuntu -o json": out(node_json(*taints))},
                        want, 4)[0]
        assert last(tainted) == ("in progress", "master-taint", "kubectl taint nodes --all node-role.kubernetes.io/master-")
    untainted = judge({**SECTION_3_DONE, **SECTION_4_DONE, f"{KUBECTL} get node ubuntu -o json": out(node_json())}, want, 4)[0]
    assert untainted[-1].status == "done"
    gone = judge({**SECTION_3_DONE, **SECTION_4_DONE, f"{KUBECTL} get node ubuntu -o json": out(
        "", 1, 'Error from server (NotFound): nodes "ubuntu" not found\n')}, want, 4)[0]
    assert last(gone)[1] == "api-down" and 'nodes "ubuntu" not found' in states_cause(gone)


# --- sections 5-8: verify's checks on the API's objects, told as the lab's commands ----------------------

class Replay(Backend):
    """The node or the client pod: each probe answered with the lab's recorded output (by program and URL)."""

    def __init__(self, name: str):
        self.name = name

    def run(self, argv, timeout=30, stdin=None) -> CommandResult:
        prog, url = argv[0], argv[-1]
        if prog == "true":
            return out("")
        if prog == "ip":
            return out(LAB_ROUTES)
        if prog == "cat":
            return out(LAB_RESOLV)
        if prog == "nslookup":
            return out(NSLOOKUP_COREDNS)
        if prog == "sh":  # the load-balancing loop: both replicas answer (busybox wget -S headers)
            return out("".join(f"  HTTP/1.1 200 OK\n  X-Served-By: {n}\n" for n in (tx.INV_A, tx.INV_B) * 10))
        if prog == "curl" and url == "http://inv/":
            return out("", 6, "curl: (6) Could not resolve host: inv\n")
        if tx.WEB_IP in url:
            return out(NGINX_PAGE)
        return out('{"version":"0.1"}')


def verified(lab, snap):
    return lambda: (run_lab(lab, snap, plan.Where(node=Replay("ubuntu"), client=Replay("client"))), snap)


@pytest.fixture(scope="module")
def lab(s):
    return Lab.from_settings(s)


UP_TO_4 = {**SECTION_3_DONE, **SECTION_4_DONE}


def judged(lab, want, snap, upto):
    return judge(UP_TO_4, want, upto, verified(lab, snap))[0]


def without_app(snap):
    snap = copy.deepcopy(snap)
    snap.pods["default"], snap.deployment, snap.service, snap.endpoints = [], None, None, None
    return snap


def cannot_pull(p: dict, image: str, reason: str, message: str) -> dict:
    """The pod as the API shows it while its image cannot come: Pending, not Ready, the container waiting."""
    p = copy.deepcopy(p)
    container = p["spec"]["containers"][0]
    container["image"] = image
    p["status"].update(phase="Pending", conditions=[
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
         "message": f"containers with unready status: [{container['name']}]"},
        {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
         "message": f"containers with unready status: [{container['name']}]"},
        {"type": "PodScheduled", "status": "True"}])
    p["status"]["containerStatuses"] = [{"name": container["name"], "image": image, "imageID": "", "ready": False,
                                         "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]
    return p


def backoff(image):
    return "ImagePullBackOff", f'Back-off pulling image "{image}"'


def test_section_5_before_and_after_the_weave_url(lab, want):
    """The lab's `kubectl apply -f "https://cloud.weave.works/..."` offline fails to connect and applies
    nothing: the cluster is as after section 4. Section 5's cause is the node's (NotReady, no pod
    network), checked under section 3 by verify, and the next command is the bundle's manifest."""
    states = judged(lab, want, tx.no_cni(tx.snapshot()), 5)
    st = states[-1]
    assert [s.status for s in states] == ["done"] * 4 + ["not started"]
    f = st.failure.result
    assert (f.key, f.fix) == ("no-cni", f"kubectl apply -f {WEAVE}")
    assert "no pod network" in f.cause and "cloud.weave.works" in f.cause
    assert st.failure.result.blocked_by == "node.ready"  # a skipped section-5 check names its root, in section 3
    # kubeadm's own kube-dns Service passes before the student does anything: not progress
    assert {o.check.id for o in st.outcomes if o.result.ok} == {"dns.service"}


def test_section_5_with_the_bundles_manifest_is_done_and_6_not_started(lab, want):
    states = judged(lab, want, without_app(tx.snapshot()), 6)
    assert [s.status for s in states] == ["done"] * 5 + ["not started"]
    assert last(states) == ("not started", "no-pod", "kubectl run web --image nginx:1.17.1 --generator=run-pod/v1")


def test_section_6_typed_verbatim_untagged_nginx_is_latest_pulled_always_offline(lab, want):
    web = cannot_pull(tx.find(tx.snapshot(), "default", "web"), "nginx", *backoff("nginx"))
    states = judged(lab, want, _with_default(tx.snapshot(), [web]), 6)
    assert last(states) == ("in progress", "latest-offline",
                            "kubectl delete pod web && kubectl run web --image nginx:1.17.1 --generator=run-pod/v1")
    cause = states_cause(states)
    assert "image nginx means nginx:latest" in cause and "imagePullPolicy Always" in cause
    assert "the bundle has nginx:1.17.1" in cause and "ImagePullBackOff" in cause


def _with_default(snap, pods, deployment=None, service=None):
    snap = without_app(snap)
    snap.pods["default"] = pods
    snap.deployment, snap.service = deployment, service
    if service:
        snap.endpoints = tx.endpoints()
    return snap


def test_section_6_a_tag_the_bundle_lacks_is_not_the_latest_case(lab, want):
    web = cannot_pull(tx.find(tx.snapshot(), "default", "web"), "nginx:1.19", "ErrImagePull",
                      "rpc error: code = Unknown desc = Error response from daemon: Get https://registry-1.docker.io/v2/: "
                      "dial tcp: lookup registry-1.docker.io on 10.0.2.3:53: server misbehaving")
    states = judged(lab, want, _with_default(tx.snapshot(), [web]), 6)
    status, key, fix = last(states)
    assert (status, key) == ("in progress", "not-in-bundle")
    assert fix == "kubectl delete pod web && kubectl run web --image nginx:1.17.1 --generator=run-pod/v1"
    assert "nginx:1.19 is not in the bundle" in states_cause(states) and "latest" not in states_cause(states)


def test_section_6_kubectl_run_without_the_generator_made_a_deployment(lab, want):
    """kubectl 1.15 `run web --image nginx:1.17.1` (no generator): deployment.apps/web, pod web-<hash>-<id>."""
    web = copy.deepcopy(tx.find(tx.snapshot(), "default", "web"))
    web["metadata"].update(name="web-5bc9c9c9d7-x4lzr", labels={"run": "web", "pod-template-hash": "5bc9c9c9d7"},
                           ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5bc9c9c9d7",
                                             "uid": "7d0e5c42-2a5b-4d8e-9a64-1f3b7c1e2d11", "controller": True,
                                             "blockOwnerDeletion": True}])
    states = judged(lab, want, _with_default(tx.snapshot(), [web]), 6)
    assert last(states) == ("in progress", "run-made-deployment",
                            "kubectl delete deployment web && kubectl run web --image nginx:1.17.1 --generator=run-pod/v1")
    assert "made a Deployment web (its pod is web-5bc9c9c9d7-x4lzr)" in states_cause(states)


def test_section_6_client_typed_verbatim_untagged_busybox(lab, want):
    web = tx.find(tx.snapshot(), "default", "web")
    client = cannot_pull(tx.find(tx.snapshot(), "default", "client"), "busybox", *backoff("busybox"))
    states = judged(lab, want, _with_default(tx.snapshot(), [client, web]), 6)
    assert last(states) == ("in progress", "latest-offline",
                            "kubectl delete pod client && kubectl run client --image busybox:1.31.0 --generator=run-pod/v1 -it")


def test_section_6_as_typed_on_this_vm_is_done_and_7_not_started(lab, want):
    snap = _with_default(tx.snapshot(), [tx.find(tx.snapshot(), "default", n) for n in ("client", "web")])
    states = judged(lab, want, snap, 7)
    assert [s.status for s in states] == ["done"] * 6 + ["not started"]
    assert last(states) == ("not started", "no-deployment", "cd ~/trash-can/inv && kubectl apply -f deploy.yaml")


def test_section_7_typed_verbatim_without_the_image_built(lab, want):
    """deploy.yaml as the lab prints it (imagePullPolicy: Never) on a node where trash-can/inv:0.1 was never built."""
    message = 'Container image "trash-can/inv:0.1" is not present with pull policy of Never'
    pods = [cannot_pull(tx.find(tx.snapshot(), "default", n), "trash-can/inv:0.1", "ErrImageNeverPull", message)
            for n in (tx.INV_A, tx.INV_B)]
    pods += [tx.find(tx.snapshot(), "default", n) for n in ("client", "web")]
    states = judged(lab, want, _with_default(tx.snapshot(), pods, deployment=tx.deployment(available=0)), 7)
    assert last(states) == ("in progress", "inv-not-built", "cd ~/trash-can/inv && docker build -t trash-can/inv:0.1 .")
    assert "never built on this node" in states_cause(states)


def test_section_7_done_and_8_not_started_then_all_done(lab, want):
    snap = tx.snapshot()
    snap.service = snap.endpoints = None
    states = judged(lab, want, snap, 8)
    assert [s.status for s in states] == ["done"] * 7 + ["not started"]
    assert last(states) == ("not started", "no-service", "cd ~/trash-can/inv && kubectl apply -f service.yaml")
    # the client's resolv.conf (the kubelet's) and the node's `curl inv` failing (the lab's lesson) pass
    # without the student's Service: not progress
    assert {o.check.id for o in states[-1].outcomes if o.result.ok} == {"dns.resolvconf", "svc.node.name"}
    every = judged(lab, want, tx.snapshot(), 8)
    assert [s.status for s in every] == ["done"] * 8
    assert progress.as_json(every, "ubuntu")["current"] is None


def test_a_section_8_mistake_keeps_verifys_cause_with_the_command_for_the_vm(lab, want):
    """A Service whose selector matches no pod: verify's cause, its `invoke vm.ssh --command "..."` fix
    unwrapped (the student is already in the VM)."""
    states = judged(lab, want, tx.selector_typo(tx.snapshot()), 8)
    status, key, fix = last(states)
    assert status == "in progress" and key == "endpoints-no-pods"
    assert fix == "kubectl get pods --show-labels, then cd ~/trash-can/inv && kubectl apply -f service.yaml"
    assert "invoke" not in fix


def test_a_section_verify_has_no_check_for_is_said_not_guessed(want):
    from labkit.student import labnext

    (only,) = labnext.section_checks(6, [], None, want)
    assert (only.status, only.result.key) == ("fail", "no-verify-checks")
    assert progress.status_of([only]) == "in progress" and only.result.fix == "invoke verify --section 6"


# --- what section.check prints (the task itself, on the recorded states above) ------------------------

def printed_check(monkeypatch, capsys, lab, want, snap, n) -> str:
    from invoke import Context, Exit

    from labkit import steps
    from labkit.student import live
    from labkit.tasks import section

    monkeypatch.setattr(section, "_context", lambda s: steps.Context(s, vm_state=lambda name: "running"))
    monkeypatch.setattr(live, "evaluate", lambda ctx, upto: judge(UP_TO_4, want, upto, verified(lab, snap))[0])
    monkeypatch.setattr("labkit.room.client.send", lambda *a, **k: None)
    with pytest.raises(Exit):
        section.check(Context(), n=str(n))
    return capsys.readouterr().out


def test_section_check_6_after_the_labs_untagged_nginx_as_docs_student_md_shows_it(repo, monkeypatch, capsys, lab, want):
    web = cannot_pull(tx.find(tx.snapshot(), "default", "web"), "nginx", *backoff("nginx"))
    shown = printed_check(monkeypatch, capsys, lab, want, _with_default(tx.snapshot(), [web]), 6)
    assert "Section 6 is not done yet." in shown
    assert "  Next:  kubectl delete pod web && kubectl run web --image nginx:1.17.1 --generator=run-pod/v1" in shown
    assert "  Or let the kit do it: invoke section.solve 6" in shown
    docs = (repo / "docs" / "student.md").read_text(encoding="utf-8")
    assert "$ invoke section.check 6\n" + shown in docs  # the docs' example is this output, verbatim


def test_the_progress_report_of_a_section_8_mistake_is_what_the_room_accepts(lab, want):
    """The JSON section.progress sends (labkit/room/schema.py PROGRESS is unchanged by the check model)."""
    from labkit.room import schema

    report = json.loads(json.dumps(progress.as_json(judged(lab, want, tx.selector_typo(tx.snapshot()), 8), "ubuntu")))
    envelope = {"seat": "0123456789abcdef", "name": "seat 1", "kind": "progress", "taken": 1.0, "sent": 1.0,
                "report": report}
    assert schema.problem(envelope) is None
    cells = schema.cells("progress", report)
    assert cells["7"][0] == "pass" and cells["8"][0] == "fail"
    assert report["sections"][7]["first_failure"]["next"].endswith("kubectl apply -f service.yaml")
