"""cluster.*: Kubernetes 1.15 on the lab VM with kubeadm, offline (init → status → reset).

Node-side work goes over SSH (labkit.backends.Ssh); the Kubernetes API is used from the laptop
through the exported kubeconfig (.labkit/kubeconfig) and the official client.
"""
from __future__ import annotations

import shlex
import time

from labkit import ui
from labkit.errors import LabkitError
from labkit.tasks._common import labtask, settings, vagrant_for

DRY_RUN_HELP = "print what would be done (rendered config, commands) and change nothing; no VM needed"
INIT_TIMEOUT = 900  # kubeadm init itself; its own control-plane wait is 4 minutes
WAIT_TIMEOUT = 600


def _ssh(s, vg, node, purpose: str):
    from labkit.backends import Ssh

    state = vg.status(node.name)
    if state != "running":
        raise LabkitError(f"{node.name} is {state.replace('_', ' ')}, so labkit cannot {purpose}",
                          f"run invoke vm.up, then invoke cluster.{purpose.split()[0]}")
    return Ssh.for_node(s, vg, node.name)


def _cmd(argv) -> str:
    return shlex.join(argv)


def _weave_guest_path(s) -> str:
    """Where the VM sees the bundle's Weave manifest (read from the laptop's CHECKSUMS if present)."""
    from labkit.cluster import node as nodeops

    sums = s.bundle_dir / "CHECKSUMS"
    if sums.is_file():
        found = [c for c in nodeops.parse_checksums(sums.read_text()) if c.path.startswith(nodeops.WEAVE_MANIFEST_PREFIX)]
        if len(found) == 1:
            return f"{s.bundle_guest_dir}/{found[0].path}"
    return f"{s.bundle_guest_dir}/{nodeops.WEAVE_MANIFEST_DEFAULT}"  # the bundle contract's name


# --- init ------------------------------------------------------------------------------------

@labtask(help={"dry_run": DRY_RUN_HELP,
               "timeout": f"seconds to wait for the API server, node Ready, CoreDNS and Weave Net (default {WAIT_TIMEOUT})"})
def init(c, dry_run=False, timeout=WAIT_TIMEOUT):
    """Initialize Kubernetes with kubeadm, export a kubeconfig, install Weave Net, wait until ready. Safe to re-run."""
    from labkit.cluster import kubeadm

    s = settings(c)
    master = s.master
    config = kubeadm.render(s, master)
    if dry_run:
        _init_plan(s, config, timeout)
        return
    vg = vagrant_for(s)
    ssh = _ssh(s, vg, master, "init the cluster")
    try:
        _init(s, ssh, master, config, timeout)
    finally:
        ssh.close()


def _init_plan(s, config: str, timeout: int) -> None:
    from labkit.cluster import kubeadm, node as nodeops
    from labkit.kube import kubeconfig_path

    m = s.master
    ui.say("Dry run: nothing is changed and no VM is needed.\n")
    ui.say(f"kubeadm configuration for {m.name} (written to {kubeadm.GUEST_CONFIG} on the node):")
    ui.say(config)
    steps = [
        f"{m.name}: {_cmd(nodeops.upload_config_argv())}   # the configuration above, on stdin",
        f"{m.name}: {_cmd(nodeops.images_list_argv())}   # each image must already be loaded: nothing is pulled",
        f"{m.name}: {_cmd(nodeops.init_argv())}   # only if {nodeops.ADMIN_CONF} does not exist yet",
        f"{m.name}: copy {nodeops.ADMIN_CONF} to ~/.kube/config of the VM user (0600)",
        f"laptop: write {kubeconfig_path(s)} (0600) with server {kubeadm.api_server_url(m)}",
    ]
    steps.append(f"laptop: wait up to {timeout}s for the API server to answer (after a VM boot it needs a minute)")
    if not s.untaint_master:
        steps.append("laptop: keep the master taint (worker nodes run the pods)")
    else:
        steps.append(f"laptop: remove the taint {_taint()} from {m.name} (Kubernetes API)")
    weave = _weave_guest_path(s)
    steps += [
        f"{m.name}: check the Weave Net manifest (the manifests/weave* file CHECKSUMS pins) and that its images are loaded",
        f"{m.name}: {weave} with IPALLOC_RANGE={kubeadm.pod_network(s)} on the weave container, piped to "
        f"{_cmd(nodeops.apply_argv())}   # only if the weave-net DaemonSet does not exist",
        *([f"each worker ({', '.join(w.name for w in s.workers)}): kubeadm join, as invoke cluster.join --dry-run shows"]
          if s.workers else []),
        f"laptop: wait, within the same {timeout}s, for every node Ready, CoreDNS Running, weave-net 2/2 (Kubernetes API)",
        f"laptop: check that kube-dns has ClusterIP {kubeadm.dns_ip(s)} and each node reports its host-only IP",
    ]
    ui.say("Steps (each one is skipped when already done):")
    for i, line in enumerate(steps, 1):
        ui.say(f"  {i}. {line}")


