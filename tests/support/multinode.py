"""A two-node lab (master `ubuntu` + `worker-1`, LABKIT_WORKERS=1) as the Kubernetes 1.15 API returns it.

Built on tests/support/transcript.py (the lab transcript's objects and values), changed the way kubeadm
join and the scheduler change them:
  * `kubectl get nodes -o json` prints a `List` of Node objects; a joined worker carries the kubelet's
    well-known labels and kubeadm's cri-socket annotation, no node-role label (kubeadm 1.15 only labels
    the control plane), and its own podCIDR; the master keeps node-role.kubernetes.io/master:NoSchedule.
    Field names: k8s.io/api v0.15 core/v1 types.go (NodeSpec.Taints, NodeStatus.Addresses/Conditions/
    NodeInfo); label names: k8s.io/api v0.15 core/v1 well_known_labels.go; annotation:
    cmd/kubeadm/app/constants AnnotationKubeadmCRISocket.
  * with the master tainted, the scheduler puts every lab pod on the worker; weave IPAM gives each peer
    its own part of 10.32.0.0/12, so pods there get 10.44.0.x (CoreDNS, started before the join, stays
    on the master at 10.32.0.2/.3); kube-proxy and weave-net run one pod per node (DaemonSets).
"""
from __future__ import annotations

import copy

from tests.support import transcript as tx

MASTER, MASTER_IP = tx.NODE, tx.NODE_IP
WORKER, WORKER_IP = "worker-1", "192.168.56.11"
ENV = {"LABKIT_WORKERS": "1"}
CLIENT_IP, WEB_IP, INV_A_IP, INV_B_IP = "10.44.0.1", "10.44.0.2", "10.44.0.3", "10.44.0.4"
NAT_IP = "10.0.2.15"  # VirtualBox's NAT address, the same on every VM


def node(name: str, ip: str, master: bool, pod_cidr: str) -> dict:
    n = tx.node()
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if master:
        labels["node-role.kubernetes.io/master"] = ""
    n["metadata"] = {"name": name, "labels": labels, "annotations": {
        "kubeadm.alpha.kubernetes.io/cri-socket": "/var/run/dockershim.sock", "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true"}}
    n["spec"] = {"podCIDR": pod_cidr}
    if master:
        n["spec"]["taints"] = [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]
    n["status"]["addresses"] = [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
    return n


def nodes_list() -> dict:
    """`kubectl get nodes -o json`."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "", "selfLink": ""},
            "items": [node(MASTER, MASTER_IP, True, "10.32.0.0/24"), node(WORKER, WORKER_IP, False, "10.32.1.0/24")]}


def _move(pod: dict, node_name: str, host_ip: str, ip=None) -> dict:
    pod["spec"]["nodeName"] = node_name
    pod["status"]["hostIP"] = host_ip
    if pod["spec"].get("hostNetwork"):
        pod["status"]["podIP"] = host_ip
    elif ip:
        pod["status"]["podIP"] = ip
    return pod


def snapshot(tainted: bool = True):
    snap = tx.snapshot()
    snap.nodes = nodes_list()["items"]
    if not tainted:
        snap.nodes[0]["spec"].pop("taints")
    system = snap.pods["kube-system"]
    for kind in ("weave-net", "kube-proxy"):  # DaemonSets: a second pod on the worker
        first = next(p for p in system if p["metadata"]["name"].startswith(kind))
        second = _move(copy.deepcopy(first), WORKER, WORKER_IP)
        second["metadata"]["name"] = {"weave-net": "weave-net-7kq2d", "kube-proxy": "kube-proxy-p8x4n"}[kind]
        system.append(second)
    ips = {"client": CLIENT_IP, "web": WEB_IP, tx.INV_A: INV_A_IP, tx.INV_B: INV_B_IP}
    for p in snap.pods["default"]:
        _move(p, WORKER, WORKER_IP, ips[p["metadata"]["name"]])
    for a in snap.endpoints["subsets"][0]["addresses"]:
        a["ip"], a["nodeName"] = ips[a["targetRef"]["name"]], WORKER
    return snap


def weave_connections(lines) -> str:
    """weave's /status/connections text, laid out by Weave Net 2.8.1's connectionsTemplate
    (prog/weaver/http.go): direction, %-21v address, %-11v state, info, attrs."""
    return "".join(f"{'->' if out else '<-'} {addr:<21} {state:<11} {info} {attrs}\n"
                   for out, addr, state, info, attrs in lines)


def established(peer_ip: str, peer: str, outbound=True, mode="fastdp") -> tuple:
    port = 6783 if outbound else 44962
    return (outbound, f"{peer_ip}:{port}", "established", f"{mode:<6} 4a:0e:1b:7c:23:91({peer})", "mtu=1376")


def failed(peer_ip: str, error: str) -> tuple:
    return (True, f"{peer_ip}:6783", "failed", f"{error}, retry: 2019-07-11 19:20:31.412875 +0000 UTC m=+62.9", "")
