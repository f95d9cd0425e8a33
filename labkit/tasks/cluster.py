"""cluster.*: Kubernetes 1.15 on the lab VM(s) with kubeadm, offline (init → join → status → reset).

Each task runs a list of steps (labkit/cluster/actions/, one file each); --dry-run prints the same list.
Nodes are reached through labkit.backends.get_backend, the API through labkit.kube.
"""
from __future__ import annotations

from labkit import ui
from labkit.errors import LabkitError
from labkit.steps import context, perform
from labkit.tasks._common import labtask, settings

DRY_RUN_HELP = "print what would be done (rendered config, commands) and change nothing; no VM needed"
WAIT_TIMEOUT = 600


# --- init ------------------------------------------------------------------------------------

@labtask(help={"dry_run": DRY_RUN_HELP,
               "timeout": f"seconds to wait for the API server, node Ready, CoreDNS and Weave Net (default {WAIT_TIMEOUT})"})
def init(c, dry_run=False, timeout=WAIT_TIMEOUT):
    """Initialize Kubernetes with kubeadm, export a kubeconfig, install Weave Net, join workers, wait until ready. Safe to re-run."""
    from labkit.cluster.actions import init_plan
    from labkit.kube import kubeconfig_path

    s = settings(c)
    if perform(init_plan(s), context(s, timeout), dry_run):
        ui.say(f"Cluster ready. From this laptop: kubectl --kubeconfig {kubeconfig_path(s)} get nodes")


# --- join ------------------------------------------------------------------------------------

@labtask(help={"dry_run": DRY_RUN_HELP, "node": "only this worker (default: every worker in settings)",
               "timeout": f"seconds to wait for the API server first (default {WAIT_TIMEOUT})"})
def join(c, dry_run=False, node=None, timeout=WAIT_TIMEOUT):
    """Join the worker nodes with kubeadm join (the token never shown; the CA pin, a public-key hash, shown). Safe to re-run."""
    from labkit.cluster.actions import join_plan

    s = settings(c)
    workers = [s.node(node)] if node else s.workers
    if node and workers[0].role != "worker":
        raise LabkitError(f"{node} is the {workers[0].role}, not a worker", "name a node with role: worker")
    if not workers:
        ui.say("No worker nodes in settings: nothing to join (LABKIT_WORKERS=2 adds two).")
        return
    if perform(join_plan(s, workers), context(s, timeout), dry_run):
        ui.say("Joined. invoke cluster.status shows the nodes; they turn Ready once weave-net runs on each.")


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
    from labkit.cluster.actions import reset_plan

    s = settings(c)
    perform(reset_plan(s), context(s), dry_run)
