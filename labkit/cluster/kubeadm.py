"""The kubeadm configuration for `kubeadm init`, rendered from settings. Pure: no VM needed.

Every value that kubeadm 1.15 would otherwise guess is pinned here, because its guesses go wrong
in a VirtualBox classroom:
  * kubernetesVersion: without it kubeadm fetches https://dl.k8s.io/release/stable-1.txt;
  * advertiseAddress and the kubelet's node-ip: without them both pick the NAT address
    (10.0.2.15, the same on every VirtualBox VM), which breaks kubectl logs/exec;
  * the API server's bind-address and the kubelet's address: 6443 and 10250 listen on the
    host-only address only (by default they listen on every interface, NAT included);
  * the service subnet: kube-dns gets its 10th address (10.96.0.10 with 10.96.0.0/12);
  * the kubelet's cgroup driver: the one provision/files/docker-daemon.json gives Docker.
"""
from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

from labkit.errors import LabkitError
from labkit.kube.objects import kube_dns_ip

API_VERSION = "kubeadm.k8s.io/v1beta2"  # introduced in 1.15; v1beta1 is the deprecated one
KUBELET_API_VERSION = "kubelet.config.k8s.io/v1beta1"
API_PORT = 6443
CRI_SOCKET = "/var/run/dockershim.sock"
# kubeadm 1.15's default registry: the names the bundle's control-plane images are tagged with.
IMAGE_REPOSITORY = "k8s.gcr.io"
GUEST_CONFIG = "/etc/labkit/kubeadm.yaml"
DOCKER_DAEMON_JSON = Path("provision", "files", "docker-daemon.json")
EXACT_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")


def kubernetes_version(settings) -> str:
    version = str(settings.versions["kubernetes"])
    if not EXACT_VERSION.match(version):
        raise LabkitError(f"versions.kubernetes is '{version}', which kubeadm would look up on the internet",
                          "use an exact release like v1.15.12")
    return version


def service_network(settings) -> ipaddress.IPv4Network:
    return _network(settings, "service_cidr")


def pod_network(settings) -> ipaddress.IPv4Network:
    return _network(settings, "pod_cidr")


def _network(settings, key: str) -> ipaddress.IPv4Network:
    raw = settings.network[key]
    try:
        net = ipaddress.IPv4Network(raw)
    except ValueError:
        raise LabkitError(f"network.{key} '{raw}' is not an IPv4 network with its host bits zero",
                          "use a value like 10.96.0.0/12") from None
    if net.num_addresses < 256:
        raise LabkitError(f"network.{key} {net} is too small for a cluster", "use a /24 or larger, like 10.96.0.0/12")
    return net


def dns_ip(settings) -> str:
    """The ClusterIP kube-dns gets: 10.96.0.10 for 10.96.0.0/12."""
    return kube_dns_ip(service_network(settings))


def api_server_url(node) -> str:
    return f"https://{node.ip}:{API_PORT}"


def cgroup_driver(root: Path) -> str:
    """The cgroup driver provision/files/docker-daemon.json gives Docker; the kubelet must match."""
    path = Path(root) / DOCKER_DAEMON_JSON
    try:
        opts = json.loads(path.read_text(encoding="utf-8")).get("exec-opts", [])
    except (OSError, ValueError) as exc:
        raise LabkitError(f"cannot read {DOCKER_DAEMON_JSON}: {exc}", "restore it from git") from None
    for opt in opts:
        if opt.startswith("native.cgroupdriver="):
            return opt.split("=", 1)[1]
    return "cgroupfs"  # Docker's default


def check_networks(settings) -> None:
    services, pods = service_network(settings), pod_network(settings)
    if services.overlaps(pods):
        raise LabkitError(f"network.service_cidr {services} overlaps network.pod_cidr {pods}",
                          "keep the defaults (10.96.0.0/12 and 10.32.0.0/12) or pick disjoint ranges")
    for node in settings.nodes:
        ip = ipaddress.IPv4Address(node.ip)
        if ip in services or ip in pods:
            raise LabkitError(f"node {node.name}'s address {ip} is inside the cluster's service or pod range",
                              "pick node addresses in 192.168.56.0/21 and cluster ranges elsewhere")


def node_registration(settings, node) -> dict:
    """nodeRegistration for kubeadm init (the master) and kubeadm join (a worker) alike."""
    return {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        # node-ip: the host-only address, never the NAT one (10.0.2.15 on every VirtualBox VM).
        # address: the kubelet API (10250, used by kubectl logs/exec via InternalIP) on the host-only
        # address only. Flags, not KubeletConfiguration: that one is shared by every node that joins.
        "kubeletExtraArgs": {"node-ip": node.ip, "address": node.ip},
    }


def documents(settings, node=None) -> list[dict]:
    """InitConfiguration, ClusterConfiguration and KubeletConfiguration for `node` (default: the master)."""
    node = node or settings.master
    version = kubernetes_version(settings)
    check_networks(settings)
    init = {
        "apiVersion": API_VERSION,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": node.ip, "bindPort": API_PORT},
        "nodeRegistration": node_registration(settings, node),
    }
    cluster = {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": version,
        "clusterName": "kubernetes",
        "imageRepository": IMAGE_REPOSITORY,
        # The laptop reaches the API server at the host-only address, by IP or by the node's name.
        # bind-address: 6443 on the host-only address only, not on NAT. Nothing needs it elsewhere: kubeadm
        # 1.15 points the liveness probe and every kubeconfig at the advertise address (this same IP).
        "apiServer": {"certSANs": [node.ip, node.name, "localhost", "127.0.0.1"],
                      "extraArgs": {"bind-address": node.ip}},
        "networking": {
            "serviceSubnet": str(service_network(settings)),
            "podSubnet": str(pod_network(settings)),
            "dnsDomain": settings.network["dns_domain"],
        },
    }
    kubelet = {
        "apiVersion": KUBELET_API_VERSION,
        "kind": "KubeletConfiguration",
        "cgroupDriver": cgroup_driver(settings.root),
        "clusterDNS": [dns_ip(settings)],
        "clusterDomain": settings.network["dns_domain"],
    }
    return [init, cluster, kubelet]


def render(settings, node=None) -> str:
    import yaml

    header = "# kubeadm configuration (v1beta2, Kubernetes 1.15), rendered by labkit cluster.init from settings\n"
    return header + yaml.safe_dump_all(documents(settings, node), sort_keys=False, default_flow_style=False)
