"""The cluster.* tasks as a user runs them: `invoke` in a project directory, no VM."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import dryrun

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path):
    """A checkout of the project's user-facing files (tasks.py, settings, provision/) in tmp."""
    for name in ("tasks.py", "settings.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return tmp_path


def invoke(project, *args, env=None):
    # PATH holds only the venv: no vagrant, ssh or kubectl, so a dry run provably needs no VM.
    # PYTHONPATH: this checkout's labkit, not the one the venv was installed from (its editable finder)
    run_env = {"PATH": str(BIN), "HOME": str(project), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([str(BIN / "invoke"), *args], cwd=project, env=run_env,
                          capture_output=True, text=True, timeout=60)


def test_init_dry_run_prints_the_config_and_the_commands_without_a_vm(project):
    out = invoke(project, "cluster.init", "--dry-run")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    config = dryrun.described(text, "Initializing the control plane on ubuntu (kubeadm init)").split(":\n", 1)[1]
    kinds = [d["kind"] for d in yaml.safe_load_all(config.split("\nubuntu:")[0])]
    assert kinds == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
    assert "kubeadm init --config /etc/labkit/kubeadm.yaml" in text
    assert "kubeadm config images list --config /etc/labkit/kubeadm.yaml" in text
    assert "remove the taint node-role.kubernetes.io/master:NoSchedule from ubuntu" in text
    assert ("ubuntu: /opt/labkit/bundle/manifests/weave-daemonset-k8s-1.11.yaml with IPALLOC_RANGE=10.32.0.0/12 "
            "on the weave container, piped to sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -") in text
    assert "kube-dns has ClusterIP 10.96.0.10" in text
    assert not (project / ".labkit").exists()  # nothing written


def test_init_dry_run_follows_overrides_and_a_multi_node_setup(project):
    (project / "settings.local.yaml").write_text(
        "nodes:\n  - {name: master, ip: 192.168.56.21, role: master}\n  - {name: worker1, ip: 192.168.56.22, role: worker}\n")
    out = invoke(project, "cluster.init", "--dry-run", env={"LABKIT_NETWORK__SERVICE_CIDR": "10.100.0.0/16"})
    assert out.returncode == 0, out.stderr
    assert "advertiseAddress: 192.168.56.21" in out.stdout
    assert "put the taint node-role.kubernetes.io/master:NoSchedule back on master if it is gone" in out.stdout
    assert "kube-dns has ClusterIP 10.100.0.10" in out.stdout


def test_init_dry_run_reads_the_weave_path_from_the_bundle_checksums(project):
    # A name other than the fallback (WEAVE_MANIFEST_DEFAULT), so only CHECKSUMS can have put it there.
    (project / "bundle").mkdir()
    (project / "bundle/CHECKSUMS").write_text(f"weave-manifest sha256 {'a' * 64} manifests/weave-net-2.8.1.yaml\n")
    out = invoke(project, "cluster.init", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "ubuntu: /opt/labkit/bundle/manifests/weave-net-2.8.1.yaml with IPALLOC_RANGE" in out.stdout
    assert "weave-daemonset-k8s-1.11.yaml" not in out.stdout


def test_reset_dry_run_lists_nodes_workers_first(project):
    (project / "settings.local.yaml").write_text(
        "nodes:\n  - {name: master, ip: 192.168.56.21, role: master}\n  - {name: worker1, ip: 192.168.56.22, role: worker}\n")
    out = invoke(project, "cluster.reset", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.index("worker1:") < out.stdout.index("master:")
    assert "kubeadm reset --force" in out.stdout and "delete " in out.stdout


@pytest.mark.parametrize("args, env, line", [
    (["cluster.status"], {}, "labkit: no kubeconfig at "),
    (["cluster.init", "--dry-run"], {"LABKIT_VERSIONS__KUBERNETES": "stable-1"},
     "labkit: versions.kubernetes is 'stable-1', which kubeadm would look up on the internet. Fix: use an exact release like v1.15.12"),
    (["cluster.init", "--dry-run"], {"LABKIT_NETWORK__POD_CIDR": "10.96.0.0/16"}, "overlaps network.pod_cidr"),
])
def test_user_mistakes_are_one_line_without_traceback(project, args, env, line):
    out = invoke(project, *args, env=env)
    assert out.returncode == 1
    assert line in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_cluster_tasks_are_listed_with_help(project):
    out = invoke(project, "--list")
    for task in ("cluster.init", "cluster.status", "cluster.reset"):
        assert task in out.stdout
    helped = invoke(project, "cluster.init", "--help").stdout
    assert "--dry-run" in helped and "--timeout" in helped


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "10m"])
def test_a_bad_timeout_is_one_line_from_the_real_cli(value):
    from tests.app_helpers import invoke as invoke_at

    out = invoke_at(REPO, "cluster.init", "--dry-run", f"--timeout={value}")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"labkit: --timeout '{value}' is not a positive whole number of seconds. "
                                  "Fix: give one like --timeout 600")


def test_a_good_timeout_reaches_the_plan(project):
    out = invoke(project, "cluster.init", "--dry-run", "--timeout", "42")
    assert out.returncode == 0, out.stderr
    assert "wait up to 42s for the API server" in out.stdout


def test_with_workers_the_master_keeps_its_taint_unless_settings_say_otherwise(project):
    kept = invoke(project, "cluster.init", "--dry-run", env={"LABKIT_WORKERS": "1"})
    assert "Keeping the master taint on ubuntu (workers run the pods)" in dryrun.planned(kept.stdout)
    assert "put the taint node-role.kubernetes.io/master:NoSchedule back on ubuntu if it is gone" in kept.stdout
    removed = invoke(project, "cluster.init", "--dry-run", env={"LABKIT_WORKERS": "1", "LABKIT_MASTER_RUNS_PODS": "true"})
    assert removed.returncode == 0, removed.stderr
    assert "remove the taint node-role.kubernetes.io/master:NoSchedule" in removed.stdout
    assert "Removing the master taint from ubuntu" in dryrun.planned(removed.stdout)
    assert "back on ubuntu" not in removed.stdout


def test_join_dry_run_shows_each_workers_config_with_the_token_masked(project):
    out = invoke(project, "cluster.join", "--dry-run", env={"LABKIT_WORKERS": "2"})
    assert out.returncode == 0, out.stderr
    assert dryrun.planned(out.stdout)[:2] == ["Waiting for the API server", "Checking the nodes against the settings"]
    assert "wait up to 600s for the API server" in out.stdout
    configs = [yaml.safe_load(dryrun.described(out.stdout, title).split("removed after the join):\n")[1].split("\nworker-")[0])
               for title in dryrun.planned(out.stdout) if title.startswith("Joining")]
    assert [c["nodeRegistration"]["kubeletExtraArgs"]["node-ip"] for c in configs] == ["192.168.56.11", "192.168.56.12"]
    assert all(c["discovery"]["bootstrapToken"]["token"] == "******.****************" for c in configs)
    assert "kubeadm join --config /etc/labkit/kubeadm-join.yaml" in out.stdout
    init = invoke(project, "cluster.init", "--dry-run", env={"LABKIT_WORKERS": "2"})
    joins = [t for t in dryrun.planned(init.stdout) if t.startswith("Joining")]
    assert joins == ["Joining worker-1 (192.168.56.11) to the cluster", "Joining worker-2 (192.168.56.12) to the cluster"]


def test_join_without_workers_or_on_the_master(project):
    none = invoke(project, "cluster.join")
    assert none.returncode == 0 and "nothing to join" in none.stdout
    master = invoke(project, "cluster.join", "--node", "ubuntu", env={"LABKIT_WORKERS": "1"})
    assert master.returncode == 1
    assert master.stderr.strip() == "labkit: ubuntu is the master, not a worker. Fix: name a node with role: worker"


def test_join_waits_for_the_api_server_within_its_timeout(project):
    out = invoke(project, "cluster.join", "--dry-run", "--timeout", "42", env={"LABKIT_WORKERS": "1"})
    assert out.returncode == 0, out.stderr
    assert "wait up to 42s for the API server" in out.stdout
    bad = invoke(project, "cluster.join", "--timeout", "soon", env={"LABKIT_WORKERS": "1"})
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "labkit: --timeout 'soon' is not a positive whole number of seconds. Fix: give one like --timeout 600"]