def _taint() -> str:
    from labkit.kube.objects import MASTER_TAINT

    return f"{MASTER_TAINT}:NoSchedule"


def _init(s, ssh, master, config: str, timeout: int) -> None:
    from labkit.cluster import kubeadm, node as nodeops

    version = kubeadm.kubernetes_version(s)
    with ui.step(f"Checking {master.name} for kubeadm init") as st:
        facts = nodeops.gather(ssh)
        action = nodeops.init_action(facts, version, master.name)
        st.log(f"kubeadm {facts.kubeadm}, Docker {facts.docker}, "
               + ("already initialized" if action == "skip" else "not initialized yet"))
    with ui.step(f"Initializing the control plane on {master.name} (kubeadm init)") as st:
        if action == "skip":
            st.skip(f"{nodeops.ADMIN_CONF} exists")
        else:
            _kubeadm_init(ssh, master, config, st)
    _export_kubeconfigs(s, ssh, master)
    _finish(s, ssh, master, timeout)


def _kubeadm_init(ssh, master, config: str, st) -> None:
    from labkit.cluster import node as nodeops

    put = ssh.run(nodeops.upload_config_argv(), timeout=30, stdin=config.encode())
    if not put.ok:
        raise LabkitError(f"cannot write the kubeadm configuration on {master.name}: {put.stderr.strip()}",
                          "check that the vagrant user has passwordless sudo in the VM")
    wanted = ssh.run(nodeops.images_list_argv(), timeout=60)
    if not wanted.ok:
        raise LabkitError(f"kubeadm rejected the configuration: {wanted.stderr.strip()[:300]}",
                          "run invoke cluster.init --dry-run to see it; check settings.yaml versions and network")
    present = ssh.run(nodeops.PRESENT_IMAGES_ARGV, timeout=60)
    missing = nodeops.missing_images(wanted.stdout.split(), present.stdout)
    if missing:
        raise LabkitError(f"{master.name} lacks the control-plane image(s) {', '.join(missing)} (nothing may be pulled)",
                          "on the laptop run invoke bundle.fetch, then invoke vm.provision --step docker")
    st.log(f"all {len(wanted.stdout.split())} control-plane images are loaded")
    result = nodeops.run_logged(ssh, nodeops.init_argv(), nodeops.INIT_LOG, st.log, timeout=INIT_TIMEOUT)
    if not result.ok:
        raise LabkitError(f"kubeadm init failed on {master.name} (output above; full log {nodeops.INIT_LOG} on the node)",
                          "fix the cause it names, then invoke cluster.reset and invoke cluster.init")


