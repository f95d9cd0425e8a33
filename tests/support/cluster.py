"""API-server JSON (as `kubectl get -o json` shows it) for the cluster states the lab transcript
walks through (lab7-orchestration.md, section 3-5): names, images, reasons and messages are taken
from that transcript; the object shapes are Kubernetes 1.15's core/v1 fields."""
from __future__ import annotations
import datetime
import shutil
import pytest
import yaml
from labkit import settings as settings_mod
from tests.support.env import REPO

NODE = "ip-10-0-0-195"


def node(name=NODE, ready=True, ip="10.0.0.195", taints=None, master=True, version="v1.15.0"):
    message = ("kubelet is posting ready status" if ready else
               "runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
               "message:docker: network plugin is not ready: cni config uninitialized")
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if master:
        labels["node-role.kubernetes.io/master"] = ""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"podCIDR": "10.32.0.0/24", **({"taints": taints} if taints is not None else {})},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "KubeletReady" if ready else "KubeletNotReady", "message": message},
            ],
            "nodeInfo": {"kubeletVersion": version, "containerRuntimeVersion": "docker://18.9.9"},
        },
    }


MASTER_TAINT = {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def _container(name, image, ready, state):
    return {"name": name, "image": image, "ready": ready, "restartCount": 0, "state": state}


def pod(name, labels, containers, phase="Running", node_name=NODE, restarts=0):
    """containers: [(name, image, ready, state)] with state like {"running": {...}}."""
    statuses = [_container(*c) for c in containers] if phase != "Pending" else []
    for s in statuses:
        s["restartCount"] = restarts
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": {**({"nodeName": node_name} if phase != "Pending" else {}),  # unscheduled: no nodeName
                 "containers": [{"name": c[0], "image": c[1]} for c in containers]},
        "status": {"phase": phase, "containerStatuses": statuses},
    }


RUNNING = {"running": {"startedAt": "2019-07-11T19:11:40Z"}}
COREDNS_IMAGE = "k8s.gcr.io/coredns:1.3.1"
WEAVE_IMAGES = ("docker.io/weaveworks/weave-kube:2.8.1", "docker.io/weaveworks/weave-npc:2.8.1")


def coredns(suffix, ready=True, phase="Running", waiting=None, restarts=0):
    state = {"waiting": {"reason": waiting}} if waiting else RUNNING
    return pod(f"coredns-5c98db65d4-{suffix}", {"k8s-app": "kube-dns", "pod-template-hash": "5c98db65d4"},
               [("coredns", COREDNS_IMAGE, ready, state)], phase=phase, restarts=restarts)


def weave(suffix="xjfwm", ready=(True, True), waiting=None, node_name=NODE):
    states = [{"waiting": {"reason": waiting}} if waiting else RUNNING, RUNNING]
    return pod(f"weave-net-{suffix}", {"name": "weave-net"},
               [("weave", WEAVE_IMAGES[0], ready[0], states[0]), ("weave-npc", WEAVE_IMAGES[1], ready[1], states[1])],
               node_name=node_name)


def control_plane():
    out = []
    for comp, image in (("etcd", "k8s.gcr.io/etcd:3.3.10"), ("kube-apiserver", "k8s.gcr.io/kube-apiserver:v1.15.0"),
                        ("kube-controller-manager", "k8s.gcr.io/kube-controller-manager:v1.15.0"),
                        ("kube-scheduler", "k8s.gcr.io/kube-scheduler:v1.15.0")):
        out.append(pod(f"{comp}-{NODE}", {"component": comp, "tier": "control-plane"}, [(comp, image, True, RUNNING)]))
    out.append(pod("kube-proxy-z2wln", {"k8s-app": "kube-proxy"}, [("kube-proxy", "k8s.gcr.io/kube-proxy:v1.15.0", True, RUNNING)]))
    return out


def after_init():
    """`kubectl get pods --all-namespaces` right after kubeadm init: CoreDNS Pending, no Weave."""
    return [node(ready=False, taints=[MASTER_TAINT, NOT_READY_TAINT])], \
        control_plane() + [coredns("jklpz", False, "Pending"), coredns("vkqkj", False, "Pending")]


