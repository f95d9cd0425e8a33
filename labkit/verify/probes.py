"""Probes: commands run on the node or in the client pod, and what their output means.

Only what the lab's machines have: on the node `ip route` and `curl` (the lab curls pods from the
node); in the busybox client pod `wget`, `nslookup`, `cat` and `sh`. Each `decide_*` function is
pure (a backends.CommandResult in, an Outcome out), so tests hold it to the real output formats.
"""
from __future__ import annotations

from typing import Optional

from labkit.backends import TIMEOUT_EXIT, CommandResult
from labkit.verify import hints, parse
from labkit.verify.model import Lab, Outcome, failed, passed

LB_REQUESTS = 20  # two replicas at 50/50: all 20 on one pod by chance is a 1-in-500,000 event


def short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def transport(res: CommandResult, source: str, node: str, pod: Optional[str] = None) -> Optional[Outcome]:
    """Failures of the way there (SSH to the node, kubectl exec into the pod), not of the probe."""
    if res.exit_code == 255 and res.stderr.startswith("ssh to "):
        return failed(short(res.stderr), hints.make("node-unreachable", node=node, error=short(res.stderr, 120)))
    if pod:
        error = parse.kubectl_error(res.stderr)
        if error:
            key = "exec-no-kubeconfig" if "localhost:8080" in error else "exec-failed"
            return failed(short(error), hints.make(key, pod=pod, error=short(error, 160), node=node))
    return None


def decide_reachable(res: CommandResult, node: str) -> Outcome:
    """`true` on the node: can the laptop run commands there at all?"""
    if res.ok:
        return passed("ssh ok")
    return failed(short(res.stderr or f"exit code {res.exit_code}"),
                  hints.make("node-unreachable", node=node, error=short(res.stderr or str(res.exit_code), 120)))


def decide_exec(res: CommandResult, pod: str, node: str) -> Outcome:
    """`true` in the pod through kubectl exec on the node."""
    problem = transport(res, "node", node, pod)
    if problem:
        return problem
    if res.ok:
        return passed("kubectl exec ok")
    return failed(short(res.stderr or f"exit code {res.exit_code}"),
                  hints.make("exec-failed", pod=pod, error=short(res.stderr, 160) or res.exit_code, node=node))


def decide_route(res: CommandResult, lab: Lab) -> Outcome:
    problem = transport(res, lab.node, lab.node)
    if problem:
        return problem
    if not res.ok:
        return failed(short(res.stderr), hints.make("unexpected", error=short(res.stderr, 120), source=lab.node))
    cidr = str(lab.pod_cidr)
    match = [r for r in parse.routes(res.stdout) if r.dest == cidr]
    if not match:
        return failed(f"no route for {cidr} in `ip route`", hints.make("route-missing", cidr=cidr, node=lab.node))
    route = match[0]
    if route.dev != "weave":
        return failed(route.line, hints.make("route-wrong-dev", cidr=cidr, dev=route.dev or route.via, node=lab.node))
    return passed(route.line)


def decide_http(res: CommandResult, *, tool: str, expect: str, exact: bool, ctx: dict,
                on_refused: str, on_unreachable: str, body_fix: str) -> Outcome:
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


def decide_resolv_conf(res: CommandResult, lab: Lab, pod: str, dns_ip: str) -> Outcome:
    """dns_ip: the kube-dns Service's ClusterIP as the API shows it."""
    problem = transport(res, pod, lab.node, pod)
    if problem:
        return problem
    if not res.ok:
        return failed(short(res.stderr), hints.make("resolv-unreadable", pod=pod, error=short(res.stderr, 120), node=lab.node))
    conf = parse.resolv_conf(res.stdout)
    found_ns = conf.nameservers[0] if conf.nameservers else "none"
    detail = f"nameserver {found_ns}; search {' '.join(conf.search) or '-'}; options {' '.join(conf.options) or '-'}"
    values = {"pod": pod, "node": lab.node, "service": lab.service}
    if found_ns != dns_ip:
        return failed(detail, hints.make("resolv-nameserver", found=found_ns, expected=dns_ip, **values))
    if not conf.search or conf.search[0] != lab.search_first:
        return failed(detail, hints.make("resolv-search", found=" ".join(conf.search) or "nothing",
                                         expected=lab.search_first, **values))
    return passed(detail)


