"""Decisions cluster.init/reset take from a node's answers, and the node-side command lines."""
from __future__ import annotations

import hashlib
import subprocess

import pytest

from labkit.backends import Local
from labkit.bundle import checksums
from labkit.cluster import node as nodeops
from labkit.errors import LabkitError

FRESH = "kubeadm=v1.15.12\ndocker=18.09.9\nadmin_conf=\nkubelet_conf=\nmanifests=0\netcd_data=\ncni_conf=0\n"
INITIALIZED = ("kubeadm=v1.15.12\ndocker=18.09.9\nadmin_conf=yes\nkubelet_conf=yes\nmanifests=4\n"
               "etcd_data=yes\ncni_conf=1\n")
HALFWAY = "kubeadm=v1.15.12\ndocker=18.09.9\nadmin_conf=\nkubelet_conf=\nmanifests=4\netcd_data=yes\ncni_conf=0\n"


def test_facts_script_answers_are_parsed_from_a_real_shell_run(tmp_path):
    # The script itself, run by a real sh on this machine (no kubeadm here): every key answers.
    out = subprocess.run(["sh", "-c", nodeops.FACTS_SCRIPT], capture_output=True, text=True, check=True).stdout
    keys = {line.split("=", 1)[0] for line in out.splitlines()}
    assert keys == {"kubeadm", "docker", *nodeops.KUBEADM_FILES, "manifests", "etcd_data", "cni_conf", "machine_id",
                    "product_uuid"}
    facts = nodeops.Facts.parse(out)
    assert facts.admin_conf is False and facts.kubeadm == ""


def test_fresh_node_is_initialized():
    assert nodeops.init_action(nodeops.Facts.parse(FRESH), "v1.15.12", "ubuntu") == "init"


def test_initialized_node_is_skipped():
    facts = nodeops.Facts.parse(INITIALIZED)
    assert facts.initialized and facts.manifests == 4 and facts.cni_conf == 1
    assert nodeops.init_action(facts, "v1.15.12", "ubuntu") == "skip"


@pytest.mark.parametrize("answer, words, fix", [
    (HALFWAY, "remains of an unfinished kubeadm init", "invoke cluster.reset, then invoke cluster.init"),
    (FRESH.replace("kubeadm=v1.15.12", "kubeadm="), "kubeadm on ubuntu is not installed", "invoke vm.provision --step kubernetes"),
    (FRESH.replace("kubeadm=v1.15.12", "kubeadm=v1.15.0"), "kubeadm on ubuntu is v1.15.0, settings want v1.15.12", "--step kubernetes"),
    (FRESH.replace("docker=18.09.9", "docker="), "Docker is not running on ubuntu", "invoke vm.provision --step docker"),
])
def test_nodes_where_init_cannot_work_give_one_line_with_the_fix(answer, words, fix):
    with pytest.raises(LabkitError) as err:
        nodeops.init_action(nodeops.Facts.parse(answer), "v1.15.12", "ubuntu")
    assert words in err.value.message and fix in err.value.fix


@pytest.mark.parametrize("answer, action", [(FRESH, "skip"), (INITIALIZED, "reset"), (HALFWAY, "reset"),
                                            (FRESH.replace("cni_conf=0", "cni_conf=1"), "reset")])
def test_reset_only_when_kubeadm_left_something(answer, action):
    assert nodeops.reset_action(nodeops.Facts.parse(answer)) == action


def test_reset_without_kubeadm_says_how_to_get_it_back():
    with pytest.raises(LabkitError, match="no kubeadm"):
        nodeops.reset_action(nodeops.Facts.parse(INITIALIZED.replace("kubeadm=v1.15.12", "kubeadm=")))


