"""What the node's own tools print after each section of the lab, and what it means for a student.

Every function here takes the text a real command printed on the node (apt-cache, dpkg-query,
systemctl, /proc/swaps, sysctl, docker ps, kubectl, exactly as sections.py runs them) and returns
None when the section's goal is met, or a failed `labkit.checks.Result`: the cause in the student's
terms and the fix, the next command to type in the VM (the lab's own command, with this VM's
substitutions, never a labkit task unless only the kit can do it). `key` names the cause; the keys
in ABSENT mean "nothing of this section is there yet" (progress.py: not started, not in progress).
Pure functions: tests/t0 feeds them real output, including half-done states.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Optional

from labkit import checks as model
from labkit.backends import CommandResult
from labkit.kube.objects import MASTER_TAINT

GONE_SOURCES = ("apt.kubernetes.io", "packages.cloud.google.com")
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The kubelet's resolver list provision/base.sh writes (loopback servers removed: CoreDNS would loop);
# provision/kubernetes.sh passes it as --resolv-conf. tests/t0 checks both scripts still say so.
KUBELET_RESOLV = "/etc/labkit/resolv.conf"

# Causes that mean the student has not begun the section (no file, no object of theirs yet).
ABSENT = frozenset({"no-source", "no-packages", "no-init", "no-kubeconfig", "no-cni", "no-pod", "no-deployment",
                    "no-service"})


@dataclass(frozen=True)
class Want:
    """The values a check compares against (settings and the local source line)."""

    source_line: str  # deb [trusted=yes] file:/opt/labkit/apt kubernetes-xenial main
    versions: dict  # package -> Debian version (kubelet: 1.15.12-00, ...)
    node: str
    user: str = "vagrant"
    node_ip: str = ""  # the host-only address the node must register and advertise ("" = not checked)
    weave_manifest: str = "/opt/labkit/bundle/manifests/weave-daemonset-k8s-1.11.yaml"
    images: dict = field(default_factory=lambda: {"web": "nginx:1.17.1", "client": "busybox:1.31.0",
                                                  "inv": "trash-can/inv:0.1"})

    @property
    def repo_uri(self) -> str:
        return self.source_line.split()[2]

    @property
    def repo_dir(self) -> str:
        return self.repo_uri.removeprefix("file:")

    @property
    def suite(self) -> str:
        return self.source_line.split()[3]

    @property
    def kubeadm_init(self) -> str:
        """`sudo kubeadm init` as the student types it on this VM (docs/student.md, section 3)."""
        return "sudo kubeadm init" + (f" --apiserver-advertise-address={self.node_ip}" if self.node_ip else "")

    @property
    def kubelet_args(self) -> str:
        """/etc/default/kubelet as provision/kubernetes.sh writes it."""
        return f"KUBELET_EXTRA_ARGS=--node-ip={self.node_ip} --resolv-conf={KUBELET_RESOLV}"


def fail(cause: str, fix: str, key: str, detail: str = "") -> model.Result:
    return model.failed(detail or cause, cause, fix, key)


def _no_answer(res: CommandResult, what: str) -> Optional[model.Result]:
    """The command could not run at all (SSH down, timeout): say so instead of misreading it."""
    if res.exit_code in (124, 255) and not res.stdout:
        return fail(f"the VM did not answer while checking {what} ({res.stderr.strip()[:120]})",
                    "(on the laptop) invoke vm.up", "vm-down")
    return None


def reads(what: str):
    """A decide function about `what`: a command that never ran is reported as such, not misread."""
    def wrap(decide):
        @functools.wraps(decide)
        def checked(res: CommandResult, want: Want) -> Optional[model.Result]:
            return _no_answer(res, what) or decide(res, want)
        return checked
    return wrap


# --- section 1: the package source -----------------------------------------------------------

@reads("the local repository")
def repository(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`test -f REPO/dists/SUITE/Release`: the local repository the kit builds from the bundle."""
    if res.ok:
        return None
    return fail(f"the VM has no local Kubernetes repository at {want.repo_dir} (the kit builds it from the bundle)",
                "(on the laptop) invoke vm.provision --step aptrepo", "no-repo")


