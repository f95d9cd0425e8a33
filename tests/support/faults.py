"""The lab faults verify must flag, each made for real in the namespace pod network (tests/support/podnet.py)
and named with the checks it fails and the hint keys it gives (docs/verify.md's fault table)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from tests.support import transcript as tx
from tests.support.podnet import NAT_DNS


INV_NODE_B, INV_CLIENT_B = f"inv.node.{tx.INV_B}", f"inv.client.{tx.INV_B}"


INV_NODE_A = f"inv.node.{tx.INV_A}"


@dataclass
class Fault:
    inject: Callable  # PodNetwork → context manager
    api: Callable     # Snapshot → Snapshot, as the cluster would report the fault
    failed: dict      # check id → hint key
    skipped: dict     # check id → id of the failed check named as the reason
    forced: dict      # skipped check id → hint key it gives when run anyway


@contextmanager
def inv_pod_stopped(net):
    try:
        net.stop("inv-b")
        net.set_service_backends([tx.INV_A_IP])  # kube-proxy follows the endpoints: the not-ready pod leaves
        yield
    finally:
        net.start_inv("inv-b")
        net.wait_http(tx.INV_B_IP, 8080)
        net.set_service_backends(net.inv_backends)


@contextmanager
def dns_stopped(net):
    coredns = net.ns("coredns")
    try:
        # Every query the client repeats is refused at once (the kernel's rate limit on port-unreachable
        # answers would let some of them time out instead), so a forced probe fails the same way each run.
        net.in_ns(coredns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        net.stop("coredns")
        yield
    finally:
        net.start_dns()
        net.wait_dns()
        net.in_ns(coredns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=1000")


@contextmanager
def route_removed(net):
    cidr = str(net.lab.pod_cidr)
    try:
        net.sh("ip", "-n", net.node, "route", "del", cidr, "dev", "weave")
        yield
    finally:
        net.sh("ip", "-n", net.node, "route", "replace", cidr, "dev", "weave", "proto", "kernel", "scope", "link",
               "src", "10.32.0.1")


@contextmanager
def wrong_resolv_conf(net):
    try:
        # What a pod gets with dnsPolicy: Default: the node's own resolver (VirtualBox's NAT DNS).
        net.write_resolv_conf(net.ns("client"), f"nameserver {NAT_DNS}\nsearch localdomain\n")
        yield
    finally:
        net.write_resolv_conf(net.ns("client"), net.pod_resolv_conf())


@contextmanager
def one_backend(net):
    try:
        net.set_service_backends([tx.INV_A_IP])
        yield
    finally:
        net.set_service_backends(net.inv_backends)


SERVICE_PROBES = ("dns.lookup", "svc.client.name", "svc.client.fqdn", "svc.node.ip", "svc.lb")


FAULTS = {
    "inv pod stopped": Fault(
        inv_pod_stopped, tx.inv_pod_stopped,
        failed={"deploy.available": "crashloop"},
        skipped={INV_NODE_B: "deploy.available", INV_CLIENT_B: "deploy.available", "svc.lb": "deploy.available"},
        # This machine's curl 7.88 says only "Couldn't connect to server" when refused (the node's 7.47
        # says "Connection refused"), so the node side reads as unreachable.
        forced={INV_NODE_B: "pod-unreachable-node", INV_CLIENT_B: "http-refused", "svc.lb": "lb-one-replica"}),
    "DNS stopped, CoreDNS still shown Running": Fault(
        dns_stopped, lambda s: s,
        failed={"dns.lookup": "dns-down"},
        skipped={"svc.client.name": "dns.lookup", "svc.client.fqdn": "dns.lookup"},
        forced={"svc.client.name": "name-not-found", "svc.client.fqdn": "name-not-found"}),
    "DNS stopped, CoreDNS crash-looping": Fault(
        dns_stopped, tx.coredns_crashing,
        failed={"coredns": "coredns-crash"},
        skipped={"dns.lookup": "coredns", "svc.client.name": "coredns", "svc.client.fqdn": "coredns"},
        forced={"dns.lookup": "dns-down", "svc.client.name": "name-not-found", "svc.client.fqdn": "name-not-found"}),
    "weave route removed": Fault(
        route_removed, lambda s: s,
        failed={"net.route": "route-missing"},
        skipped={k: "net.route" for k in ("web.node", INV_NODE_A, INV_NODE_B) + SERVICE_PROBES},
        forced={**dict.fromkeys(("web.node", INV_NODE_A, INV_NODE_B), "pod-unreachable-node"),
                "dns.lookup": "dns-down",
                **dict.fromkeys(("svc.client.name", "svc.client.fqdn", "svc.node.ip"), "service-unreachable"),
                "svc.lb": "lb-errors"}),
    "wrong resolv.conf in client": Fault(
        wrong_resolv_conf, lambda s: s,
        failed={"dns.resolvconf": "resolv-nameserver"},
        skipped={"dns.lookup": "dns.resolvconf", "svc.client.name": "dns.resolvconf",
                 "svc.client.fqdn": "dns.resolvconf"},
        forced={"dns.lookup": "dns-nxdomain",
                **dict.fromkeys(("svc.client.name", "svc.client.fqdn"), "name-not-found")}),
    "endpoint missing": Fault(
        one_backend, tx.endpoint_missing,
        failed={"svc.endpoints-match": "endpoint-missing"},
        skipped={"svc.lb": "svc.endpoints-match"}, forced={"svc.lb": "lb-one-replica"}),
    "only one replica answering": Fault(
        one_backend, lambda s: s,
        failed={"svc.lb": "lb-one-replica"},
        skipped={}, forced={}),
}
