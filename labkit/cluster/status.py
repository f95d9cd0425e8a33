"""The rows cluster.status prints, from the API server's JSON (the columns kubectl shows)."""
from __future__ import annotations

from labkit.kube.objects import internal_ip, name, node_ready, pod_reason, ready_count

NODE_COLUMNS = ["node", "status", "roles", "taints", "version", "internal ip"]
POD_COLUMNS = ["pod", "ready", "status", "restarts", "node"]
ROLE_PREFIX = "node-role.kubernetes.io/"


def roles(node: dict) -> str:
    found = sorted(k[len(ROLE_PREFIX):] for k in (node.get("metadata", {}).get("labels") or {})
                   if k.startswith(ROLE_PREFIX))
    return ",".join(found) or "<none>"


def taints(node: dict) -> str:
    items = node.get("spec", {}).get("taints") or []
    return ",".join(f"{t.get('key')}:{t.get('effect')}" for t in items) or "<none>"


def node_rows(nodes: list[dict]) -> list[list[str]]:
    return [[name(n), "Ready" if node_ready(n) else "NotReady", roles(n), taints(n),
             n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""), internal_ip(n)]
            for n in sorted(nodes, key=name)]


def pod_rows(pods: list[dict]) -> list[list[str]]:
    rows = []
    for p in sorted(pods, key=name):
        ready, total = ready_count(p)
        restarts = sum(c.get("restartCount", 0) for c in p.get("status", {}).get("containerStatuses") or [])
        rows.append([name(p), f"{ready}/{total}", pod_reason(p), str(restarts), p.get("spec", {}).get("nodeName") or ""])
    return rows


def address_problems(nodes: list[dict], settings) -> list[str]:
    """Nodes whose kubelet reports an address other than the host-only one (the NAT pitfall)."""
    want = {n.name: n.ip for n in settings.nodes}
    out = []
    for n in nodes:
        expected, got = want.get(name(n)), internal_ip(n)
        if expected and got != expected:
            out.append(f"{name(n)} reports InternalIP {got or 'none'}, not its host-only address {expected}")
    return out
