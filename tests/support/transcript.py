"""The lab's cluster as the Kubernetes API returns it, built from lab 7's transcript values.

Names and addresses are the transcript's: node ubuntu, web 10.32.0.4, client 10.32.0.5,
can-inventory-756c87dc9f-lmxcp 10.32.0.6 and -b45ns 10.32.0.7, Service inv 10.103.51.48:80 → 8080,
kube-dns 10.96.0.10, coredns-5c98db65d4-jklpz/-vkqkj, weave-net-xjfwm, kube-proxy-z2wln. The
shapes are those of `kubectl get -o json` (the API's JSON), trimmed to the fields a reader uses.
Faults are applied the way the cluster itself would show them (a stopped container turns its pod
not Ready, its Deployment 1/2 and its endpoint not-ready), so tests never hand verify a state a
real cluster could not be in.
"""
from __future__ import annotations

import copy

from labkit.verify.from_api import Snapshot

NODE, NODE_IP = "ubuntu", "192.168.56.10"
VERSION = "v1.15.12"
WEB_IP, CLIENT_IP = "10.32.0.4", "10.32.0.5"
INV_A, INV_A_IP = "can-inventory-756c87dc9f-lmxcp", "10.32.0.6"
INV_B, INV_B_IP = "can-inventory-756c87dc9f-b45ns", "10.32.0.7"
COREDNS = {"coredns-5c98db65d4-jklpz": "10.32.0.2", "coredns-5c98db65d4-vkqkj": "10.32.0.3"}
SERVICE_IP, KUBE_DNS_IP = "10.103.51.48", "10.96.0.10"
STARTED = "2019-07-11T19:12:19Z"


def pod(name, namespace, labels, ip, containers, host_network=False):
    """A Running, Ready pod; `containers` is [(name, image)]."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"nodeName": NODE, "hostNetwork": host_network,
                 "containers": [{"name": c, "image": image} for c, image in containers]},
        "status": {
            "phase": "Running", "hostIP": NODE_IP, "podIP": NODE_IP if host_network else ip,
            "conditions": [{"type": t, "status": "True"} for t in ("Initialized", "Ready", "ContainersReady",
                                                                   "PodScheduled")],
            "containerStatuses": [{"name": c, "image": image, "ready": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": STARTED}}} for c, image in containers],
        },
    }


def kube_system_pods():
    out = [pod(n, "kube-system", {"k8s-app": "kube-dns", "pod-template-hash": "5c98db65d4"}, ip,
               [("coredns", "k8s.gcr.io/coredns:1.3.1")]) for n, ip in COREDNS.items()]
    for comp, image in (("etcd", "k8s.gcr.io/etcd:3.3.10"),
                        ("kube-apiserver", f"k8s.gcr.io/kube-apiserver:{VERSION}"),
                        ("kube-controller-manager", f"k8s.gcr.io/kube-controller-manager:{VERSION}"),
                        ("kube-scheduler", f"k8s.gcr.io/kube-scheduler:{VERSION}")):
        out.append(pod(f"{comp}-{NODE}", "kube-system", {"component": comp, "tier": "control-plane"}, None,
                       [(comp, image)], host_network=True))
    out.append(pod("kube-proxy-z2wln", "kube-system", {"k8s-app": "kube-proxy", "pod-template-generation": "1"},
                   None, [("kube-proxy", f"k8s.gcr.io/kube-proxy:{VERSION}")], host_network=True))
    out.append(pod("weave-net-xjfwm", "kube-system", {"name": "weave-net", "pod-template-generation": "1"}, None,
                   [("weave", "weaveworks/weave-kube:2.8.1"), ("weave-npc", "weaveworks/weave-npc:2.8.1")],
                   host_network=True))
    return out


def default_pods():
    inv_labels = {"app": "inv", "pod-template-hash": "756c87dc9f"}
    return [
        pod(INV_B, "default", inv_labels, INV_B_IP, [("inv", "trash-can/inv:0.1")]),
        pod(INV_A, "default", inv_labels, INV_A_IP, [("inv", "trash-can/inv:0.1")]),
        pod("client", "default", {"run": "client"}, CLIENT_IP, [("client", "busybox:1.31.0")]),
        pod("web", "default", {"run": "web"}, WEB_IP, [("web", "nginx:1.17.1")]),
    ]


def node():
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "node-role.kubernetes.io/master": ""}},
        "spec": {},  # the master taint was removed (section 4)
        "status": {
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE}],
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status. AppArmor enabled"},
            ],
            "nodeInfo": {"kubeletVersion": VERSION, "kubeProxyVersion": VERSION, "osImage": "Ubuntu 16.04.7 LTS",
                         "containerRuntimeVersion": "docker://18.9.9"},
        },
    }


def deployment(available=2):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "can-inventory", "namespace": "default", "labels": {"app": "inv"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "inv"}},
                 "template": {"metadata": {"labels": {"app": "inv"}},
                              "spec": {"containers": [{"name": "inv", "image": "trash-can/inv:0.1",
                                                       "imagePullPolicy": "Never",
                                                       "ports": [{"containerPort": 8080}]}]}}},
        "status": {"replicas": 2, "updatedReplicas": 2, "readyReplicas": available, "availableReplicas": available,
                   **({"unavailableReplicas": 2 - available} if available < 2 else {})},
    }


def service():
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "inv", "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": SERVICE_IP, "selector": {"app": "inv"},
                 "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}], "sessionAffinity": "None"},
    }


def address(ip, name):
    return {"ip": ip, "nodeName": NODE, "targetRef": {"kind": "Pod", "namespace": "default", "name": name}}


def endpoints(ready=((INV_A_IP, INV_A), (INV_B_IP, INV_B)), not_ready=()):
    subset = {"addresses": [address(ip, n) for ip, n in ready], "ports": [{"port": 8080, "protocol": "TCP"}]}
    if not_ready:
        subset["notReadyAddresses"] = [address(ip, n) for ip, n in not_ready]
    if not subset["addresses"]:
        del subset["addresses"]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "inv", "namespace": "default"},
            "subsets": [subset]}


def kube_dns():
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"type": "ClusterIP", "clusterIP": KUBE_DNS_IP, "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    }


def coredns_deployment(available=2):
    """kubeadm's CoreDNS addon: `deployment/coredns  Scaled up replica set coredns-5c98db65d4 to 2`."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
        "status": {"replicas": 2, "updatedReplicas": 2, "readyReplicas": available, "availableReplicas": available,
                   **({"unavailableReplicas": 2 - available} if available < 2 else {})},
    }


