"""What the node's own tools print after each section of the lab, and what it means for a student.

Every function here takes the text a real command printed on the node (apt-cache, dpkg-query,
systemctl, /proc/swaps, sysctl, docker ps, kubectl, exactly as sections.py runs them) and returns
None when the section's goal is met, or a Finding: the cause in the student's terms and the next
command to type (the lab's own command, not a labkit one). Pure functions: tests/t0 feeds them
real output, including half-done states.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional

from labkit.backends import CommandResult
from labkit.kube.objects import MASTER_TAINT

GONE_SOURCES = ("apt.kubernetes.io", "packages.cloud.google.com")
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Finding:
    cause: str
    next: str  # the command to type in the VM (the lab's command)


@dataclass(frozen=True)
class Want:
    """The values a check compares against (settings and the local source line)."""

    source_line: str  # deb [trusted=yes] file:/opt/labkit/apt kubernetes-xenial main
    versions: dict  # package -> Debian version (kubelet: 1.15.12-00, ...)
    node: str
    user: str = "vagrant"
    node_ip: str = ""  # the host-only address the node must register with ("" = not checked)

    @property
    def repo_dir(self) -> str:
        return self.source_line.split()[2].removeprefix("file:")

    @property
    def suite(self) -> str:
        return self.source_line.split()[3]


def _no_answer(res: CommandResult, what: str) -> Optional[Finding]:
    """The command could not run at all (SSH down, timeout): say so instead of misreading it."""
    if res.exit_code in (124, 255) and not res.stdout:
        return Finding(f"the VM did not answer while checking {what} ({res.stderr.strip()[:120]})",
                       "(on the laptop) invoke vm.up")
    return None


def reads(what: str):
    """A decide function about `what`: a command that never ran is reported as such, not misread."""
    def wrap(decide):
        @functools.wraps(decide)
        def checked(res: CommandResult, want: Want) -> Optional[Finding]:
            return _no_answer(res, what) or decide(res, want)
        return checked
    return wrap


# --- section 1: the package source -----------------------------------------------------------

@reads("the local repository")
def repository(res: CommandResult, want: Want) -> Optional[Finding]:
    """`test -f REPO/dists/SUITE/Release`: the local repository the kit builds from the bundle."""
    if res.ok:
        return None
    return Finding(
        f"the VM has no local Kubernetes repository at {want.repo_dir} (the kit builds it from the bundle)",
        "(on the laptop) invoke vm.provision --step aptrepo")


@reads("the package sources")
def sources(res: CommandResult, want: Want) -> Optional[Finding]:
    """`grep -hs '^[[:space:]]*deb' /etc/apt/sources.list /etc/apt/sources.list.d/*.list`."""
    lines = [" ".join(line.split()) for line in res.stdout.splitlines() if line.strip()]
    gone = [line for line in lines if any(host in line for host in GONE_SOURCES)]
    if gone:
        return Finding(f"a package source points at {gone[0].split()[1]}, which no longer exists (and the VM is "
                       "offline): apt-get update fails on it. The local repository replaces it",
                       "sudo sed -i '/apt.kubernetes.io/d' /etc/apt/sources.list.d/kubernetes.list")
    uri, suite = want.source_line.split()[2], want.suite
    if not any(uri in line.split() and suite in line.split() for line in lines):
        return Finding("no package source names the local Kubernetes repository yet",
                       f'echo "{want.source_line}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list')
    return None


@reads("apt's package lists")
def candidate(res: CommandResult, want: Want) -> Optional[Finding]:
    """`apt-cache policy kubeadm`: apt has read the local source (after apt-get update)."""
    found = re.search(r"^\s*Candidate:\s*(\S+)", res.stdout, re.M)
    versions = re.findall(r"^\s*(?:\*\*\*)?\s*(\S+) \d+\s*$", res.stdout, re.M)
    uri = want.source_line.split()[2]
    if not found or found.group(1) == "(none)" or uri not in res.stdout:
        return Finding("apt has not read the new package source yet", "sudo apt-get update")
    if want.versions["kubeadm"] not in versions:
        return Finding(f"apt offers kubeadm {found.group(1)}, not {want.versions['kubeadm']}: the package lists "
                       "are stale", "sudo apt-get update")
    return None


# --- section 2: the packages, the kubelet service, swap, kernel settings -----------------------

@reads("the installed packages")
def packages(res: CommandResult, want: Want) -> Optional[Finding]:
    """`dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' PACKAGES` (exit 1 if one is unknown)."""
    seen = {}
    for line in res.stdout.splitlines():
        parts = line.split(" ")
        if len(parts) >= 3:
            seen[parts[0]] = (parts[1], parts[2].strip())
    main = [p for p in ("kubelet", "kubeadm", "kubectl") if p in want.versions]
    # db:Status-Abbrev: wanted, state, error. State i = installed; n/c = not (c: config files left);
    # H/U/F/W/t = half installed, unpacked, half configured, awaiting or pending triggers.
    state = {p: seen.get(p, ("", "un"))[1] for p in want.versions}
    broken = [p for p, s in state.items() if len(s) > 1 and s[1] in "HUFWt"]
    missing = [p for p, s in state.items() if len(s) < 2 or s[1] in "nc"]
    if broken:
        return Finding(f"{', '.join(broken)} {'is' if len(broken) == 1 else 'are'} only half installed "
                       f"(dpkg status {state[broken[0]]})", "sudo dpkg --configure -a")
    if missing:
        return Finding(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed",
                       "sudo apt-get install -y kubelet kubeadm kubectl kubernetes-cni")
    wrong = [p for p in want.versions if seen[p][0] != want.versions[p]]
    if wrong:
        p = wrong[0]
        return Finding(f"{p} {seen[p][0]} is installed, the lab needs {want.versions[p]}",
                       "sudo apt-get install -y --allow-downgrades "
                       + " ".join(f"{m}={want.versions[m]}" for m in main))
    return None


@reads("the kubelet service")
def kubelet_enabled(res: CommandResult, want: Want) -> Optional[Finding]:
    """`systemctl is-enabled kubelet`: enabled (the package enables it)."""
    state = res.stdout.strip()
    if state == "enabled":
        return None
    if not state:  # "Failed to get unit file state for kubelet.service: No such file or directory"
        return Finding("the kubelet service does not exist (its package did not install it)",
                       "sudo apt-get install -y --reinstall kubelet")
    return Finding(f"the kubelet service is {state}: it would not start at boot", "sudo systemctl enable kubelet")


@reads("swap")
def swap_off(res: CommandResult, want: Want) -> Optional[Finding]:
    """`cat /proc/swaps`: only its header line when no swap is in use."""
    active = [line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()]
    if active:
        return Finding(f"swap is on ({', '.join(active)}): the kubelet 1.15 refuses to run with swap", "sudo swapoff -a")
    return None


SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward")


@reads("the kernel settings")
def kernel_settings(res: CommandResult, want: Want) -> Optional[Finding]:
    """`sysctl -n net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward`: 1 and 1."""
    if "bridge-nf-call-iptables" in res.stderr:  # "sysctl: cannot stat /proc/sys/net/bridge/...": module not loaded
        return Finding("the br_netfilter kernel module is not loaded: bridged pod traffic bypasses iptables",
                       "sudo modprobe br_netfilter")
    values = res.stdout.split()
    for name, value in zip(SYSCTLS, values):
        if value != "1":
            return Finding(f"{name} is {value}, Kubernetes needs 1", f"sudo sysctl -w {name}=1")
    if len(values) < len(SYSCTLS):
        return Finding("the kernel settings could not be read", "sudo sysctl " + " ".join(SYSCTLS))
    return None


# --- section 3: kubeadm init -------------------------------------------------------------------

@reads("the static pod manifests")
def manifests(res: CommandResult, want: Want) -> Optional[Finding]:
    """`ls /etc/kubernetes/manifests`: kubeadm init wrote the four static pod manifests."""
    names = set(res.stdout.split())
    missing = [c for c in CONTROL_PLANE if f"{c}.yaml" not in names]
    if missing:
        return Finding("kubeadm init has not run on this node (no control plane manifests in /etc/kubernetes/manifests)"
                       if len(missing) == len(CONTROL_PLANE) else
                       f"the manifest of {', '.join(missing)} is missing from /etc/kubernetes/manifests",
                       "sudo kubeadm init" if len(missing) == len(CONTROL_PLANE) else "sudo kubeadm reset && sudo kubeadm init")
    return None


@reads("the running containers")
def static_pods(res: CommandResult, want: Want) -> Optional[Finding]:
    """`docker ps --format '{{.Names}}'`: k8s_<container>_<pod>_<namespace>_<uid>_<n> per running container."""
    running = {name.split("_")[1] for name in res.stdout.split() if name.startswith("k8s_") and name.count("_") >= 2}
    down = [c for c in CONTROL_PLANE if c not in running]
    if down:
        return Finding(f"{', '.join(down)} {'is' if len(down) == 1 else 'are'} not running: the kubelet has not "
                       "started the static pod(s)", "sudo journalctl -u kubelet --no-pager | tail -n 20")
    return None


@reads("the nodes")
def node_registered(res: CommandResult, want: Want) -> Optional[Finding]:
    """`kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes` (NAME STATUS ROLES AGE VERSION)."""
    rows = [line.split() for line in res.stdout.splitlines()[1:] if line.strip()]
    if not res.ok:
        return Finding(f"the API server does not answer kubectl ({res.stderr.strip().splitlines()[-1][:120] if res.stderr.strip() else 'no output'})",
                       "sudo docker ps -a | grep kube-apiserver")
    if not any(row and row[0] == want.node for row in rows):
        return Finding(f"node {want.node} has not registered with the API server", "sudo systemctl status kubelet")
    return None


@reads("the node's address")
def node_address(res: CommandResult, want: Want) -> Optional[Finding]:
    """`kubectl get node NAME -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}'`: the node
    registered with its host-only address. The lab's machine had one interface; a VirtualBox VM has two,
    and a kubelet without --node-ip takes the NAT one (10.0.2.15, the same on every VM). The kit's
    provision step writes --node-ip into /etc/default/kubelet (the kubelet package's drop-in reads that
    file); a VM whose section 2 was typed by hand has none."""
    found = res.stdout.strip()
    if not want.node_ip or found == want.node_ip:
        return None
    return Finding(f"node {want.node} registered with the address {found or 'none'}, not its host-only address "
                   f"{want.node_ip}: the kubelet took another interface (10.0.2.15 is VirtualBox's NAT address, "
                   "the same on every VM), so kubectl logs/exec and other nodes cannot reach it",
                   f"echo 'KUBELET_EXTRA_ARGS=--node-ip={want.node_ip}' | sudo tee /etc/default/kubelet && "
                   "sudo systemctl restart kubelet")


# --- section 4: kubectl for the user, the master taint ------------------------------------------

@reads("kubectl's configuration")
def user_kubeconfig(res: CommandResult, want: Want) -> Optional[Finding]:
    """`stat -c '%U' ~USER/.kube/config`: the admin kubeconfig copied for the VM's user, owned by them."""
    owner = res.stdout.strip()
    if not res.ok or not owner:
        return Finding(f"kubectl is not configured for {want.user} (no ~/.kube/config)",
                       "mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config && "
                       "sudo chown $(id -u):$(id -g) $HOME/.kube/config")
    if owner != want.user:
        return Finding(f"~/.kube/config belongs to {owner}, so kubectl run as {want.user} cannot read it",
                       "sudo chown $(id -u):$(id -g) $HOME/.kube/config")
    return None


@reads("the node's taints")
def untainted(res: CommandResult, want: Want) -> Optional[Finding]:
    """`kubectl describe nodes | grep -i taints` (the lab's own check): Taints: <none>."""
    taints = [line.split(":", 1)[1].strip() for line in res.stdout.splitlines() if line.lower().startswith("taints:")]
    if not taints:
        return Finding("kubectl could not describe the node", "kubectl get nodes")
    if any(MASTER_TAINT in t for t in taints):
        return Finding("the master taint is still on the node: no pod of yours can be scheduled on it",
                       f"kubectl taint nodes --all {MASTER_TAINT}-")
    return None