def weave_starting():
    """Seconds after applying Weave Net: weave-net 1/2, CoreDNS still Pending."""
    return [node(ready=False, taints=[NOT_READY_TAINT])], \
        control_plane() + [coredns("jklpz", False, "Pending"), coredns("vkqkj", False, "Pending"),
                           weave(ready=(False, True))]


def ready():
    """The end of section 5: weave-net 2/2, both CoreDNS pods 1/1 Running, node Ready."""
    return [node(ready=True, taints=None)], \
        control_plane() + [coredns("jklpz"), coredns("vkqkj"), weave()]


FAILED_SCHEDULING = [
    {"type": "Warning", "reason": "FailedScheduling", "count": 3, "lastTimestamp": "2019-07-11T19:10:38Z",
     "involvedObject": {"kind": "Pod", "name": "coredns-5c98db65d4-jklpz", "namespace": "kube-system"},
     "message": "0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate."},
    {"type": "Normal", "reason": "SuccessfulCreate", "lastTimestamp": "2019-07-11T19:04:00Z",
     "involvedObject": {"kind": "ReplicaSet", "name": "coredns-5c98db65d4", "namespace": "kube-system"},
     "message": "Created pod: coredns-5c98db65d4-vkqkj"},
    {"type": "Warning", "reason": "FailedScheduling", "lastTimestamp": "2019-07-11T19:10:30Z",
     "involvedObject": {"kind": "Pod", "name": "coredns-5c98db65d4-vkqkj", "namespace": "kube-system"},
     "message": "0/1 nodes are available: 1 node(s) had taints that the pod didn't tolerate."},
]


# weave-daemonset-k8s-1.11.yaml of Weave Net 2.8.1 (the bundle's release asset), abridged to the objects and
# fields that matter here: a v1 List; the DaemonSet's weave container has HOSTNAME and INIT_CONTAINER only.
WEAVE_MANIFEST = """apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: weave-net
      labels:
        name: weave-net
      namespace: kube-system
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: weave-net
      labels:
        name: weave-net
      namespace: kube-system
    spec:
      minReadySeconds: 5
      selector:
        matchLabels:
          name: weave-net
      template:
        metadata:
          labels:
            name: weave-net
        spec:
          containers:
            - name: weave
              command:
                - /home/weave/launch.sh
              env:
                - name: HOSTNAME
                  valueFrom:
                    fieldRef:
                      apiVersion: v1
                      fieldPath: spec.nodeName
                - name: INIT_CONTAINER
                  value: 'true'
              image: 'docker.io/weaveworks/weave-kube:2.8.1'
            - name: weave-npc
              env:
                - name: HOSTNAME
                  valueFrom:
                    fieldRef:
                      apiVersion: v1
                      fieldPath: spec.nodeName
              image: 'docker.io/weaveworks/weave-npc:2.8.1'
          hostNetwork: true
          initContainers:
            - name: weave-init
              command:
                - /home/weave/init.sh
              image: 'docker.io/weaveworks/weave-kube:2.8.1'
          serviceAccountName: weave-net
"""


KEY = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpzZWNyZXQ="  # stands in for client-key-data


# The shape of /etc/kubernetes/admin.conf written by kubeadm 1.15 (lab transcript, section 4).
ADMIN_CONF = f"""apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1DQQ==
    server: https://10.0.2.15:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {{}}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tLS1DRVJU
    client-key-data: {KEY}
"""


TOKEN = "abcdef.0123456789abcdef"


HASH = "sha256:519f3ae3c5824232f225cfcb9be036422c952c0c454d4596f3779652b889b055"  # the lab transcript's form


def make_ca_pem() -> str:
    """A self-signed CA certificate like kubeadm's (CN kubernetes, RSA 2048, ten years), as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


CA_PEM = make_ca_pem()


@pytest.fixture
def s(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return settings_mod.load(tmp_path, {"LABKIT_WORKERS": "2"})