def _options(words: list) -> str:
    """`[trusted=yes]` of `deb [trusted=yes] file:... suite comp`, or '' without options."""
    return words[1] if len(words) > 1 and words[1].startswith("[") else ""


@reads("the package sources")
def sources(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`grep -Hs '^[[:space:]]*deb' /etc/apt/sources.list /etc/apt/sources.list.d/*.list`: FILE:LINE each."""
    found = []
    for raw in res.stdout.splitlines():
        path, sep, line = raw.partition(":")
        if sep and line.strip():
            found.append((path, line.split()))
    gone = [(path, words) for path, words in found if any(host in " ".join(words) for host in GONE_SOURCES)]
    if gone:
        path, words = gone[0]
        uri = next((w for w in words[1:] if "://" in w), words[-1])
        return fail(f"a package source in {path} points at {uri}, which no longer exists (and the VM is offline): "
                    "apt-get update fails on it. The local repository replaces it",
                    f"sudo sed -i '/apt.kubernetes.io/d;/packages.cloud.google.com/d' {path}", "gone-source")
    ours = [(path, words) for path, words in found if want.repo_uri in words and want.suite in words]
    if not ours:
        return fail("no package source names the local Kubernetes repository yet",
                    f'echo "{want.source_line}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list', "no-source")
    untrusted = [(path, words) for path, words in ours if "trusted=yes" not in _options(words)]
    if untrusted:
        # xenial's apt 1.2 reads an unsigned repository with a warning, then `apt-get install -y` of
        # section 2 stops: "There were unauthenticated packages and -y was used without --allow-unauthenticated".
        path = untrusted[0][0]
        return fail(f"the source line in {path} lacks [trusted=yes]: the local repository is not signed, so "
                    "section 2's apt-get install -y would refuse its packages as unauthenticated",
                    f"sudo sed -i '\\|{want.repo_uri}|d' {path} && "
                    f'echo "{want.source_line}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list && '
                    "sudo apt-get update", "untrusted-source")
    return None


@reads("apt's package lists")
def candidate(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`apt-cache policy kubeadm`: apt has read the local source (after apt-get update)."""
    found = re.search(r"^\s*Candidate:\s*(\S+)", res.stdout, re.M)
    versions = re.findall(r"^\s*(?:\*\*\*)?\s*(\S+) \d+\s*$", res.stdout, re.M)
    if not found or found.group(1) == "(none)" or want.repo_uri not in res.stdout:
        return fail("apt has not read the new package source yet", "sudo apt-get update", "not-updated")
    if want.versions["kubeadm"] not in versions:
        return fail(f"apt offers kubeadm {found.group(1)}, not {want.versions['kubeadm']}: the package lists "
                    "are stale", "sudo apt-get update", "stale-lists")
    return None


# --- section 2: the packages, the kubelet service, swap, kernel settings -----------------------

@reads("the installed packages")
def packages(res: CommandResult, want: Want) -> Optional[model.Result]:
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
        return fail(f"{', '.join(broken)} {'is' if len(broken) == 1 else 'are'} only half installed "
                    f"(dpkg status {state[broken[0]]})", "sudo dpkg --configure -a", "half-installed")
    if missing:
        return fail(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed",
                    "sudo apt-get install -y kubelet kubeadm kubectl kubernetes-cni",
                    "no-packages" if len(missing) == len(want.versions) else "some-packages")
    wrong = [p for p in want.versions if seen[p][0] != want.versions[p]]
    if wrong:
        p = wrong[0]
        return fail(f"{p} {seen[p][0]} is installed, the lab needs {want.versions[p]}",
                    "sudo apt-get install -y --allow-downgrades " + " ".join(f"{m}={want.versions[m]}" for m in main),
                    "wrong-version")
    return None


@reads("the kubelet service")
def kubelet_enabled(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`systemctl is-enabled kubelet`: enabled (the package enables it)."""
    state = res.stdout.strip()
    if state == "enabled":
        return None
    if not state:  # "Failed to get unit file state for kubelet.service: No such file or directory"
        return fail("the kubelet service does not exist (its package did not install it)",
                    "sudo apt-get install -y --reinstall kubelet", "no-kubelet-unit")
    return fail(f"the kubelet service is {state}: it would not start at boot", "sudo systemctl enable kubelet",
                "kubelet-disabled")


@reads("swap")
def swap_off(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`cat /proc/swaps`: only its header line when no swap is in use."""
    active = [line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()]
    if active:
        return fail(f"swap is on ({', '.join(active)}): the kubelet 1.15 refuses to run with swap", "sudo swapoff -a",
                    "swap-on")
    return None


SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward")


@reads("the kernel settings")
def kernel_settings(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`sysctl -n net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward`: 1 and 1."""
    if "bridge-nf-call-iptables" in res.stderr:  # "sysctl: cannot stat /proc/sys/net/bridge/...": module not loaded
        return fail("the br_netfilter kernel module is not loaded: bridged pod traffic bypasses iptables",
                    "sudo modprobe br_netfilter", "no-br-netfilter")
    values = res.stdout.split()
    for name, value in zip(SYSCTLS, values):
        if value != "1":
            return fail(f"{name} is {value}, Kubernetes needs 1", f"sudo sysctl -w {name}=1", "sysctl")
    if len(values) < len(SYSCTLS):
        return fail("the kernel settings could not be read", "sudo sysctl " + " ".join(SYSCTLS), "sysctl")
    return None


# --- section 3: kubeadm init -------------------------------------------------------------------

@reads("the static pod manifests")
def manifests(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`ls /etc/kubernetes/manifests`: kubeadm init wrote the four static pod manifests."""
    names = set(res.stdout.split())
    missing = [c for c in CONTROL_PLANE if f"{c}.yaml" not in names]
    if len(missing) == len(CONTROL_PLANE):
        return fail("kubeadm init has not run on this node (no control plane manifests in /etc/kubernetes/manifests)",
                    want.kubeadm_init, "no-init")
    if missing:
        return fail(f"the manifest of {', '.join(missing)} is missing from /etc/kubernetes/manifests",
                    f"sudo kubeadm reset -f && {want.kubeadm_init}", "init-incomplete")
    return None


@reads("the running containers")
def static_pods(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`docker ps --format '{{.Names}}'`: k8s_<container>_<pod>_<namespace>_<uid>_<n> per running container."""
    running = {name.split("_")[1] for name in res.stdout.split() if name.startswith("k8s_") and name.count("_") >= 2}
    down = [c for c in CONTROL_PLANE if c not in running]
    if down:
        return fail(f"{', '.join(down)} {'is' if len(down) == 1 else 'are'} not running: the kubelet has not "
                    "started the static pod(s)", "sudo journalctl -u kubelet --no-pager | tail -n 20", "static-pods-down")
    return None


@reads("the nodes")
def node_registered(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes` (NAME STATUS ROLES AGE VERSION)."""
    rows = [line.split() for line in res.stdout.splitlines()[1:] if line.strip()]
    if not res.ok:
        said = res.stderr.strip().splitlines()[-1][:120] if res.stderr.strip() else "no output"
        return fail(f"the API server does not answer kubectl ({said})", "sudo docker ps -a | grep kube-apiserver",
                    "api-down")
    if not any(row and row[0] == want.node for row in rows):
        return fail(f"node {want.node} has not registered with the API server", "sudo systemctl status kubelet",
                    "node-missing")
    return None


@reads("the API server's address")
def advertised(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`kubectl get endpoints kubernetes -o jsonpath='{.subsets[*].addresses[*].ip}'`: the address the API
    server advertises, which kubeadm also put in its certificate and in the join command.

    kubeadm 1.15 without --apiserver-advertise-address takes the address of the interface that holds
    the default route (cmd/kubeadm/app/util/config/common.go ChooseAPIServerBindAddress →
    k8s.io/apimachinery/pkg/util/net/interface.go ChooseHostInterface: the first default route in
    /proc/net/route whose interface has a global address). On VirtualBox that is the NAT adapter,
    10.0.2.15 on every VM: the certificate then does not cover the host-only address, so the laptop
    and other nodes cannot use the API server. docs/student.md (section 3) has the full reasoning."""
    found = res.stdout.split()
    if not want.node_ip or found == [want.node_ip]:
        return None
    if not res.ok:
        said = res.stderr.strip().splitlines()[-1][:120] if res.stderr.strip() else "no output"
        return fail(f"kubectl could not read the API server's endpoints ({said})",
                    "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get endpoints kubernetes", "api-down")
    shown = " ".join(found) or "no address"
    return fail(f"the API server advertises {shown}, not the node's host-only address {want.node_ip}: kubeadm init "
                "without --apiserver-advertise-address takes the address of the default route's interface "
                "(VirtualBox's NAT, 10.0.2.15 on every VM), so its certificate does not cover "
                f"{want.node_ip} and the laptop cannot use the cluster",
                f"sudo kubeadm reset -f && {want.kubeadm_init}", "advertise-address",
                detail=f"advertises {shown}")


@reads("the node's address")
def node_address(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`kubectl get node NAME -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}'`: the node
    registered with its host-only address. The lab's machine had one interface; a VirtualBox VM has two,
    and a kubelet without --node-ip may take the NAT one (10.0.2.15, the same on every VM). The kit's
    provision step writes --node-ip and --resolv-conf into /etc/default/kubelet (the kubelet package's
    drop-in reads that file); a VM whose section 2 was typed by hand has none."""
    found = res.stdout.strip()
    if not want.node_ip or found == want.node_ip:
        return None
    return fail(f"node {want.node} registered with the address {found or 'none'}, not its host-only address "
                f"{want.node_ip}: the kubelet took another interface (10.0.2.15 is VirtualBox's NAT address, "
                "the same on every VM), so kubectl logs/exec and other nodes cannot reach it",
                f"echo '{want.kubelet_args}' | sudo tee /etc/default/kubelet && sudo systemctl restart kubelet",
                "node-ip")


# --- section 4: kubectl for the user, the master taint ------------------------------------------

@reads("kubectl's configuration")
def user_kubeconfig(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`stat -c '%U' ~USER/.kube/config && (cmp -s /etc/kubernetes/admin.conf ~USER/.kube/config && echo same ||
    echo differs)`: the admin kubeconfig copied for the VM's user, owned by them, and still the
    current cluster's (a `kubeadm reset` and a new init make new credentials)."""
    lines = res.stdout.split()
    copy = "mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config"
    own = f"sudo chown {want.user} $HOME/.kube/config"
    if not res.ok or not lines:
        return fail(f"kubectl is not configured for {want.user} (no ~/.kube/config)", f"{copy} && {own}",
                    "no-kubeconfig")
    owner = lines[0]
    if owner != want.user:
        # the lab's `sudo chown ubuntu ...` typed as printed: "chown: invalid user: 'ubuntu'", root keeps it
        return fail(f"~/.kube/config belongs to {owner}, so kubectl run as {want.user} cannot read it "
                    f"(this VM's user is {want.user}, not the lab's ubuntu)", own, "kubeconfig-owner")
    if lines[1:] == ["differs"]:
        return fail("~/.kube/config is not the cluster's current admin.conf (kubeadm init ran again since you "
                    "copied it): kubectl would present old credentials",
                    f"sudo cp /etc/kubernetes/admin.conf $HOME/.kube/config && {own}", "kubeconfig-stale")
    return None


@reads("the node's taints")
def untainted(res: CommandResult, want: Want) -> Optional[model.Result]:
    """`kubectl get node NAME -o json`: the node's taints as the API holds them (spec.taints), every one
    of them (`kubectl describe` prints the first on the `Taints:` line and the rest below it)."""
    try:
        node = json.loads(res.stdout) if res.ok else None
    except ValueError:
        node = None
    if not isinstance(node, dict):
        said = res.stderr.strip().splitlines()[-1][:120] if res.stderr.strip() else "no output"
        return fail(f"kubectl could not read node {want.node} ({said})", "kubectl get nodes", "api-down")
    taints = (node.get("spec") or {}).get("taints") or []
    if any(t.get("key") == MASTER_TAINT for t in taints):
        return fail("the master taint is still on the node: no pod of yours can be scheduled on it",
                    f"kubectl taint nodes --all {MASTER_TAINT}-", "master-taint")
    return None