def snapshot() -> Snapshot:
    """The healthy lab at the end of section 8."""
    return Snapshot(version={"major": "1", "minor": "15", "gitVersion": VERSION, "platform": "linux/amd64"},
                    nodes=[node()], pods={"kube-system": kube_system_pods(), "default": default_pods()},
                    deployment=deployment(), service=service(), endpoints=endpoints(), dns_service=kube_dns(),
                    coredns=coredns_deployment(), seconds=0.05)


# --- the cluster's own view of a fault ---------------------------------------------------------

def find(snap: Snapshot, namespace: str, name: str) -> dict:
    return next(p for p in snap.pods[namespace] if p["metadata"]["name"] == name)


def crash(p: dict, container: str, reason="CrashLoopBackOff", exit_code=137, last_reason="Error") -> None:
    """The container stopped; the kubelet is restarting it: the pod is Running but not Ready."""
    for cond in p["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady",
                        message=f"containers with unready status: [{container}]")
    for s in p["status"]["containerStatuses"]:
        if s["name"] == container:
            s.update(ready=False, restartCount=s["restartCount"] + 1,
                     state={"waiting": {"reason": reason, "message": "back-off 10s restarting failed container"}},
                     lastState={"terminated": {"exitCode": exit_code, "reason": last_reason}})


def inv_pod_stopped(snap: Snapshot, name=INV_B, ip=INV_B_IP) -> Snapshot:
    snap = copy.deepcopy(snap)
    crash(find(snap, "default", name), "inv")
    snap.deployment = deployment(available=1)
    others = [(i, n) for i, n in ((INV_A_IP, INV_A), (INV_B_IP, INV_B)) if n != name]
    snap.endpoints = endpoints(ready=others, not_ready=[(ip, name)])
    return snap


def coredns_crashing(snap: Snapshot) -> Snapshot:
    snap = copy.deepcopy(snap)
    for name in COREDNS:
        crash(find(snap, "kube-system", name), "coredns", exit_code=1)
    return snap


def endpoint_missing(snap: Snapshot, name=INV_B) -> Snapshot:
    snap = copy.deepcopy(snap)
    snap.endpoints = endpoints(ready=[(i, n) for i, n in ((INV_A_IP, INV_A), (INV_B_IP, INV_B)) if n != name])
    return snap