def _export_kubeconfigs(s, ssh, master) -> None:
    from labkit.cluster import kubeadm, kubeconfig, node as nodeops
    from labkit.fsutil import make_private, write_private
    from labkit.kube import kubeconfig_path

    with ui.step("Exporting the kubeconfig (VM user and laptop)") as st:
        user = ssh.run(["sh", "-c", nodeops.USER_KUBECONFIG_SCRIPT], timeout=30)
        if not user.ok:
            raise LabkitError(f"cannot copy admin.conf for the VM user: {user.stderr.strip()}",
                              "check that the vagrant user has passwordless sudo in the VM")
        admin = ssh.run(["sudo", "-n", "cat", nodeops.ADMIN_CONF], timeout=30)
        if not admin.ok:
            raise LabkitError(f"cannot read {nodeops.ADMIN_CONF} on {master.name}",
                              "run invoke cluster.reset, then invoke cluster.init")
        text = kubeconfig.for_laptop(admin.stdout, kubeadm.api_server_url(master))
        path = kubeconfig_path(s)
        laptop_current = path.is_file() and path.read_text(encoding="utf-8") == text
        if laptop_current:
            make_private(path)  # it holds the admin key: only this user, even if someone widened it
        else:
            write_private(path, text)
        if laptop_current and user.stdout.strip() == "unchanged":
            st.skip("both already current")
        else:
            st.log(f"laptop: {path} (0600), server {kubeadm.api_server_url(master)}")


def _finish(s, ssh, master, timeout: int) -> None:
    from labkit.cluster import health, kubeadm, status
    from labkit.kube.objects import cluster_ip
    from labkit.kube import Api, wait_reachable
    from labkit.kube.errors import Unreachable

    api = Api(s)
    deadline = time.monotonic() + timeout
    # Skipping kubeadm init right after a VM boot, the API server is still starting.
    with ui.step("Waiting for the API server") as st:
        if wait_reachable(api.nodes, timeout, st.log):
            st.skip("it answers")
    with ui.step(f"Removing the master taint from {master.name}") as st:
        if not s.untaint_master:
            st.skip("worker nodes run the pods")
        else:
            _remove_master_taint(api, master, st)
    with ui.step("Installing Weave Net from the bundle") as st:
        if api.get("DaemonSet", "kube-system", "weave-net"):
            st.skip("the weave-net DaemonSet exists")
        else:
            _apply_weave(s, ssh, master, st)
    _join_workers(s, vagrant_for(s), ssh, s.workers)

    def probe():
        try:
            return health.Health(api.nodes(), api.pods("kube-system"))
        except Unreachable as exc:
            return exc.message

    with ui.step("Waiting for node Ready, CoreDNS Running, weave-net 2/2") as st:
        ok, state = health.wait(probe, max(1.0, deadline - time.monotonic()), st.log)
        if not ok:
            if isinstance(state, str):
                raise LabkitError(f"the cluster was not ready after {timeout}s: {state}", "see invoke doctor")
            for ns in ("kube-system", "default"):
                for line in health.warning_events(api.events(ns)):
                    st.log(f"event: {line}")
            raise LabkitError(f"the cluster was not ready after {timeout}s: {state.line()}", health.hint(state))
        got, want = cluster_ip(api.get("Service", "kube-system", "kube-dns")), kubeadm.dns_ip(s)
        if got != want:
            raise LabkitError(f"kube-dns has ClusterIP {got}, settings expect {want}",
                              "the cluster was made with other network settings: invoke cluster.reset, then invoke cluster.init")
        wrong = status.address_problems(state.nodes, s)
        if wrong:
            raise LabkitError("; ".join(wrong), "run invoke vm.provision --step kubernetes, then invoke cluster.reset and cluster.init")
        st.log(f"kube-dns {got}; {state.line()}")
    from labkit.kube import kubeconfig_path

    ui.say(f"Cluster ready. From this laptop: kubectl --kubeconfig {kubeconfig_path(s)} get nodes")