def decide_lookup(res: CommandResult, lab: Lab, pod: str, cluster_ip: str) -> Outcome:
    problem = transport(res, pod, lab.node, pod)
    if problem:
        return problem
    found = parse.nslookup(res.stdout + "\n" + res.stderr)
    server = found.server or lab.kube_dns_ip
    values = {"name": lab.service_fqdn, "server": server, "node": lab.node, "service": lab.service,
              "domain": lab.dns_domain, "source": pod, "pod": pod}
    if cluster_ip in found.addresses:
        return passed(f"{lab.service_fqdn} → {cluster_ip} (server {server})")
    if found.addresses:
        got = ", ".join(found.addresses)
        return failed(f"answered {got}", hints.make("dns-wrong-answer", got=got, expected=cluster_ip, **values))
    error = short(found.errors[0] if found.errors else parse.first_line(res.stderr) or f"exit code {res.exit_code}", 120)
    kind = parse.nslookup_failure(found, res.exit_code)
    if kind == parse.TIMEOUT:
        return failed(error, hints.make("dns-down", error=error, **values))
    if kind == parse.RESOLVE:
        return failed(error, hints.make("dns-nxdomain", **values))
    return failed(error, hints.make("unexpected", error=error, **values))


def decide_node_name(res: CommandResult, lab: Lab, seconds: float, service_ip: str | None = None) -> Outcome:
    """From the node, the bare Service name must NOT resolve to the Service: the lab's `curl inv` that
    hangs or fails. A DHCP search domain plus a resolver that answers every name (hotel and campus
    networks) resolves it elsewhere (curl -w %{remote_ip}): the node still does not use kube-dns."""
    problem = transport(res, lab.node, lab.node)
    if problem:
        return problem
    why = "only pods use kube-dns; the node's resolv.conf does not"
    text = res.stderr.lower()
    if res.exit_code == 6:
        return passed(f"not resolved, as in the lab: {why}")
    if res.exit_code == 28 and "resolv" in text:  # curl's own resolver timeout (-m), not a stalled SSH
        return passed(f"no answer within {seconds:g}s (the lab's long wait): {why}")
    if res.exit_code == TIMEOUT_EXIT:
        return failed(short(res.stderr), hints.make("timeout", seconds=f"{res.seconds:.0f}", source=lab.node))
    if res.exit_code == 127:
        return failed("curl is missing", hints.make("tool-missing", tool="curl", source=lab.node,
                                                     tool_fix="invoke vm.provision"))
    address = res.stdout.strip()
    if address and address != service_ip:
        return passed(f"resolves to {address}, not to the Service ({service_ip or 'unknown'}): the laptop's network "
                      f"answers the name; {why}")
    found = "curl got an answer" if res.ok else short(parse.first_line(res.stderr) or f"curl exit {res.exit_code}", 80)
    return failed(f"resolved on the node: {found}", hints.make("node-resolves-cluster", service=lab.service,
                                                               found=found, node=lab.node))


def decide_balance(res: CommandResult, lab: Lab, pod: str, replicas: list, count: int) -> Outcome:
    """Repeated requests to the ClusterIP: did every inv replica answer some (its X-Served-By)?"""
    problem = transport(res, pod, lab.node, pod)
    if problem:
        return problem
    output = res.stdout + "\n" + res.stderr
    seen = parse.served_by(output)
    errors = parse.wget_errors(output)
    tally = {}
    for name in seen:
        tally[name] = tally.get(name, 0) + 1
    shown = ", ".join(f"{n} ×{k}" for n, k in sorted(tally.items())) or "no X-Served-By header"
    values = {"service": lab.service, "selector": lab.selector, "node": lab.node, "count": count}
    if errors or (not res.ok and not seen):
        error = short(errors[0] if errors else parse.first_line(res.stderr) or f"exit code {res.exit_code}", 100)
        bad = len(errors) or count - len(seen)
        return failed(f"{bad}/{count} failed; {shown}", hints.make("lb-errors", bad=bad, error=error, **values))
    if not seen:
        return failed(f"{count} answers, {shown}", hints.make("lb-no-header"))
    missing = sorted(set(replicas) - set(tally))
    if not missing:
        return passed(f"{len(seen)} requests: {shown}")
    return failed(f"{shown}; never {', '.join(missing)}",
                  hints.make("lb-one-replica", pod=", ".join(sorted(tally)), missing=", ".join(missing), **values))


def lb_command(url: str, count: int) -> list:
    """One exec, many requests: busybox sh runs the loop inside the pod (an exec per request is slow)."""
    loop = " ".join(str(i) for i in range(1, count + 1))
    return ["sh", "-c", f"for i in {loop}; do wget -S -q -O /dev/null {url} 2>&1; done"]
