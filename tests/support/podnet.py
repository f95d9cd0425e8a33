"""A miniature of the lab's pod network, built from Linux network namespaces on this machine.

    node ns      bridge `weave` 10.32.0.1/12 (so `ip route` shows the lab's line
                 `10.32.0.0/12 dev weave proto kernel scope link src 10.32.0.1`), ip_forward on,
                 eth0 10.0.2.15/24 with a default route via 10.0.2.2 (VirtualBox's NAT),
                 iptables nat rules standing in for kube-proxy (ClusterIP DNAT) and weave (masquerade)
    nat ns       10.0.2.2 and 10.0.2.3: the NAT engine and its DNS, which knows no cluster name
    pod ns       one per pod, veth `eth0` on the bridge, default route via 10.32.0.1:
                 coredns 10.32.0.2 (dnsmasq), web 10.32.0.4 (nginx), client 10.32.0.5 (busybox),
                 inv pods 10.32.0.6 / 10.32.0.7 (the real inv/app.py, hostname = pod name)

Every address lives inside namespaces made here. `destroy()` undoes everything (processes by pid,
namespaces with their links and iptables rules, /etc/netns/<ns>) and is safe after a partial build.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from labkit.backends import Netns
from tests.support.env import need_binary, need_root, stop_process

GATEWAY = "10.32.0.1"
NAT_GW, NAT_DNS, NODE_NAT_IP = "10.0.2.2", "10.0.2.3", "10.0.2.15"


@contextmanager
def running(network: "PodNetwork"):
    """Build the network (skipping the test where this machine cannot), and leave nothing behind."""
    need_root()
    for tool in ("ip", "iptables", "dnsmasq", "nginx", "busybox", "unshare", "curl"):
        need_binary(tool)
    try:
        network.build()
        yield network
    finally:
        network.destroy()
        assert network.leftovers() == []


class BusyboxNetns(Netns):
    """A pod namespace whose tools are Debian's busybox-static: `wget` runs as `busybox wget`,
    the same applets (and the same sh) the lab's busybox client image has."""

    def __init__(self, namespace: str):
        super().__init__(namespace)
        self.prefix = self.prefix + ["busybox"]


