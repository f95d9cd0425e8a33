"""T2: two real VMs (master + worker-1, LABKIT_WORKERS=1) from the test box, through the project's own tasks.

The session's lab (tests/t2/conftest.py lab_vm: its bundle, box and offline settings) plus LABKIT_WORKERS=1.
Both are created and provisioned offline by one `invoke vm.up` (in parallel: libvirt), then each must
reach the other on the host-only network and on Weave's ports (TCP 6783, UDP 6783-6784), the join step
runs on the worker up to where the test box allows (it has no Kubernetes 1.15 binaries), a join
interrupted after kubelet-start (its files written by hand, as kubeadm writes them) is seen and cleared,
a task run without LABKIT_WORKERS stops naming it, and `invoke vm.destroy` removes both. This module runs after test_vm_lifecycle (conftest orders it): the
single-node session VM is gone by then, and the two nodes reuse its name for the master.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import pytest

from labkit import libvirt
from tests.t2.conftest import LabVM, strip_ansi, virsh

pytestmark = pytest.mark.t2

UDP_LISTENER = """
import socket, sys
socks = []
for port in (6783, 6784):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], port))
    s.settimeout(0.2)
    socks.append(s)
print("listening", flush=True)
while True:
    for s in socks:
        try:
            data, peer = s.recvfrom(100)
            print(f"got {data.decode()} on {s.getsockname()[1]} from {peer[0]}", flush=True)
        except socket.timeout:
            pass