def selector_typo(snap: Snapshot, selector=None) -> Snapshot:
    """Service inv applied with a mistyped selector: it selects no pod, so its Endpoints stay empty."""
    snap = copy.deepcopy(snap)
    snap.service["spec"]["selector"] = selector or {"app": "inventory"}
    snap.endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "inv", "namespace": "default"}}
    return snap


def coredns_one_pod(snap: Snapshot, name="coredns-5c98db65d4-vkqkj") -> Snapshot:
    """One CoreDNS pod deleted and not yet replaced: the Deployment still asks for 2."""
    snap = copy.deepcopy(snap)
    snap.pods["kube-system"] = [p for p in snap.pods["kube-system"] if p["metadata"]["name"] != name]
    snap.coredns = coredns_deployment(available=1)
    return snap


UNSCHEDULABLE = "0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate."


def unschedulable(p: dict) -> None:
    """The transcript's Pending pod: never scheduled, no container status."""
    p["status"] = {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": UNSCHEDULABLE}]}


def no_cni(snap: Snapshot) -> Snapshot:
    """Section 4 of the lab: kubeadm init done, taint removed, no Weave yet."""
    snap = copy.deepcopy(snap)
    snap.pods["kube-system"] = [p for p in snap.pods["kube-system"] if p["metadata"]["name"] != "weave-net-xjfwm"]
    ready = next(c for c in snap.nodes[0]["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status="False", reason="KubeletNotReady",
                 message="runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                         "message:docker: network plugin is not ready: cni config uninitialized")
    snap.nodes[0]["spec"]["taints"] = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    for name in COREDNS:
        unschedulable(find(snap, "kube-system", name))
    snap.coredns = coredns_deployment(available=0)
    snap.pods["default"] = []
    snap.deployment = snap.service = snap.endpoints = None
    return snap


# `ip route` on the lab's node (section 6 of the lab), spacing as iproute2 of Ubuntu 16.04 prints it.
LAB_ROUTES = """default via 192.168.83.2 dev ens33
10.32.0.0/12 dev weave  proto kernel  scope link  src 10.32.0.1
172.17.0.0/16 dev docker0  proto kernel  scope link  src 172.17.0.1
192.168.83.0/24 dev ens33  proto kernel  scope link  src 192.168.83.141
"""


# `cat /etc/resolv.conf` in the lab's client pod (section 8).
LAB_RESOLV = """nameserver 10.96.0.10
search default.svc.cluster.local svc.cluster.local cluster.local localdomain
options ndots:5
"""


# busybox 1.29+ nslookup (the lab's busybox:1.31), as printed by this machine's busybox.
NSLOOKUP_NEW = """Server:\t\t10.96.0.10
Address:\t10.96.0.10:53

Name:\tinv.default.svc.cluster.local
Address: 10.103.51.48

Non-authoritative answer:

"""


# busybox 1.29+ nslookup against CoreDNS: authoritative for cluster.local (no "Non-authoritative
# answer:"), an A answer, then the AAAA query's empty answer (as in kubernetes/website#24020).
NSLOOKUP_COREDNS = """Server:\t\t10.96.0.10
Address:\t10.96.0.10:53

Name:\tinv.default.svc.cluster.local
Address: 10.103.51.48

*** Can't find inv.default.svc.cluster.local: No answer

"""


NSLOOKUP_DOWN = ";; connection timed out; no servers could be reached\n\nnslookup: write to '10.96.0.10': Connection refused\n"


NSLOOKUP_NXDOMAIN = ("Server:\t\t10.0.2.3\nAddress:\t10.0.2.3:53\n\n"
                     "** server can't find inv.default.svc.cluster.local: NXDOMAIN\n\n"
                     "** server can't find inv.default.svc.cluster.local: NXDOMAIN\n\n")


WGET_S = """  HTTP/1.1 200 OK
  Server: inv/0.1 Python/3.7.9
  Date: Tue, 24 Nov 2026 15:38:13 GMT
  Content-Type: application/json
  Content-Length: 17
  X-Served-By: can-inventory-756c87dc9f-lmxcp
  
  HTTP/1.1 200 OK
  Server: inv/0.1 Python/3.7.9
  X-Served-By: can-inventory-756c87dc9f-b45ns
  
wget: can't connect to remote host (10.103.51.48): Connection refused
"""


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
