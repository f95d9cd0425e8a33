"""T0: a worker left half-joined is seen and recovered; a worker joined to another CA is rejoined; cluster.reset
sees a half join; cluster.join waits for the API server.

Each half-finished state is a directory laid out the way kubeadm 1.15's join leaves a node (the files
cmd/kubeadm/app/cmd/phases/join/kubelet.go writes, in its order), and the node's facts come from the very
facts script cluster tasks send, run by a real `sh` against that directory.
"""
from __future__ import annotations

import subprocess

import pytest

from labkit import steps, ui
from labkit.backends import CommandResult
from labkit.cluster import join, node as nodeops
from labkit.cluster.actions import join_plan
from labkit.cluster.actions.reset import ResetNode
from labkit.errors import LabkitError
from tests.t0.test_cluster_join import CA_PEM, HASH, TOKEN, make_ca_pem, s  # noqa: F401 (s: the fixture)

V = "v1.15.12"
BOOT, CA, CONFIG, FLAGS, KUBELET = (nodeops.KUBEADM_FILES[k] for k in (
    "bootstrap_kubelet_conf", "ca_crt", "kubelet_config", "kubeadm_flags", "kubelet_conf"))

# kubelet-start, in the order runKubeletStartJoinPhase writes: bootstrap-kubelet.conf, the CA file, then
# (kubelet stopped) config.yaml and kubeadm-flags.env, kubelet started, the wait for kubelet.conf.
HALF_JOINED = {
    "killed after the bootstrap kubeconfig": [BOOT],
    "killed after the CA file": [BOOT, CA],
    "killed while waiting for the TLS bootstrap": [BOOT, CA, CONFIG, FLAGS],
    "timed out (the phase's defer removed the bootstrap kubeconfig)": [CA, CONFIG, FLAGS],
    "killed after the TLS bootstrap, before the Node registered": [CA, CONFIG, FLAGS, KUBELET],
}


def node_root(tmp_path, files) -> str:
    """A node's file system as kubeadm left it (only the paths the facts script looks at)."""
    for path in files:
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(CA_PEM if path == CA else "written by kubeadm join\n")
    (tmp_path / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)  # the kubelet makes it, empty
    return str(tmp_path)


def facts_of(root: str) -> nodeops.Facts:
    out = subprocess.run(["sh", "-c", nodeops.facts_script(root)], capture_output=True, text=True, check=True).stdout
    return nodeops.Facts.parse(out.replace("kubeadm=\n", f"kubeadm={V}\n").replace("docker=\n", "docker=18.09.9\n"))


@pytest.mark.parametrize("files", HALF_JOINED.values(), ids=HALF_JOINED.keys())
def test_every_half_finished_join_is_seen_and_means_reset_then_join(tmp_path, files):
    facts = facts_of(node_root(tmp_path, files))
    assert facts.leftovers == [p for p in nodeops.KUBEADM_FILES.values() if p in files]
    assert join.join_action(facts, False, V, "worker-1") == join.RESET_JOIN
    assert nodeops.reset_action(facts) == "reset"  # cluster.reset no longer says "no kubeadm state"


def test_a_clean_node_has_no_traces_and_joins(tmp_path):
    facts = facts_of(node_root(tmp_path, []))
    assert facts.leftovers == [] and join.join_action(facts, False, V, "worker-1") == join.JOIN
    assert nodeops.reset_action(facts) == "skip"


def test_the_reset_removes_every_file_the_facts_look_at():
    # what kubeadm reset removes differs between releases; the reset script removes these itself
    removes = next(line for line in nodeops.RESET_SCRIPT.splitlines() if line.startswith("rm -f /etc/kubernetes/"))
    assert removes.split()[2:] == list(nodeops.KUBEADM_FILES.values())
    assert nodeops.RESET_SCRIPT.index("kubeadm reset --force") < nodeops.RESET_SCRIPT.index(removes)


# --- cluster.join against stand-ins for the two nodes -------------------------------------------------