def _remove_master_taint(api, master, st) -> None:
    from labkit.kube.objects import MASTER_TAINT, name

    nodes = {name(n): n for n in api.nodes()}
    if master.name not in nodes:
        raise LabkitError(f"the API server has no node {master.name}",
                          "check nodes[].name in settings against the VM's host name, then invoke cluster.reset and cluster.init")
    current = nodes[master.name].get("spec", {}).get("taints") or []
    keep = [t for t in current if t.get("key") != MASTER_TAINT]
    if len(keep) == len(current):
        st.skip("no master taint")
        return
    api.set_taints(master.name, keep)
    st.log("pods may now run on the master (single-node lab)")


def _apply_weave(s, ssh, master, st) -> None:
    from labkit.cluster import kubeadm, node as nodeops

    path = nodeops.verify_on_node(ssh, s.bundle_guest_dir, nodeops.WEAVE_MANIFEST_PREFIX, "Weave Net manifest")
    manifest = ssh.run(["cat", path], timeout=30)
    if not manifest.ok:  # an empty listing would pass the image check and apply nothing
        raise LabkitError(f"cannot read the Weave Net manifest {path} on {master.name}: {manifest.stderr.strip()[:200]}",
                          f"check the bundle in the VM (invoke vm.ssh --command 'ls -l {path}'), then invoke cluster.init")
    # Weave allocates from its own default range unless told: give it the podSubnet kubeadm was given.
    patched = nodeops.weave_with_range(manifest.stdout, str(kubeadm.pod_network(s)))
    images = nodeops.manifest_images(manifest.stdout)
    present = ssh.run(nodeops.PRESENT_IMAGES_ARGV, timeout=60)
    missing = nodeops.missing_images(images, present.stdout)
    if missing:
        raise LabkitError(f"{master.name} lacks the Weave Net image(s) {', '.join(missing)} (nothing may be pulled)",
                          "on the laptop run invoke bundle.fetch, then invoke vm.provision --step docker")
    applied = ssh.run(nodeops.apply_argv(), timeout=120, stdin=patched.encode())
    for line in applied.stdout.splitlines():
        st.log(line)
    if not applied.ok:
        raise LabkitError(f"kubectl apply of the Weave Net manifest failed: {applied.stderr.strip()[:300]}",
                          "see invoke cluster.status; then invoke cluster.init again")
    st.log(f"IPALLOC_RANGE={kubeadm.pod_network(s)} (network.pod_cidr)")


# --- join ------------------------------------------------------------------------------------

@labtask(help={"dry_run": DRY_RUN_HELP, "node": "only this worker (default: every worker in settings)"})
def join(c, dry_run=False, node=None):
    """Join the worker nodes with kubeadm join (token and CA pin from the master, never shown). Safe to re-run."""
    from labkit.cluster import join as joinmod

    s = settings(c)
    workers = [s.node(node)] if node else s.workers
    if node and workers[0].role != "worker":
        raise LabkitError(f"{node} is the {workers[0].role}, not a worker", "name a node with role: worker")
    if not workers:
        ui.say("No worker nodes in settings: nothing to join (LABKIT_WORKERS=2 adds two).")
        return
    if dry_run:
        ui.say("Dry run: nothing is changed and no VM is needed.\n")
        ui.say(f"{s.master.name}: reuse labkit's bootstrap token while it has {joinmod.TOKEN_MIN_LEFT // 60} minutes left, "
               f"else {_cmd(joinmod.create_token_argv())}; the CA pin from {joinmod.CA_CERT}")
        for w in workers:
            ui.say(f"\nkubeadm join configuration for {w.name} (token masked; root-only {joinmod.GUEST_JOIN_CONFIG}, "
                   "removed after the join):")
            ui.say(joinmod.render(s, w))
            ui.say(f"{w.name}: skipped if joined (kubelet.conf and a Node {w.name}); reset first if it holds an older "
                   f"cluster; TCP {joinmod.WEAVE_TCP} and {joinmod.kubeadm.API_PORT} to {s.master.name} and back checked; "
                   f"then {_cmd(joinmod.join_argv())}")
        return
    vg = vagrant_for(s)
    master = _ssh(s, vg, s.master, "join workers")
    try:
        _join_workers(s, vg, master, workers)
    finally:
        master.close()
    ui.say("Joined. invoke cluster.status shows the nodes; they turn Ready once weave-net runs on each.")