class PodNetwork:
    def __init__(self, token: str, workdir: Path, repo: Path, lab, pods: dict, service_ip: str):
        """pods: role → (pod name, ip); roles: coredns, web, client, inv-a, inv-b."""
        self.prefix = f"lkv{token}"
        self.workdir, self.repo, self.lab = workdir, repo, lab
        self.pods, self.service_ip = pods, service_ip
        self.node = self.ns("node")
        self.nat = self.ns("nat")
        self.namespaces: list[str] = []
        self.made_etc_netns = not Path("/etc/netns").exists()  # then remove it again when empty
        self.procs: dict[str, subprocess.Popen] = {}
        self.inv_backends = [self.pods["inv-a"][1], self.pods["inv-b"][1]]

    # --- plumbing ---------------------------------------------------------------------------
    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def sh(self, *argv: str) -> None:
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {out.stderr.strip()}")

    def in_ns(self, ns: str, *argv: str) -> None:
        self.sh("ip", "netns", "exec", ns, *argv)

    def add_ns(self, name: str) -> None:
        self.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.sh("ip", "-n", name, "link", "set", "lo", "up")

    def etc(self, ns: str) -> Path:
        return Path("/etc/netns") / ns

    def write_resolv_conf(self, ns: str, text: str) -> None:
        self.etc(ns).mkdir(parents=True, exist_ok=True)
        (self.etc(ns) / "resolv.conf").write_text(text)

    def pod_resolv_conf(self) -> str:
        """The lab's `cat /etc/resolv.conf` in the client pod, from the lab's values."""
        lab = self.lab
        return (f"nameserver {lab.kube_dns_ip}\n"
                f"search {lab.search_first} svc.{lab.dns_domain} {lab.dns_domain} localdomain\n"
                "options ndots:5\n")

    # --- building ---------------------------------------------------------------------------
    def build(self) -> None:
        node, cidr = self.node, self.lab.pod_cidr
        self.add_ns(node)
        self.sh("ip", "-n", node, "link", "add", "weave", "type", "bridge")
        self.sh("ip", "-n", node, "addr", "add", f"{GATEWAY}/{cidr.prefixlen}", "dev", "weave")
        self.sh("ip", "-n", node, "link", "set", "weave", "up")
        self.in_ns(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.build_nat()
        for role, (_name, ip) in self.pods.items():
            self.add_pod(role, ip)
            # What the kubelet writes into every pod (ClusterFirst); CoreDNS itself uses the node's.
            self.write_resolv_conf(self.ns(role), self.pod_resolv_conf() if role != "coredns"
                                   else f"nameserver {NAT_DNS}\nsearch localdomain\n")
        self.kube_proxy_rules()
        self.start_all()

    def build_nat(self) -> None:
        """The NAT side: where the node's default route and its resolver are."""
        node = self.node
        self.write_resolv_conf(node, f"nameserver {NAT_DNS}\nsearch localdomain\n")
        self.add_ns(self.nat)
        self.sh("ip", "-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", self.nat)
        self.sh("ip", "-n", node, "addr", "add", f"{NODE_NAT_IP}/24", "dev", "eth0")
        self.sh("ip", "-n", self.nat, "addr", "add", f"{NAT_GW}/24", "dev", "eth0")
        self.sh("ip", "-n", self.nat, "addr", "add", f"{NAT_DNS}/24", "dev", "eth0")
        for ns in (node, self.nat):
            self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.sh("ip", "-n", node, "route", "add", "default", "via", NAT_GW)

    def add_pod(self, role: str, ip: str) -> None:
        ns, host_if = self.ns(role), f"v-{role}"
        self.add_ns(ns)
        self.sh("ip", "-n", self.node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.sh("ip", "-n", self.node, "link", "set", host_if, "master", "weave", "up")
        self.sh("ip", "-n", ns, "addr", "add", f"{ip}/{self.lab.pod_cidr.prefixlen}", "dev", "eth0")
        self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY)

    def iptables(self, *args: str) -> None:
        self.in_ns(self.node, "iptables", "-w", *args)

    def kube_proxy_rules(self) -> None:
        """What kube-proxy (iptables mode) and weave set up, reduced to the rules that carry traffic."""
        dns_ip = self.pods["coredns"][1]
        self.iptables("-t", "nat", "-N", "KUBE-SERVICES")
        self.iptables("-t", "nat", "-N", "KUBE-SVC-INV")
        for chain in ("PREROUTING", "OUTPUT"):
            self.iptables("-t", "nat", "-A", chain, "-j", "KUBE-SERVICES")
        for proto in ("udp", "tcp"):
            self.iptables("-t", "nat", "-A", "KUBE-SERVICES", "-d", f"{self.lab.kube_dns_ip}/32", "-p", proto,
                          "--dport", "53", "-j", "DNAT", "--to-destination", f"{dns_ip}:53")
        self.iptables("-t", "nat", "-A", "KUBE-SERVICES", "-d", f"{self.service_ip}/32", "-p", "tcp",
                      "--dport", str(self.lab.service_port), "-j", "KUBE-SVC-INV")
        # Replies from a pod must return through the node to be un-NATed (kube-proxy's masquerade
        # for hairpin traffic, weave's for traffic leaving the pod range).
        self.iptables("-t", "nat", "-A", "POSTROUTING", "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE")
        self.iptables("-t", "nat", "-A", "POSTROUTING", "-s", str(self.lab.pod_cidr), "-o", "eth0", "-j", "MASQUERADE")
        self.set_service_backends(self.inv_backends)

    def set_service_backends(self, ips: list) -> None:
        """kube-proxy's load balancing: rule i of n takes its share with probability 1/(n-i)."""
        self.iptables("-t", "nat", "-F", "KUBE-SVC-INV")
        for i, ip in enumerate(ips):
            share = [] if i == len(ips) - 1 else ["-m", "statistic", "--mode", "random",
                                                  "--probability", f"{1 / (len(ips) - i):.5f}"]
            self.iptables("-t", "nat", "-A", "KUBE-SVC-INV", "-p", "tcp", *share, "-j", "DNAT",
                          "--to-destination", f"{ip}:{self.lab.target_port}")

    # --- processes --------------------------------------------------------------------------
    def spawn(self, role: str, argv: list, cwd: Path | None = None, ns: str | None = None) -> None:
        """argv in the namespace of `role` (or `ns`: a second process in a pod's namespace)."""
        log = open(self.workdir / f"{role}.log", "ab")
        self.procs[role] = subprocess.Popen(["ip", "netns", "exec", ns or self.ns(role), *argv], cwd=cwd,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def start_dns(self) -> None:
        ip = self.pods["coredns"][1]
        self.spawn("coredns", ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                               f"--listen-address={ip}", "--pid-file=", "--log-facility=-",
                               f"--host-record={self.lab.service_fqdn},{self.service_ip}",
                               f"--host-record=kube-dns.kube-system.svc.{self.lab.dns_domain},{self.lab.kube_dns_ip}",
                               f"--local=/{self.lab.dns_domain}/"])

    def start_nat_dns(self) -> None:
        """The NAT engine's resolver: answers NXDOMAIN for every name (it knows no cluster)."""
        self.spawn("nat", ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                           f"--listen-address={NAT_DNS}", "--pid-file=", "--log-facility=-", "--local=/#/"])

    def start_web(self) -> None:
        www = self.workdir / "www"
        www.mkdir(exist_ok=True)
        # A copy of nginx's own welcome page (the one `curl 10.32.0.4` shows in the lab).
        shutil.copy("/usr/share/nginx/html/index.html", www / "index.html")
        conf = self.workdir / "nginx.conf"
        temp = self.workdir / "nginx-temp"
        temp.mkdir(exist_ok=True)
        conf.write_text(f"""
user root;
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
    server {{ listen 80; root {www}; }}
}}
""")
        self.spawn("web", ["nginx", "-e", str(self.workdir / "nginx-error.log"), "-c", str(conf),
                           "-g", "daemon off;"])

    def start_inv(self, role: str) -> None:
        name = self.pods[role][0]
        # Its own UTS namespace, so the service's X-Served-By is the pod name, as in Kubernetes.
        self.spawn(role, ["unshare", "--uts", "sh", "-c", 'hostname "$1" && PORT="$2" exec "$3" inv/app.py',
                          "sh", name, str(self.lab.target_port), sys.executable], cwd=self.repo)

    def start_all(self) -> None:
        self.start_nat_dns()
        self.start_dns()
        self.start_web()
        for role in ("inv-a", "inv-b"):
            self.start_inv(role)
        self.wait_http(self.pods["web"][1], 80)
        for role in ("inv-a", "inv-b"):
            self.wait_http(self.pods[role][1], self.lab.target_port)
        self.wait_dns()

    def stop(self, role: str) -> None:
        proc = self.procs.pop(role, None)
        if proc is None:
            return
        stop_process(proc, 5)

    def wait_http(self, ip: str, port: int, timeout: float = 20, ns: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["ip", "netns", "exec", ns or self.node, "curl", "-s", "-o", "/dev/null", "-m", "1",
                                  f"http://{ip}:{port}/"], capture_output=True)
            if out.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing answered at {ip}:{port} within {timeout}s; logs in {self.workdir}")

    def wait_dns(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["ip", "netns", "exec", self.ns("client"), "busybox", "nslookup",
                                  self.lab.service_fqdn], capture_output=True, text=True)
            if self.service_ip in out.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError(f"dnsmasq did not answer within {timeout}s; logs in {self.workdir}")

    # --- tearing down -----------------------------------------------------------------------
    def destroy(self) -> None:
        for role in list(self.procs):
            try:
                self.stop(role)
            except Exception:
                pass
        for ns in reversed(self.namespaces):
            # Anything still running in our namespaces was started by us (nginx's worker, say).
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(self.etc(ns), ignore_errors=True)
        self.namespaces.clear()
        if self.made_etc_netns:
            try:
                Path("/etc/netns").rmdir()
            except OSError:
                pass  # not empty: someone else uses it now

    def leftovers(self) -> list:
        """Namespaces or /etc/netns entries of ours that still exist (should be none after destroy)."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        found = [n for n in listed if n.startswith(self.prefix + "-")]
        found += [str(p) for p in Path("/etc/netns").glob(self.prefix + "-*")] if Path("/etc/netns").exists() else []
        return found