class Node:
    """A node answering what cluster.join sends; `after_reset` are its facts once RESET_SCRIPT ran."""

    def __init__(self, name, facts_text, ca=None, registered=False, join_fails=None):
        self.name, self.facts_text, self.ca, self.registered = name, facts_text, ca, registered
        self.join_fails, self.seen, self.log = join_fails, [], ""

    def run(self, argv, timeout=30, stdin=None):
        text = " ".join(argv)
        self.seen.append(text)
        if text == " ".join(nodeops.sudo_sh(nodeops.FACTS_SCRIPT)):
            return CommandResult(0, self.facts_text, "", 0.1)
        if nodeops.RESET_SCRIPT in text:
            self.facts_text = f"kubeadm={V}\ndocker=18.09.9\n"
            return CommandResult(0, "[reset] Stopping the kubelet service\n", "", 0.1)
        if argv == ["sudo", "-n", "cat", join.CA_CERT]:
            return CommandResult(0, self.ca, "", 0.1) if self.ca else CommandResult(1, "", "No such file", 0.1)
        if argv == join.registered_argv("worker-1"):
            return CommandResult(0, "node/worker-1\n" if self.registered else "", "", 0.1)
        if "kubeadm token create" in text:
            return CommandResult(0, TOKEN + "\n", "", 0.1)
        if "/dev/tcp/" in text:
            return CommandResult(1, "", "bash: connect: Connection refused", 0.1)
        if "kubeadm join --config" in text:
            self.log = self.join_fails or "This node has joined the cluster:\n"
            return CommandResult(1 if self.join_fails else 0, "", "", 1.0)
        if text.startswith(f"sudo -n tail -n +1 {join.JOIN_LOG}"):
            return CommandResult(0, self.log, "", 0.1)
        return CommandResult(0, "", "", 0.1)


def worker_facts(files) -> str:
    keys = {path: key for key, path in nodeops.KUBEADM_FILES.items()}
    return f"kubeadm={V}\ndocker=18.09.9\n" + "".join(f"{keys[p]}=yes\n" for p in files)


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(nodeops.time, "sleep", lambda seconds: None)


@pytest.mark.parametrize("files", HALF_JOINED.values(), ids=HALF_JOINED.keys())
def test_cluster_join_resets_a_half_joined_worker_before_it_joins(s, fast, files):  # noqa: F811
    master, worker, shown = Node("ubuntu", "", ca=CA_PEM), Node("worker-1", worker_facts(files), ca=CA_PEM), []
    note = join.ensure_joined(s, master, s.node("worker-1"), worker, lambda: HASH, lambda: join.Discovery(TOKEN, HASH),
                              shown.append)
    assert note == "reset and joined again"
    reset_at = next(i for i, cmd in enumerate(worker.seen) if nodeops.RESET_SCRIPT in cmd)
    join_at = next(i for i, cmd in enumerate(worker.seen) if "kubeadm join --config" in cmd)
    assert reset_at < join_at
    said = next(line for line in shown if "kubeadm reset first" in line)
    if KUBELET in files:  # the TLS bootstrap finished: kubelet.conf, but no Node yet
        assert said.startswith("worker-1 has a kubelet.conf but the API server lists no Node of its name")
    else:
        assert said.startswith("worker-1 holds what a failed or interrupted kubeadm join left (") and files[0] in said


# kubeadm 1.15 join timing out in kubelet-start: the phase lines of a 1.14/1.15 join (kubernetes/kubernetes#76013),
# kubelet.go's kubeadmJoinFailMsg, then the workflow's "error execution phase <name>: <error>".
KUBELET_START_TIMEOUT = """[preflight] Running pre-flight checks
[preflight] Reading configuration from the cluster...
[preflight] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -oyaml'
[kubelet-start] Downloading configuration for the kubelet from the "kubelet-config-1.15" ConfigMap in the kube-system namespace
[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"
[kubelet-start] Writing kubelet environment file with flags to file "/var/lib/kubelet/kubeadm-flags.env"
[kubelet-start] Activating the kubelet service
[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap...
[kubelet-check] Initial timeout of 40s passed.

Unfortunately, an error has occurred:
	timed out waiting for the condition

This error is likely caused by:
	- The kubelet is not running
	- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)

If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:
	- 'systemctl status kubelet'
	- 'journalctl -xeu kubelet'
error execution phase kubelet-start: timed out waiting for the condition
"""


def test_a_join_that_times_out_is_recovered_by_the_next_cluster_join(s, fast):  # noqa: F811
    master = Node("ubuntu", "", ca=CA_PEM)
    worker = Node("worker-1", worker_facts([]), ca=None, join_fails=KUBELET_START_TIMEOUT)
    shown = []
    with pytest.raises(LabkitError) as info:
        join.ensure_joined(s, master, s.node("worker-1"), worker, lambda: HASH, lambda: join.Discovery(TOKEN, HASH),
                           shown.append)
    assert "error execution phase kubelet-start: timed out waiting for the condition" in shown
    assert info.value.line().startswith("labkit: kubeadm join failed on worker-1")
    assert info.value.fix.endswith("invoke cluster.join (it resets worker-1 first)")
    # what the timed-out phase left (its defer removed bootstrap-kubelet.conf): the next run resets, then joins
    worker.facts_text, worker.join_fails = worker_facts([CA, CONFIG, FLAGS]), None
    assert join.ensure_joined(s, master, s.node("worker-1"), worker, lambda: HASH,
                              lambda: join.Discovery(TOKEN, HASH), shown.append) == "reset and joined again"