"""


@dataclass
class Pair:
    vm: LabVM  # the session's lab, with LABKIT_WORKERS=1 added
    up_output: str
    base: str  # the stand-in base image the docker step loaded on each node

    @property
    def settings(self):
        return self.vm.settings

    def invoke(self, *args, timeout=1800):
        return self.vm.invoke(*args, timeout=timeout)


@pytest.fixture(scope="module")
def pair(lab_vm):
    """The session's lab (its bundle, box and settings) with one worker more. Destroyed first, so that one
    `vm.up` creates and provisions both nodes (run alone, lab_vm has just booted the master)."""
    from labkit import settings as settings_mod

    env = {**lab_vm.env, "LABKIT_WORKERS": "1"}
    vm = dataclasses.replace(lab_vm, env=env, settings=settings_mod.load(lab_vm.settings.root, env))
    vm.invoke("vm.destroy")
    started = time.monotonic()
    up = vm.invoke("vm.up", timeout=3600)
    print(f"\nvm.up of master + 1 worker (boot, provision base+docker): {time.monotonic() - started:.0f} s")
    try:
        assert up.returncode == 0, "invoke vm.up failed (output above)"
        yield Pair(vm, strip_ansi(up.stdout + up.stderr), vm.settings.data["images"]["inv_base"])
    finally:
        vm.invoke("vm.destroy")


def backends(pair):
    """Each node's backend, with the pair's environment (its LABKIT_* settings reach the Vagrantfile too)."""
    from labkit.backends import get_backend

    return {n.name: get_backend(f"node:{n.name}", pair.settings, pair.vm.env) for n in pair.settings.nodes}


def test_one_vm_up_created_and_provisioned_both_in_parallel(pair):
    settings, out = pair.settings, pair.up_output
    master, worker = settings.master, settings.workers[0]
    assert worker.name == "worker-1" and int(worker.ip.rsplit(".", 1)[1]) == int(master.ip.rsplit(".", 1)[1]) + 1
    assert f"Creating/starting VMs {master.name}, {worker.name} in parallel (libvirt" in out
    assert f"{master.name}: running on {master.ip}" in out and f"{worker.name}: running on {worker.ip}" in out
    status = pair.invoke("vm.status")
    rows = {line.split()[0]: line.split() for line in strip_ansi(status.stdout).splitlines()
            if line.split() and line.split()[0] in (master.name, worker.name)}
    assert rows[master.name][1:3] == ["master", "running"] and rows[worker.name][1:3] == ["worker", "running"]
    for n in settings.nodes:  # each provisioned offline from the bundle: Docker runs, no route out
        got = pair.invoke("vm.ssh", "--node", n.name, "--command",
                     "hostname; sudo -n docker info --format '{{.ServerVersion}}'; ip route")
        lines = got.stdout.splitlines()
        assert got.returncode == 0 and lines[0] == n.name and lines[1]
        # offline: the only default route is provisioning's dummy one (it reaches nothing)
        assert [ln.split()[:3] for ln in lines if ln.startswith("default")] == [["default", "dev", "labkit0"]], n.name
    # each VM its own identity: base gave each a machine-id, libvirt each a product_uuid (Weave's peer name)
    for n in settings.nodes:
        assert any(n.name in line and "gave this VM its own machine-id" in line for line in out.splitlines()), n.name
    ids = {n.name: pair.invoke("vm.ssh", "--node", n.name, "--command",
                               "cat /etc/machine-id; sudo -n cat /sys/class/dmi/id/product_uuid").stdout.split()
           for n in settings.nodes}
    machine_ids, uuids = {v[0] for v in ids.values()}, {v[1] for v in ids.values()}
    assert len(machine_ids) == len(uuids) == 2, ids


def test_each_node_reaches_the_other_on_the_host_only_network_and_weave_ports(pair):
    from labkit.cluster import join

    settings, base = pair.settings, pair.base
    ssh = backends(pair)
    master, worker = settings.master, settings.workers[0]
    try:
        # TCP: sshd answers on the other's host-only address; Weave's 6783 and the API's 6443 are open
        # (refused by the other kernel, nothing listens yet), as cluster.join checks before joining.
        for a, b in ((master, worker), (worker, master)):
            assert ssh[a.name].run(join.tcp_probe_argv(b.ip, 22), timeout=15).ok, f"{a.name} → {b.name}:22"
        assert join.check_paths(settings, ssh[master.name], worker, ssh[worker.name]) == []
        # UDP 6783 (sleeve) and 6784 (fastdp): a listener on each node, datagrams from the other.
        for a, b in ((master, worker), (worker, master)):
            name = "labkit-udp-probe"
            ssh[b.name].run(["sudo", "-n", "docker", "rm", "-f", name], timeout=60)
            started = ssh[b.name].run(["sudo", "-n", "docker", "run", "-d", "--name", name, "--net", "host", base,
                                       "python3", "-c", UDP_LISTENER, b.ip], timeout=120)
            assert started.ok, started.stderr
            try:
                deadline = time.monotonic() + 60
                while "listening" not in ssh[b.name].run(["sudo", "-n", "docker", "logs", name], timeout=30).stdout:
                    assert time.monotonic() < deadline, "the UDP listener did not start"
                    time.sleep(1)
                for port in (6783, 6784):
                    sent = ssh[a.name].run(["bash", "-c", f"echo -n from-{a.name} >/dev/udp/{b.ip}/{port}"], timeout=15)
                    assert sent.ok, sent.stderr
                deadline = time.monotonic() + 30
                while True:
                    logs = ssh[b.name].run(["sudo", "-n", "docker", "logs", name], timeout=30).stdout
                    got = {f"got from-{a.name} on {p} from {a.ip}" for p in (6783, 6784)}
                    if got <= set(logs.splitlines()):
                        break
                    assert time.monotonic() < deadline, f"{b.name} did not receive UDP from {a.name}: {logs}"
                    time.sleep(1)
            finally:
                ssh[b.name].run(["sudo", "-n", "docker", "rm", "-f", name], timeout=60)
    finally:
        for b in ssh.values():
            b.close()


def test_join_runs_on_the_worker_up_to_what_the_test_box_has(pair):
    settings = pair.settings
    worker = settings.workers[0]
    dry = pair.invoke("cluster.join", "--dry-run")
    assert dry.returncode == 0
    assert f"node-ip: {worker.ip}" in dry.stdout and f"apiServerEndpoint: {settings.master.ip}:6443" in dry.stdout
    assert "token: '******.****************'" in dry.stdout
    assert dry.stdout.index("Waiting for the API server") < dry.stdout.index(f"Joining {worker.name}")
    real = pair.invoke("cluster.join", "--timeout", "30", timeout=600)
    # The box has no Kubernetes 1.15, so no API server: the join stops waiting for it, in one line.
    assert real.returncode == 1
    lines = [line for line in real.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("labkit: "), real.stderr
    assert "Traceback" not in real.stdout + real.stderr
    assert "invoke cluster.init" in lines[0] and ("kubeconfig" in lines[0] or "API server" in lines[0])


def test_a_join_interrupted_after_kubelet_start_is_seen_and_cluster_reset_clears_it(pair):
    """kubeadm 1.15's kubelet-start writes bootstrap-kubelet.conf, pki/ca.crt, then /var/lib/kubelet/config.yaml
    and kubeadm-flags.env, and only then waits (cmd/kubeadm/app/cmd/phases/join/kubelet.go): a join killed there
    leaves all four. They are written here by hand, with the modes kubeadm gives them."""
    from labkit.cluster import node as nodeops
    from labkit.cluster.join import CA_CERT
    from tests.t0.test_cluster_join import make_ca_pem

    settings = pair.settings
    worker = settings.workers[0]
    ssh = backends(pair)
    w = ssh[worker.name]
    left = {nodeops.KUBEADM_FILES[k]: mode for k, mode in (
        ("bootstrap_kubelet_conf", "600"), ("ca_crt", "644"), ("kubelet_config", "644"), ("kubeadm_flags", "644"))}
    standin = "/usr/local/bin/kubeadm"
    try:
        for path, mode in left.items():
            content = make_ca_pem() if path == CA_CERT else f"# written as kubeadm join's kubelet-start writes {path}\n"
            put = w.run(["sudo", "-n", "sh", "-c", f"mkdir -p {path.rsplit('/', 1)[0]} && cat >{path} && chmod {mode} {path}"],
                        timeout=30, stdin=content.encode())
            assert put.ok, put.stderr
        facts = nodeops.gather(w)  # the facts script, over SSH, on the real node
        assert facts.leftovers == list(left), facts
        assert facts.machine_id and facts.product_uuid
        # No kubeadm on the test box: cluster.reset says so in one line instead of "no kubeadm state".
        out = pair.invoke("cluster.reset")
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 1 and lines == [f"labkit: worker-1 has kubeadm's files ({', '.join(left)}) but no kubeadm "
                                                 "to remove them. Fix: run invoke vm.provision --node worker-1 --step "
                                                 "kubernetes, then invoke cluster.reset"]
        assert "Resetting Kubernetes on worker-1" in strip_ansi(out.stdout)
        # A kubeadm STAND-IN (a shell script answering the version query; its reset changes nothing): what goes,
        # labkit's reset script removes. cluster.reset then names what it found and clears the worker.
        script = "#!/bin/sh\n# labkit T2 stand-in for kubeadm 1.15\n[ \"$1\" = version ] && echo v1.15.12\nexit 0\n"
        put = w.run(["sudo", "-n", "sh", "-c", f"cat >{standin} && chmod 755 {standin}"], timeout=30,
                    stdin=script.encode())
        assert put.ok, put.stderr
        out = pair.invoke("cluster.reset", timeout=900)
        text = strip_ansi(out.stdout)
        assert out.returncode == 0, out.stderr
        assert f"kubeadm left: {', '.join(left)}" in text
        assert "Resetting Kubernetes on worker-1 (no kubeadm state" not in text
        assert nodeops.gather(w).leftovers == []
        again = strip_ansi(pair.invoke("cluster.reset").stdout)
        assert "Resetting Kubernetes on worker-1 (no kubeadm state on the node)" in again
    finally:
        w.run(["sudo", "-n", "rm", "-f", standin, *left], timeout=60)
        for b in ssh.values():
            b.close()


def test_a_task_without_the_worker_count_stops_naming_it(pair):
    settings = pair.settings
    single = dataclasses.replace(pair.vm, env={k: v for k, v in pair.vm.env.items() if k != "LABKIT_WORKERS"})
    halt = single.invoke("vm.halt")
    lines = [line for line in halt.stderr.splitlines() if line.strip()]
    assert halt.returncode == 1 and len(lines) == 1, halt.stderr
    assert lines[0].startswith(f"labkit: this lab has the VM worker-1, which settings here do not list (they name "
                               f"1 node ({settings.master.name})). Fix: set LABKIT_WORKERS=1 in this shell")
    status = strip_ansi(pair.invoke("vm.status").stdout)
    assert status.count("running") == 2  # nothing was halted


def test_destroy_removes_both_vms(pair):
    settings = pair.settings
    assert pair.invoke("vm.destroy").returncode == 0
    running = virsh("list", "--all", "--name").stdout.split()
    for n in settings.nodes:
        assert libvirt.domain_name(settings.root, n.name) not in running
    status = strip_ansi(pair.invoke("vm.status").stdout)
    assert status.count("not_created") == 2
