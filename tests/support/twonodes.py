"""Two lab nodes in network namespaces: the single-node model (tests/support/podnet.py) twice, joined.

    master ns   bridge `weave` 10.32.0.1/12, host-only eth1 192.168.56.10/24, NAT eth0 as in the
                single-node model; pods: coredns 10.32.0.2 (dnsmasq, plus a stand-in for CoreDNS's
                health port: GET :8080/health → "OK")
    worker ns   bridge `weave` 10.44.0.0/12 (weave gives each peer a part of the range), host-only eth1
                192.168.56.11/24; pods: client, web, inv-a, inv-b on 10.44.0.x (the master is tainted)
    the link    a veth between the two bridges, standing in for weave's overlay (one L2 segment across
                hosts), and a veth between the host-only interfaces
    weave       a stand-in router per node: it listens on TCP 6783 on the host-only address and, on
                127.0.0.1:6784/status/connections, reports a connection to each peer as Weave Net 2.8.1
                lays it out (prog/weaver/http.go connectionsTemplate), established only if a TCP
                connection to the peer's 6783 really opens at that moment
    kube-proxy  the single-node model's nat rules, in both node namespaces
"""
from __future__ import annotations

from pathlib import Path

from tests.support.podnet import NAT_DNS, PodNetwork

MASTER_GW, WORKER_GW = "10.32.0.1", "10.44.0.0"
HOST_ONLY = {"node": "192.168.56.10", "worker": "192.168.56.11"}

WEAVE_STANDIN = r'''
import socket, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer

me, peers = sys.argv[1], [p.split("=") for p in sys.argv[2:]]  # own host-only IP; name=ip of the others
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((me, 6783))
listener.listen(16)


def accept():
    while True:
        conn, _ = listener.accept()
        conn.close()


def line(name, ip):
    address = f"{ip}:6783"
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((ip, 6783))
        return f"-> {address:<21} {'established':<11} fastdp 4a:0e:1b:7c:23:91({name}) mtu=1376"
    except OSError as exc:
        why = "i/o timeout" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc)).lower()
        return (f"-> {address:<21} {'failed':<11} dial tcp4 :0->{address}: connect: {why}, "
                "retry: 2019-07-11 19:20:31.412875 +0000 UTC m=+62.9")
    finally:
        s.close()


class Status(BaseHTTPRequestHandler):
    def do_GET(self):
        body = "".join(line(n, ip) + "\n" for n, ip in peers).encode() if self.path == "/status/connections" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


threading.Thread(target=accept, daemon=True).start()
HTTPServer(("127.0.0.1", 6784), Status).serve_forever()
'''


class TwoNodes(PodNetwork):
    """pods: role → (name, ip); `placement`: role → "node" (the master) or "worker"."""

    def __init__(self, token, workdir: Path, repo: Path, lab, pods: dict, service_ip: str, placement: dict,
                 names: dict):
        super().__init__(token, workdir, repo, lab, pods, service_ip)
        self.worker = self.ns("worker")
        self.placement, self.names = placement, names  # names: "node"/"worker" → Kubernetes node name
        self._rules_in = self.node

    def gateway(self, role: str) -> str:
        return WORKER_GW if self.placement[role] == "worker" else MASTER_GW

    def node_of(self, role: str) -> str:
        return self.worker if self.placement[role] == "worker" else self.node

    # --- building ---------------------------------------------------------------------------
    def build(self) -> None:
        cidr = self.lab.pod_cidr
        for ns, gw in ((self.node, MASTER_GW), (self.worker, WORKER_GW)):
            self.add_ns(ns)
            self.sh("ip", "-n", ns, "link", "add", "weave", "type", "bridge")
            self.sh("ip", "-n", ns, "addr", "add", f"{gw}/{cidr.prefixlen}", "dev", "weave")
            self.sh("ip", "-n", ns, "link", "set", "weave", "up")
            self.in_ns(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # the overlay: the two bridges become one segment
        self.sh("ip", "-n", self.node, "link", "add", "vx", "type", "veth", "peer", "name", "vx", "netns", self.worker)
        # the host-only network
        self.sh("ip", "-n", self.node, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns",
                self.worker)
        for ns, role in ((self.node, "node"), (self.worker, "worker")):
            self.sh("ip", "-n", ns, "link", "set", "vx", "master", "weave", "up")
            self.sh("ip", "-n", ns, "addr", "add", f"{HOST_ONLY[role]}/24", "dev", "eth1")
            self.sh("ip", "-n", ns, "link", "set", "eth1", "up")
        self.build_nat()
        for role, (_name, ip) in self.pods.items():
            self.add_pod(role, ip)
            self.write_resolv_conf(self.ns(role), self.pod_resolv_conf() if role != "coredns"
                                   else f"nameserver {NAT_DNS}\nsearch localdomain\n")
        for ns in (self.node, self.worker):
            self._rules_in = ns
            self.kube_proxy_rules()
        self._rules_in = None
        self.start_all()

    def add_pod(self, role: str, ip: str) -> None:
        ns, host_if, node = self.ns(role), f"v-{role}", self.node_of(role)
        self.add_ns(ns)
        self.sh("ip", "-n", node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.sh("ip", "-n", node, "link", "set", host_if, "master", "weave", "up")
        self.sh("ip", "-n", ns, "addr", "add", f"{ip}/{self.lab.pod_cidr.prefixlen}", "dev", "eth0")
        self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.sh("ip", "-n", ns, "route", "add", "default", "via", self.gateway(role))

    def iptables(self, *args: str, ns: str | None = None) -> None:
        self.in_ns(ns or self._rules_in, "iptables", "-w", *args)

    def set_service_backends(self, ips: list) -> None:
        if self._rules_in:  # while building one node's rules
            return super().set_service_backends(ips)
        for ns in (self.node, self.worker):
            self._rules_in = ns
            super().set_service_backends(ips)
        self._rules_in = None

    def start_all(self) -> None:
        self.start_weave()
        health = self.workdir / "coredns-health"
        health.mkdir(exist_ok=True)
        (health / "health").write_text("OK")
        self.spawn("coredns-health", ["python3", "-m", "http.server", "8080", "--bind", self.pods["coredns"][1],
                                      "--directory", str(health)], ns=self.ns("coredns"))
        super().start_all()
        self.wait_http(self.pods["coredns"][1], 8080, timeout=60)

    def start_weave(self) -> None:
        for role, other in (("node", "worker"), ("worker", "node")):
            self.spawn(f"weave-{role}", ["python3", "-c", WEAVE_STANDIN, HOST_ONLY[role],
                                         f"{self.names[other]}={HOST_ONLY[other]}"], ns=self.ns(role))
        for role in ("node", "worker"):
            self.wait_http("127.0.0.1", 6784, timeout=60, ns=self.ns(role))