# --- a worker joined to another cluster's CA ---------------------------------------------------------

def test_a_joined_worker_whose_ca_is_not_the_masters_is_rejoined(s, fast):  # noqa: F811
    other = make_ca_pem()  # the CA of the cluster the worker joined before the master was re-initialized
    master = Node("ubuntu", "", ca=CA_PEM, registered=True)
    worker = Node("worker-1", worker_facts([CA, CONFIG, FLAGS, KUBELET]), ca=other)
    shown = []
    note = join.ensure_joined(s, master, s.node("worker-1"), worker, lambda: join.ca_cert_hash(CA_PEM),
                              lambda: join.Discovery(TOKEN, join.ca_cert_hash(CA_PEM)), shown.append)
    assert note == "reset and joined again"
    assert any("its CA is not the master's" in line for line in shown)
    assert any("delete node worker-1" in cmd for cmd in master.seen)  # the Node object of the old join goes


def test_a_joined_worker_with_the_masters_ca_is_skipped(s, fast):  # noqa: F811
    master = Node("ubuntu", "", ca=CA_PEM, registered=True)
    worker = Node("worker-1", worker_facts([CA, CONFIG, FLAGS, KUBELET]), ca=CA_PEM)
    assert join.ensure_joined(s, master, s.node("worker-1"), worker, lambda: join.ca_cert_hash(CA_PEM),
                              lambda: pytest.fail("a joined worker needs no token"), print) == "already joined"
    assert not any("kubeadm" in cmd and "reset" in cmd for cmd in worker.seen)


@pytest.mark.parametrize("registered, same_ca, words", [
    (False, None, "lists no Node of its name"),
    (True, False, "its CA is not the master's"),
])
def test_why_a_joined_worker_is_reset(registered, same_ca, words):
    facts = nodeops.Facts.parse(worker_facts([CA, KUBELET]))
    assert join.join_action(facts, registered, V, "worker-1", same_ca) == join.RESET_JOIN
    assert words in join.why_reset(facts, registered, same_ca)


# --- cluster.reset on a half-joined worker -------------------------------------------------------------

def test_cluster_reset_resets_a_half_joined_worker_and_names_what_it_found(s, capsys):  # noqa: F811
    worker = Node("worker-1", worker_facts([BOOT, CA]))
    ctx = steps.Context(s, reach=lambda name: worker, vm_state=lambda name: "running")
    steps.run([ResetNode(s.node("worker-1"))], ctx)
    out = capsys.readouterr().out
    assert "no kubeadm state" not in out
    assert f"kubeadm left: {BOOT}, {CA}" in out
    assert any(nodeops.RESET_SCRIPT in cmd for cmd in worker.seen)


# --- cluster.join waits for the API server first -------------------------------------------------------

def test_cluster_join_waits_for_the_api_server_before_it_asks_the_master(s, fast, capsys):  # noqa: F811
    from labkit.kube.errors import Unreachable
    from tests.t0 import cluster_objects as objs

    calls = []

    class Api:  # right after vm.up: the API server's static pod is still starting
        def nodes(self):
            calls.append("nodes")
            if len(calls) < 2:  # one refusal: wait_reachable retries 3 s later
                raise Unreachable("https://192.168.56.10:6443", "connection refused")
            return [objs.node(name=n.name, ip=n.ip, master=n.role == "master") for n in s.nodes]

    nodes = {n.name: Node(n.name, worker_facts([]) + f"machine_id={i}0ab\nproduct_uuid=u-{i}\n", ca=CA_PEM,
                          registered=False) for i, n in enumerate(s.nodes)}
    steps.run(join_plan(s, s.workers[:1]), steps.Context(s, 60, reach=nodes.__getitem__, open_api=Api))
    out = capsys.readouterr().out
    assert "cannot reach the API server at https://192.168.56.10:6443 (connection refused); waiting up to 60s" in out
    assert calls[:2] == ["nodes"] * 2
    assert out.index("Waiting for the API server") < out.index("Joining worker-1")
    assert f"{ui.marks()['ok']} Joining worker-1" in out