def _join_workers(s, vg, master, workers) -> None:
    from labkit.cluster import join as joinmod

    found = []

    def discovery():  # asked of the master once, only if some worker needs it
        if not found:
            found.append(joinmod.discovery_from(master))
            ui.say(f"  join token: {found[0][1]} (hidden), CA pin {found[0][0].ca_hash}")
        return found[0][0]

    for w in workers:
        with ui.step(f"Joining {w.name} ({w.ip}) to the cluster") as st:
            backend = _ssh(s, vg, w, "join workers")
            try:
                note = joinmod.ensure_joined(s, master, w, backend, discovery, st.log)
            finally:
                backend.close()
            if note == "already joined":
                st.skip(note)
            else:
                st.note = note


# --- status ----------------------------------------------------------------------------------

@labtask
def status(c):
    """Show the cluster's nodes (roles, taints, addresses) and kube-system pods."""
    from labkit.cluster import health, status as rows
    from labkit.kube import Api

    s = settings(c)
    api = Api(s)
    nodes, pods = api.nodes(), api.pods("kube-system")
    ui.table("Nodes", rows.NODE_COLUMNS, rows.node_rows(nodes))
    ui.say()
    ui.table("kube-system pods", rows.POD_COLUMNS, rows.pod_rows(pods))
    ui.say()
    state = health.Health(nodes, pods)
    problems = rows.address_problems(nodes, s)
    if state.ok and not problems:
        ui.say(f"Cluster ready: {state.line()}")
    else:
        ui.say(f"Not ready: {state.line()}" if not state.ok else "Ready, but:")
        for p in problems:
            ui.say(f"  {p}")
        ui.say(f"Hint: {health.hint(state)}")


# --- reset -----------------------------------------------------------------------------------

@labtask(help={"dry_run": DRY_RUN_HELP})
def reset(c, dry_run=False):
    """Undo kubeadm on every node (kubeadm reset + cleanup) and drop the laptop's kubeconfig. Safe to re-run."""
    from labkit.cluster import node as nodeops
    from labkit.kube import kubeconfig_path

    s = settings(c)
    order = [n for n in s.nodes if n.role != "master"] + [n for n in s.nodes if n.role == "master"]
    if dry_run:
        ui.say("Dry run: nothing is changed and no VM is needed.\n")
        for n in order:
            ui.say(f"{n.name}: only if kubeadm left files there ({nodeops.ADMIN_CONF}, manifests, etcd data, CNI config):")
            ui.say(f"  sudo -n sh -c '{nodeops.RESET_SCRIPT.strip()}'".replace("\n", "\n    "))
        ui.say(f"laptop: delete {kubeconfig_path(s)}")
        return
    vg = vagrant_for(s)
    for n in order:
        with ui.step(f"Resetting Kubernetes on {n.name}") as st:
            state = vg.status(n.name)
            if state == "not_created":
                st.skip("the VM does not exist")
                continue
            ssh = _ssh(s, vg, n, "reset the cluster")
            try:
                action = nodeops.reset_action(nodeops.gather(ssh))
                if action == "skip":
                    st.skip("no kubeadm state on the node")
                    continue
                result = ssh.run(nodeops.sudo_sh(nodeops.RESET_SCRIPT), timeout=300)
                for line in (result.stdout + result.stderr).splitlines()[-15:]:
                    st.log(line)
                if not result.ok:
                    raise LabkitError(f"kubeadm reset failed on {n.name} (output above)",
                                      "run invoke cluster.reset again; if it keeps failing, invoke vm.destroy and vm.up")
            finally:
                ssh.close()
    with ui.step("Forgetting the laptop's kubeconfig") as st:
        path = kubeconfig_path(s)
        if path.exists():
            path.unlink()
        else:
            st.skip("there is none")
