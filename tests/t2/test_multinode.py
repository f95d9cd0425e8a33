"""T2: two real VMs (master + worker-1, LABKIT_WORKERS=1) from the test box, through the project's own tasks.

Both are created and provisioned offline by one `invoke vm.up` (in parallel: libvirt), then each must
reach the other on the host-only network and on Weave's ports (TCP 6783, UDP 6783-6784), the join step
runs on the worker up to where the test box allows (it has no Kubernetes 1.15 binaries), and
`invoke vm.destroy` removes both. This module runs after test_vm_lifecycle (conftest orders it): the
single-node session VM is gone by then, and the two nodes reuse its name for the master.
"""
from __future__ import annotations

import os
import time

import pytest

from labkit import libvirt
from tests.conftest import REPO, free_port
from tests.t2 import testbundle
from tests.t2.conftest import NODE_IP, classroom_fetch, forget_test_box, invoke, strip_ansi, virsh

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


@pytest.fixture(scope="module")
def pair(t2_host, tmp_path_factory, dockerd, stand_in_image):
    from labkit import settings as settings_mod

    work = tmp_path_factory.mktemp("t2-two")
    base = stand_in_image(settings_mod.load(REPO, {}).data["images"]["inv_base"])
    port = free_port()
    staging = work / "instructor-bundle"
    lock, facts = testbundle.build(staging, mirror=f"http://127.0.0.1:{port}", docker_url=dockerd.url, images=(base,))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update({
        "LABKIT_PROVIDER": "libvirt", "LABKIT_BOXES__LIBVIRT": testbundle.BOX_NAME,
        "LABKIT_VM__LIBVIRT_DRIVER": "qemu", "LABKIT_VM__LIBVIRT_MANAGEMENT_NETWORK": "none",
        "LABKIT_NODES__0__IP": NODE_IP, "LABKIT_WORKERS": "1",
        "LABKIT_BUNDLE__DIR": str(work / "bundle"), "LABKIT_BUNDLE__LOCK": str(lock),
        "LABKIT_PROVISION": "[base, docker]", "LABKIT_VERSIONS__DOCKER": facts["docker_version"],
    })
    settings = settings_mod.load(REPO, env)
    classroom_fetch(env, lock, staging, work / "bundle", port)
    invoke(env, "vm.destroy")
    started = time.monotonic()
    up = invoke(env, "vm.up", timeout=3600)
    seconds = time.monotonic() - started
    print(f"\nvm.up of master + 1 worker (box add, boot, provision base+docker): {seconds:.0f} s")
    try:
        assert up.returncode == 0, "invoke vm.up failed (output above)"
        yield env, settings, strip_ansi(up.stdout + up.stderr), base
    finally:
        invoke(env, "vm.destroy")
        forget_test_box()


def backends(settings):
    from labkit.backends import Ssh
    from labkit.vagrant import Vagrant

    vg = Vagrant(settings.root)
    return {n.name: Ssh.for_node(settings, vg, n.name) for n in settings.nodes}


def test_one_vm_up_created_and_provisioned_both_in_parallel(pair):
    env, settings, out, _base = pair
    master, worker = settings.master, settings.workers[0]
    assert (worker.name, worker.ip) == ("worker-1", NODE_IP.rsplit(".", 1)[0] + "." + str(int(NODE_IP.rsplit(".", 1)[1]) + 1))
    assert f"Creating/starting VMs {master.name}, {worker.name} in parallel (libvirt" in out
    assert f"{master.name}: running on {master.ip}" in out and f"{worker.name}: running on {worker.ip}" in out
    status = invoke(env, "vm.status")
    rows = {line.split()[0]: line.split() for line in strip_ansi(status.stdout).splitlines()
            if line.split() and line.split()[0] in (master.name, worker.name)}
    assert rows[master.name][1:3] == ["master", "running"] and rows[worker.name][1:3] == ["worker", "running"]
    for n in settings.nodes:  # each provisioned offline from the bundle: Docker runs, no default route
        got = invoke(env, "vm.ssh", "--node", n.name, "--command",
                     "hostname; sudo -n docker info --format '{{.ServerVersion}}'; ip route")
        lines = got.stdout.splitlines()
        assert got.returncode == 0 and lines[0] == n.name and lines[1]
        assert not any(line.startswith("default") for line in lines), f"{n.name} must be offline"


def test_each_node_reaches_the_other_on_the_host_only_network_and_weave_ports(pair):
    from labkit.cluster import join

    _env, settings, _out, base = pair
    ssh = backends(settings)
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
    env, settings, _out, _base = pair
    worker = settings.workers[0]
    dry = invoke(env, "cluster.join", "--dry-run")
    assert dry.returncode == 0
    assert f"node-ip: {worker.ip}" in dry.stdout and f"apiServerEndpoint: {settings.master.ip}:6443" in dry.stdout
    assert "token: '******.****************'" in dry.stdout
    real = invoke(env, "cluster.join", timeout=600)
    # The box has no Kubernetes 1.15: the join stops when it asks the master about the node, in one line.
    assert real.returncode == 1
    lines = [line for line in real.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"labkit: cannot ask the master about node {worker.name}"), real.stderr
    assert "Traceback" not in real.stdout + real.stderr
    assert "Fix: run invoke cluster.init first" in lines[0]


def test_destroy_removes_both_vms(pair):
    env, settings, _out, _base = pair
    assert invoke(env, "vm.destroy").returncode == 0
    running = virsh("list", "--all", "--name").stdout.split()
    for n in settings.nodes:
        assert libvirt.domain_name(REPO, n.name) not in running
    status = strip_ansi(invoke(env, "vm.status").stdout)
    assert status.count("not_created") == 2
