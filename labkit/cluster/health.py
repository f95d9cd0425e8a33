"""Is the cluster up? Node Ready, CoreDNS Running, weave-net 2/2 on every node; waiting for it.

Everything here reads the API server's JSON (dicts), so tests feed it `kubectl get -o json` output.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from labkit.kube.objects import (COREDNS, WEAVE, labels_match, missing_images, name, node_ready, pod_reason, pod_ready,
                                 ready_count)


@dataclass
class Health:
    nodes: list[dict]
    pods: list[dict]  # kube-system
    problems: list[str] = field(default_factory=list)

    @property
    def not_ready_nodes(self) -> list[str]:
        return [name(n) for n in self.nodes if not node_ready(n)]

    def _group(self, selector: dict) -> list[dict]:
        return [p for p in self.pods if labels_match(p, selector)]

    @property
    def coredns(self) -> list[dict]:
        return self._group(COREDNS)

    @property
    def weave(self) -> list[dict]:
        return self._group(WEAVE)

    @property
    def ok(self) -> bool:
        coredns, weave = self.coredns, self.weave
        return (bool(self.nodes) and not self.not_ready_nodes
                and bool(coredns) and all(pod_ready(p) for p in coredns)
                and len(weave) == len(self.nodes) and all(pod_ready(p) and ready_count(p) == (2, 2) for p in weave))

    def line(self) -> str:
        """One progress line: what is still missing."""
        if not self.nodes:
            return "no node has registered yet"
        ready_nodes = len(self.nodes) - len(self.not_ready_nodes)
        parts = [f"nodes {ready_nodes}/{len(self.nodes)} Ready",
                 f"CoreDNS {sum(pod_ready(p) for p in self.coredns)}/{len(self.coredns)} Running"
                 + _reasons(self.coredns),
                 f"weave-net {sum(pod_ready(p) for p in self.weave)}/{len(self.nodes)} ready"
                 + _reasons(self.weave)]
        return ", ".join(parts)


def _reasons(pods: list[dict]) -> str:
    reasons = sorted({pod_reason(p) for p in pods if not pod_ready(p)})
    return f" ({', '.join(reasons)})" if reasons else ""


def hint(health: Health) -> str:
    """The most likely fix for what `health` still lacks."""
    missing = sorted({img for p in health.pods for img, _reason in missing_images(p)})
    if missing:
        return (f"the node lacks the image(s) {', '.join(missing)} and cannot pull offline: on the laptop run "
                "invoke bundle.fetch, then invoke vm.provision --step docker")
    if any(pod_reason(p) == "CrashLoopBackOff" for p in health.coredns):
        return ("CoreDNS keeps crashing, usually a DNS loop through a 127.x nameserver: run invoke vm.provision "
                "--step base, then on the node: kubectl -n kube-system delete pod -l k8s-app=kube-dns")
    if not health.weave or not all(pod_ready(p) for p in health.weave):
        return ("Weave Net is not running: on the node (invoke vm.ssh) see "
                "kubectl -n kube-system logs -l name=weave-net -c weave")
    if health.not_ready_nodes:
        return "the kubelet reports NotReady: on the node (invoke vm.ssh) see journalctl -u kubelet"
    return "see invoke cluster.status; a slow laptop may need a longer --timeout"


def warning_events(events: list[dict], limit: int = 10) -> list[str]:
    """The latest Warning events, one line each, oldest first."""
    warnings = [e for e in events if e.get("type") == "Warning"]
    warnings.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    out = []
    for e in warnings[-limit:]:
        obj = e.get("involvedObject") or {}
        count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
        out.append(f"{e.get('reason', '?')} {obj.get('kind', '?').lower()}/{obj.get('name', '?')}: "
                   f"{(e.get('message') or '').strip()}{count}")
    return out


def wait(probe: Callable[[], "Health | str"], timeout: float, show: Callable[[str], None],
         interval: float = 3.0, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep):
    """Poll `probe` until it returns a Health that is ok, or `timeout` passes.

    probe returns a Health, or a string saying why it could not look (API server not answering
    yet). Each change of the progress line is shown once. Returns (ok, last Health or reason).
    """
    deadline = clock() + timeout
    last_line = None
    while True:
        state = probe()
        line = state if isinstance(state, str) else state.line()
        if line != last_line:
            show(line)
            last_line = line
        if not isinstance(state, str) and state.ok:
            return True, state
        if clock() >= deadline:
            return False, state
        sleep(interval)
