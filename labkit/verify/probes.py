"""Probes: commands run on the node or in a pod, and what their output means, for every section.

Only what the lab's machines have: on the node `ip route` and `curl` (the lab curls pods from the
node); in the busybox client pod `wget`, `nslookup`, `cat` and `sh`. Shared here: the failures of the
way there (`transport`), an HTTP GET and its verdict (`http_check`, `decide_http`), and the request
loop of the load-balancing checks. Each `decide_*` is pure (a backends.CommandResult in, a
checks.Result out), so tests hold it to the real output formats; the probes of one check only are
in its section's file (labkit/verify/checks/).
"""
from __future__ import annotations

from typing import Optional

from labkit.backends import CommandResult
from labkit.text import short
from labkit.verify import hints, parse
from labkit.verify.model import Lab, LabCheck, Result, failed, passed

LB_REQUESTS = 20  # two replicas at 50/50: all 20 on one pod by chance is a 1-in-500,000 event


def transport(res: CommandResult, source: str, node: str, pod: Optional[str] = None) -> Optional[Result]:
    """Failures of the way there (SSH to the node, kubectl exec into the pod), not of the probe."""
    if res.exit_code == 255 and res.stderr.startswith("ssh to "):
        return failed(short(res.stderr), hints.make("node-unreachable", node=node, error=short(res.stderr, 120)))
    if pod:
        error = parse.kubectl_error(res.stderr)
        if error:
            key = "exec-no-kubeconfig" if "localhost:8080" in error else "exec-failed"
            return failed(short(error), hints.make(key, pod=pod, error=short(error, 160), node=node))
    return None


def decide_http(res: CommandResult, *, tool: str, expect: str, exact: bool, ctx: dict,
                on_refused: str, on_unreachable: str, body_fix: str) -> Result:
    """HTTP GET by curl (node) or busybox wget (pod): did the expected page come back?

    ctx carries the hint values: source, target, pod, node, service.
    """
    problem = transport(res, ctx["source"], ctx["node"], ctx.get("exec_pod"))
    if problem:
        return problem
    if res.ok:
        body = res.stdout.strip()
        if (body == expect) if exact else (expect in body):
            return passed(short(body) if exact else f"{short(expect, 40)} ({len(res.stdout)} bytes)")
        return failed(f"got {short(body, 50) or 'an empty body'}",
                      hints.make("wrong-body", target=ctx["target"], expected=expect if exact else f"a page with {expect}",
                                 got=short(body, 80) or "an empty body", body_fix=body_fix, **_plain(ctx)))
    kind = parse.curl_failure(res.exit_code, res.stderr) if tool == "curl" else parse.wget_failure(res.exit_code, res.stderr)
    error = short(parse.first_line(res.stderr) or f"exit code {res.exit_code}", 120)
    if kind == parse.REFUSED:
        return failed(error, hints.make(on_refused, error=error, **ctx))
    if kind in (parse.UNREACHABLE, parse.TIMEOUT):
        return failed(error, hints.make(on_unreachable, error=error, **ctx))
    if kind == parse.RESOLVE:
        return failed(error, hints.make("name-not-found", error=error, name=ctx["target"].rsplit(":", 1)[0], **ctx))
    if kind == parse.HTTP:
        return failed(error, hints.make("http-error", error=error, **ctx))
    if kind == parse.MISSING:
        fix = "invoke vm.provision" if tool == "curl" else "invoke app.deploy (the client pod runs busybox)"
        return failed(error, hints.make("tool-missing", tool=tool, tool_fix=fix, **ctx))
    return failed(error, hints.make("unexpected", error=error, **ctx))


def _plain(ctx: dict) -> dict:
    return {k: v for k, v in ctx.items() if k not in ("target", "expected")}


def lb_command(url: str, count: int) -> list:
    """One exec, many requests: busybox sh runs the loop inside the pod (an exec per request is slow)."""
    loop = " ".join(str(i) for i in range(1, count + 1))
    return ["sh", "-c", f"for i in {loop}; do wget -S -q -O /dev/null {url} 2>&1; done"]



def http_get(tool: str, url: str, timeout: float) -> list:
    """The GET as the lab runs it: curl on a node (its own time limit inside the probe's), busybox wget in a
    pod (no -T: busybox 1.35's wget crashes with it; the backend's timeout ends it)."""
    if tool == "curl":
        return ["curl", "-sS", "-f", "-m", str(max(int(timeout) - 1, 1)), url]
    return ["wget", "-q", "-O", "-", url]


def http_check(id: str, section: int, title: str, lab: Lab, source: str, backend, url: Optional[str], target: str,
               expect: str, *, exact: bool, pod: str, needs: tuple, body_fix: str, service: bool = False,
               from_node: Optional[str] = None, to_nodes: tuple = (), skip: Optional[str] = None) -> LabCheck:
    """An HTTP GET from the node (curl) or from the client pod (busybox wget); without a `url` there is
    nothing to probe and `skip` says why."""
    on_node = source == lab.node
    tool = "curl" if on_node else "wget"
    ctx = {"source": source, "target": target, "pod": pod, "node": lab.node, "service": lab.service,
           "exec_pod": None if on_node else lab.client_pod}
    if service:
        refused, unreachable = "service-refused", "service-unreachable"
    else:
        refused, unreachable = "http-refused", "pod-unreachable-node" if on_node else "pod-unreachable-pod"

    def run(t):
        if url is None:
            return None
        res = backend.run(http_get(tool, url, t), timeout=t)
        return decide_http(res, tool=tool, expect=expect, exact=exact, ctx=ctx,
                           on_refused=refused, on_unreachable=unreachable, body_fix=body_fix)

    return LabCheck(id, title, run, tuple(needs), section=section, source=source, target=target,
                    from_node=from_node, to_nodes=to_nodes, skip=skip)