def test_bootstrap_tokens_are_hidden_from_kubeadm_output():
    # The lines kubeadm init prints (lab transcript, section 3).
    lines = ["[bootstrap-token] Using token: 4s5lh3.7sie575dom4nhpu2",
             "kubeadm join 10.0.0.195:6443 --token 4s5lh3.7sie575dom4nhpu2 \\",
             "[certs] Generating \"etcd/ca\" certificate and key"]
    shown = [nodeops.redact(line) for line in lines]
    assert all("4s5lh3" not in s and "7sie575dom4nhpu2" not in s for s in shown)
    assert shown[0] == "[bootstrap-token] Using token: <token hidden>"
    assert shown[2] == lines[2]


@pytest.mark.parametrize("ref, short", [
    ("docker.io/weaveworks/weave-kube:2.8.1", "weaveworks/weave-kube:2.8.1"),
    ("'weaveworks/weave-npc:2.8.1'", "weaveworks/weave-npc:2.8.1"),
    ("docker.io/library/busybox:1.31.0", "busybox:1.31.0"),
    ("busybox", "busybox:latest"),
    ("k8s.gcr.io/etcd:3.3.10", "k8s.gcr.io/etcd:3.3.10"),
    ("localhost:5000/inv", "localhost:5000/inv:latest"),
])
def test_image_references_compare_the_way_docker_names_them(ref, short):
    assert nodeops.normalize_ref(ref) == short


def test_missing_images_against_docker_images_output():
    wanted = ["k8s.gcr.io/kube-apiserver:v1.15.12", "k8s.gcr.io/etcd:3.3.10", "k8s.gcr.io/coredns:1.3.1",
              "docker.io/weaveworks/weave-kube:2.8.1"]
    listing = "k8s.gcr.io/kube-apiserver:v1.15.12\nk8s.gcr.io/etcd:3.3.10\nweaveworks/weave-kube:2.8.1\n"
    assert nodeops.missing_images(wanted, listing) == ["k8s.gcr.io/coredns:1.3.1"]


def test_manifest_images_reads_every_image_line():
    manifest = """
      containers:
        - name: weave
          command:
            - /home/weave/launch.sh
          image: 'weaveworks/weave-kube:2.8.1'
        - name: weave-npc
          image: "weaveworks/weave-npc:2.8.1"
      initContainers:
        - image: weaveworks/weave-kube:2.8.1
    """
    assert nodeops.manifest_images(manifest) == ["weaveworks/weave-kube:2.8.1", "weaveworks/weave-npc:2.8.1"]


def test_checksums_selection_and_node_side_verification(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "manifests").mkdir(parents=True)
    manifest = bundle / "manifests/weave-daemonset-k8s-1.11.yaml"
    manifest.write_text("kind: DaemonSet\n")
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    (bundle / "CHECKSUMS").write_text(
        f"weave-manifest sha256 {digest} manifests/weave-daemonset-k8s-1.11.yaml\n"
        f"busybox sha256 {'0' * 64} images/busybox.tar\n")
    # A real shell runs sha256sum here, as it would on the node.
    path = nodeops.verify_on_node(Local(), str(bundle), nodeops.WEAVE_MANIFEST_PREFIX, "Weave Net manifest")
    assert path == str(manifest)
    manifest.write_text("kind: DaemonSet # edited\n")
    with pytest.raises(LabkitError) as err:
        nodeops.verify_on_node(Local(), str(bundle), nodeops.WEAVE_MANIFEST_PREFIX, "Weave Net manifest")
    assert "weave-manifest" in err.value.message and "corrupt (sha256 mismatch)" in err.value.message
    assert "invoke bundle.fetch --only weave-manifest" in err.value.fix
    manifest.unlink()
    with pytest.raises(LabkitError, match="is missing in the VM"):
        nodeops.verify_on_node(Local(), str(bundle), nodeops.WEAVE_MANIFEST_PREFIX, "Weave Net manifest")


def test_selecting_an_artifact_that_is_absent_or_ambiguous_is_an_error():
    sums = checksums.parse("a sha256 00 manifests/weave-a.yaml\nb sha256 11 manifests/weave-b.yaml\n# c\n")
    with pytest.raises(LabkitError, match="lists 2 Weave"):
        nodeops.select(sums, "manifests/weave", "Weave manifests")
    with pytest.raises(LabkitError, match="lists no"):
        nodeops.select(sums, "k8s/", "Kubernetes tarballs")


