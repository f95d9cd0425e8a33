"""The kubeadm configuration cluster.init renders: field by field, for default and overridden settings."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from labkit import settings as settings_mod
from labkit.cluster import kubeadm
from labkit.errors import LabkitError

REPO = Path(__file__).resolve().parents[2]

# Field names of kubeadm.k8s.io/v1beta2 (Kubernetes 1.15) and kubelet.config.k8s.io/v1beta1 that this
# renderer may use, from the published v1beta2 reference: a typo (advertiseAdress) would be ignored
# silently by kubeadm 1.15, so we catch it here.
V1BETA2 = {
    "InitConfiguration": {"apiVersion", "kind", "bootstrapTokens", "nodeRegistration", "localAPIEndpoint", "certificateKey"},
    "ClusterConfiguration": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint",
                             "apiServer", "controllerManager", "scheduler", "dns", "certificatesDir", "imageRepository",
                             "useHyperKubeImage", "featureGates", "clusterName"},
}
NESTED = {
    ("InitConfiguration", "nodeRegistration"): {"name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors"},
    ("InitConfiguration", "localAPIEndpoint"): {"advertiseAddress", "bindPort"},
    ("ClusterConfiguration", "networking"): {"serviceSubnet", "podSubnet", "dnsDomain"},
    ("ClusterConfiguration", "apiServer"): {"extraArgs", "extraVolumes", "certSANs", "timeoutForControlPlane"},
}


def load(env=None):
    return settings_mod.load(REPO, env or {})


def parsed(s):
    docs = list(yaml.safe_load_all(kubeadm.render(s)))
    return {d["kind"]: d for d in docs}


def test_default_settings_render_three_documents_kubeadm_1_15_understands():
    docs = parsed(load())
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    assert docs["InitConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta2"
    assert docs["ClusterConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta2"
    assert docs["KubeletConfiguration"]["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    for kind, allowed in V1BETA2.items():
        assert set(docs[kind]) <= allowed, f"{kind} has unknown fields {set(docs[kind]) - allowed}"
    for (kind, key), allowed in NESTED.items():
        assert set(docs[kind][key]) <= allowed, f"{kind}.{key} has unknown fields {set(docs[kind][key]) - allowed}"


def test_default_settings_pin_version_addresses_and_networks():
    s = load()
    docs = parsed(s)
    init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
    master = s.master
    assert cluster["kubernetesVersion"] == "v1.15.12" == s.versions["kubernetes"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": master.ip, "bindPort": 6443}
    assert init["nodeRegistration"]["name"] == master.name
    assert init["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": master.ip, "address": master.ip}
    assert init["nodeRegistration"]["criSocket"] == "/var/run/dockershim.sock"
    assert "10.0.2.15" not in kubeadm.render(s)  # VirtualBox's NAT address appears nowhere
    assert cluster["networking"] == {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.32.0.0/12",
                                     "dnsDomain": "cluster.local"}
    assert master.ip in cluster["apiServer"]["certSANs"]
    assert master.name in cluster["apiServer"]["certSANs"]
    assert cluster["imageRepository"] == "k8s.gcr.io"
    assert kubelet["clusterDNS"] == ["10.96.0.10"]
    assert kubelet["clusterDomain"] == "cluster.local"


def test_the_api_server_and_the_kubelet_listen_on_the_host_only_address_only():
    s = load()
    docs = parsed(s)
    # 6443 and 10250 otherwise listen on every interface (VirtualBox NAT included). kubeadm 1.15 probes the
    # API server at the advertise address and the kubelet's healthz stays on 127.0.0.1:10248.
    assert docs["ClusterConfiguration"]["apiServer"]["extraArgs"] == {"bind-address": s.master.ip}
    assert docs["InitConfiguration"]["localAPIEndpoint"]["advertiseAddress"] == s.master.ip
    assert docs["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]["address"] == s.master.ip
    # Per node (a kubelet flag), not in the KubeletConfiguration every joining node would download.
    assert "address" not in docs["KubeletConfiguration"] and "healthzBindAddress" not in docs["KubeletConfiguration"]


def test_kubelet_cgroup_driver_is_the_one_docker_is_given():
    daemon = json.loads((REPO / "provision/files/docker-daemon.json").read_text())
    want = next(o.split("=", 1)[1] for o in daemon["exec-opts"] if o.startswith("native.cgroupdriver="))
    assert parsed(load())["KubeletConfiguration"]["cgroupDriver"] == want


@pytest.mark.parametrize("content, driver", [
    ('{"exec-opts": ["native.cgroupdriver=cgroupfs"]}', "cgroupfs"),
    ('{"exec-opts": ["native.cgroupdriver=systemd"]}', "systemd"),
    ('{"log-driver": "json-file"}', "cgroupfs"),  # Docker's default when nothing is set
])
def test_cgroup_driver_follows_the_daemon_json(tmp_path, content, driver):
    shutil.copy(REPO / "settings.yaml", tmp_path / "settings.yaml")
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    (tmp_path / "provision/files/docker-daemon.json").write_text(content)
    s = settings_mod.load(tmp_path, {})
    assert parsed(s)["KubeletConfiguration"]["cgroupDriver"] == driver


def test_overridden_settings_flow_into_every_field():
    s = load({"LABKIT_NODES__0__IP": "192.168.57.30", "LABKIT_NODES__0__NAME": "lab-master",
              "LABKIT_NETWORK__SERVICE_CIDR": "10.100.0.0/16", "LABKIT_NETWORK__POD_CIDR": "10.244.0.0/16",
              "LABKIT_NETWORK__DNS_DOMAIN": "lab.local", "LABKIT_VERSIONS__KUBERNETES": "v1.15.11"})
    docs = parsed(s)
    init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.57.30"
    assert init["nodeRegistration"]["name"] == "lab-master"
    assert init["nodeRegistration"]["kubeletExtraArgs"]["node-ip"] == "192.168.57.30"
    assert cluster["apiServer"]["certSANs"][:2] == ["192.168.57.30", "lab-master"]
    assert init["nodeRegistration"]["kubeletExtraArgs"]["address"] == "192.168.57.30"
    assert cluster["apiServer"]["extraArgs"] == {"bind-address": "192.168.57.30"}
    assert cluster["kubernetesVersion"] == "v1.15.11"
    assert cluster["networking"] == {"serviceSubnet": "10.100.0.0/16", "podSubnet": "10.244.0.0/16", "dnsDomain": "lab.local"}
    assert kubelet["clusterDNS"] == ["10.100.0.10"] and kubelet["clusterDomain"] == "lab.local"
    assert kubeadm.api_server_url(s.master) == "https://192.168.57.30:6443"


def test_config_for_a_named_node_of_a_multi_node_settings_file(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path / "settings.yaml")
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    (tmp_path / "settings.local.yaml").write_text(
        "nodes:\n  - {name: master, ip: 192.168.56.10, role: master}\n  - {name: worker1, ip: 192.168.56.11, role: worker}\n")
    s = settings_mod.load(tmp_path, {})
    assert parsed(s)["InitConfiguration"]["nodeRegistration"]["name"] == "master"  # default: the master
    init = {d["kind"]: d for d in yaml.safe_load_all(kubeadm.render(s, s.node("worker1")))}["InitConfiguration"]
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.56.11"


@pytest.mark.parametrize("cidr, dns", [("10.96.0.0/12", "10.96.0.10"), ("10.100.0.0/16", "10.100.0.10"),
                                       ("172.20.0.0/24", "172.20.0.10")])
def test_kube_dns_gets_the_tenth_service_address(cidr, dns):
    assert kubeadm.dns_ip(load({"LABKIT_NETWORK__SERVICE_CIDR": cidr})) == dns


@pytest.mark.parametrize("label", ["stable-1", "stable", "latest", "v1.15", "1.15.12"])
def test_a_version_label_that_needs_the_internet_is_refused(label):
    with pytest.raises(LabkitError) as err:
        kubeadm.render(load({"LABKIT_VERSIONS__KUBERNETES": label}))
    assert f"'{label}'" in err.value.line() and "Fix: use an exact release like v1.15.12" in err.value.line()


@pytest.mark.parametrize("env, words", [
    ({"LABKIT_NETWORK__SERVICE_CIDR": "10.96.0.1/12"}, "network.service_cidr '10.96.0.1/12' is not an IPv4 network"),
    ({"LABKIT_NETWORK__SERVICE_CIDR": "banana"}, "network.service_cidr 'banana'"),
    ({"LABKIT_NETWORK__POD_CIDR": "10.96.0.0/16"}, "overlaps network.pod_cidr"),
    ({"LABKIT_NETWORK__SERVICE_CIDR": "10.96.0.0/28"}, "too small"),
])
def test_bad_networks_are_one_line_errors(env, words):
    with pytest.raises(LabkitError) as err:
        kubeadm.render(load(env))
    line = err.value.line()
    assert words in line and "Fix:" in line and "\n" not in line