def test_run_logged_shows_lines_while_the_command_runs_and_hides_tokens(tmp_path):
    log = tmp_path / "init.log"
    script = (f"for i in 1 2 3; do echo \"[phase] step $i\" >>{log}; sleep 0.3; done; "
              f"echo 'kubeadm join 10.0.0.195:6443 --token abcdef.0123456789abcdef' >>{log}")
    shown = []

    class NoSudo(Local):  # run_logged tails with sudo; this machine's tests run as the user they are
        def run(self, argv, timeout=30, stdin=None):
            argv = list(argv)
            return super().run(argv[2:] if argv[:2] == ["sudo", "-n"] else argv, timeout, stdin)

    result = nodeops.run_logged(NoSudo(), ["sh", "-c", script], str(log), shown.append, timeout=30, poll=0.2)
    assert result.ok
    assert shown[:3] == ["[phase] step 1", "[phase] step 2", "[phase] step 3"]
    assert shown[3] == "kubeadm join 10.0.0.195:6443 --token <token hidden>"
    assert len(shown) == 4  # every line exactly once


def _weave_env(applied: str, container: str) -> list:
    import json

    ds = next(o for o in json.loads(applied)["items"] if o["kind"] == "DaemonSet")
    return next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == container).get("env")


def test_the_weave_manifest_gets_the_pod_cidr_as_ipalloc_range():
    import json

    from tests.t0.cluster_objects import WEAVE_MANIFEST

    applied = nodeops.weave_with_range(WEAVE_MANIFEST, "10.200.0.0/16")
    assert [o["kind"] for o in json.loads(applied)["items"]] == ["ServiceAccount", "DaemonSet"]
    env = _weave_env(applied, "weave")
    assert [e["name"] for e in env] == ["HOSTNAME", "INIT_CONTAINER", "IPALLOC_RANGE"]
    assert env[-1] == {"name": "IPALLOC_RANGE", "value": "10.200.0.0/16"}
    assert [e["name"] for e in _weave_env(applied, "weave-npc")] == ["HOSTNAME"]  # npc has no allocator
    # Applied again (or to a manifest that already sets it): replaced, never listed twice.
    again = nodeops.weave_with_range(applied, "10.32.0.0/12")
    assert [e for e in _weave_env(again, "weave") if e["name"] == "IPALLOC_RANGE"] == [
        {"name": "IPALLOC_RANGE", "value": "10.32.0.0/12"}]


def test_a_weave_manifest_as_a_yaml_stream_works_too_and_one_without_the_daemonset_is_refused():
    import yaml

    from tests.t0.cluster_objects import WEAVE_MANIFEST

    stream = yaml.safe_dump_all(yaml.safe_load(WEAVE_MANIFEST)["items"])
    assert _weave_env(nodeops.weave_with_range(stream, "10.32.0.0/12"), "weave")[-1]["value"] == "10.32.0.0/12"
    with pytest.raises(LabkitError, match="no weave-net DaemonSet"):
        nodeops.weave_with_range("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: weave-net}\n", "10.32.0.0/12")


def test_reset_without_kubeadm_names_the_node_and_what_it_holds():
    half_join = "kubeadm=\ndocker=18.09.9\nbootstrap_kubelet_conf=yes\nca_crt=yes\n"
    with pytest.raises(LabkitError) as err:
        nodeops.reset_action(nodeops.Facts.parse(half_join), "worker-1")
    assert err.value.message == ("worker-1 has kubeadm's files (/etc/kubernetes/bootstrap-kubelet.conf, "
                                 "/etc/kubernetes/pki/ca.crt) but no kubeadm to remove them")
    assert err.value.fix == "run invoke vm.provision --node worker-1 --step kubernetes, then invoke cluster.reset"
