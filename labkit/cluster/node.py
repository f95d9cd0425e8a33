"""What cluster tasks run on a node (over labkit.backends.Ssh), and the decisions taken from the answers.

The commands are plain data so that `--dry-run` prints exactly what a real run executes, and the
decisions are pure functions of the node's answers (tested without a VM).
"""
from __future__ import annotations

import json
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

from labkit.bundle.checksums import Checksum, parse as parse_checksums
from labkit.cluster.kubeadm import GUEST_CONFIG
from labkit.errors import LabkitError

ADMIN_CONF = "/etc/kubernetes/admin.conf"
INIT_LOG = "/var/log/labkit-kubeadm-init.log"
KUBECTL = ["kubectl", "--kubeconfig", ADMIN_CONF]
WEAVE_MANIFEST_PREFIX = "manifests/weave"
WEAVE_MANIFEST_DEFAULT = "manifests/weave-daemonset-k8s-1.11.yaml"  # its name in the bundle contract
TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")  # kubeadm bootstrap token: a credential

# Every file kubeadm 1.15 leaves on a node (Kubernetes v1.15 sources):
#  * cmd/kubeadm/app/cmd/phases/join/kubelet.go, runKubeletStartJoinPhase: writes bootstrap-kubelet.conf
#    (removed by a `defer` when the phase returns, so it stays only when kubeadm is killed: Ctrl-C, a
#    dropped SSH session, a timeout), pki/ca.crt (kept), /var/lib/kubelet/config.yaml and kubeadm-flags.env,
#    starts the kubelet, and only then waits (TLSBootstrapTimeout) for the kubelet to write kubelet.conf.
#  * cmd/kubeadm/app/preflight/checks.go, RunJoinNodeChecks: refuses a non-empty manifests/, kubelet.conf,
#    bootstrap-kubelet.conf, and the CA file (cfg.CACertPath) when joining as a worker; its common checks
#    refuse port 10250 in use (by the kubelet that config.yaml lets start).
# So a join stopped anywhere after kubelet-start began leaves files that fail every rerun in preflight.
KUBEADM_FILES = {  # fact name → path; each one is a trace of kubeadm init or join
    "admin_conf": "/etc/kubernetes/admin.conf",
    "kubelet_conf": "/etc/kubernetes/kubelet.conf",
    "bootstrap_kubelet_conf": "/etc/kubernetes/bootstrap-kubelet.conf",
    "ca_crt": "/etc/kubernetes/pki/ca.crt",
    "kubelet_config": "/var/lib/kubelet/config.yaml",
    "kubeadm_flags": "/var/lib/kubelet/kubeadm-flags.env",
}
MACHINE_ID, PRODUCT_UUID = "/etc/machine-id", "/sys/class/dmi/id/product_uuid"


def facts_script(root: str = "") -> str:
    """One round trip tells us what state the node is in: key=value lines. `root` prefixes every path
    (tests run this very script against a directory laid out the way kubeadm leaves a node)."""
    def line(key: str, command: str) -> str:
        return "printf '%s=%%s\\n' \"$(%s)\"" % (key, command)

    lines = [line("kubeadm", "kubeadm version -o short 2>/dev/null"),
             line("docker", "docker version --format '{{.Server.Version}}' 2>/dev/null")]
    lines += [line(key, f"test -f {root}{path} && echo yes") for key, path in KUBEADM_FILES.items()]
    lines += [line("manifests", f"ls {root}/etc/kubernetes/manifests 2>/dev/null | wc -l"),
              line("etcd_data", f"test -d {root}/var/lib/etcd/member && echo yes"),
              line("cni_conf", f"ls {root}/etc/cni/net.d 2>/dev/null | wc -l"),
              # Weave Net derives its peer name from these; kubeadm's install guide wants each node's unique
              line("machine_id", f"cat {root}{MACHINE_ID} 2>/dev/null"),
              line("product_uuid", f"cat {root}{PRODUCT_UUID} 2>/dev/null")]
    return "\n" + "\n".join(lines) + "\n"


FACTS_SCRIPT = facts_script()

RESET_SCRIPT = (r"""
set -e
kubeadm reset --force
# What an interrupted join leaves (KUBEADM_FILES), gone whatever this kubeadm's reset removes itself
rm -f """ + " ".join(KUBEADM_FILES.values()) + r"""
# What kubeadm reset leaves behind (it says so itself): CNI config, Weave's state and links,
# kube-proxy's and Weave's iptables rules. Docker recreates its own chains on restart.
rm -rf /etc/cni/net.d /var/lib/weave
for link in weave datapath vxlan-6784; do ip link delete "$link" 2>/dev/null || true; done
iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X
systemctl restart docker
rm -f /etc/labkit/kubeadm.yaml
rm -f "$(getent passwd vagrant | cut -d: -f6)/.kube/config"
""")

# The VM user's kubeconfig: a copy of admin.conf, only rewritten when it differs, always 0600 (the admin key).
USER_KUBECONFIG_SCRIPT = r"""
set -e
umask 077
mkdir -p "$HOME/.kube"
if sudo -n cmp -s /etc/kubernetes/admin.conf "$HOME/.kube/config"; then chmod 600 "$HOME/.kube/config"; echo unchanged; exit 0; fi
sudo -n cat /etc/kubernetes/admin.conf >"$HOME/.kube/config.part"
mv -f "$HOME/.kube/config.part" "$HOME/.kube/config"
echo written
"""


def sudo_sh(script: str) -> list[str]:
    return ["sudo", "-n", "sh", "-c", script]


def init_argv() -> list[str]:
    """kubeadm init, its output kept in a root-only log on the node (it holds the join token)."""
    return sudo_sh(f"install -m 600 /dev/null {INIT_LOG} && kubeadm init --config {GUEST_CONFIG} >{INIT_LOG} 2>&1")


def upload_config_argv() -> list[str]:
    return sudo_sh(f"mkdir -p {shlex.quote(GUEST_CONFIG.rsplit('/', 1)[0])} && cat >{GUEST_CONFIG}")


def images_list_argv() -> list[str]:
    return ["sudo", "-n", "kubeadm", "config", "images", "list", "--config", GUEST_CONFIG]


def apply_argv() -> list[str]:
    """kubectl apply of the manifest on stdin (the Weave manifest after weave_with_range)."""
    return ["sudo", "-n", *KUBECTL, "apply", "-f", "-"]


def weave_with_range(manifest: str, cidr: str) -> str:
    """The Weave manifest (a v1 List or a YAML stream) as JSON, IPALLOC_RANGE=cidr on the weave container.

    kubeadm's podSubnet only tells kube-proxy what is pod traffic; Weave allocates from IPALLOC_RANGE
    (default 10.32.0.0/12) and keeps its allocations in /var/lib/weave, so it must be right on first apply.
    """
    import yaml

    fix = "on the laptop run invoke bundle.fetch --only weave-manifest, then invoke vm.provision"
    try:
        docs = [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict)]
    except yaml.YAMLError:
        raise LabkitError("the bundle's Weave Net manifest is not YAML", fix) from None
    objs = [o for d in docs for o in (d.get("items") or [] if d.get("kind") == "List" else [d])]
    found = 0
    for obj in objs:
        if obj.get("kind") == "DaemonSet" and obj.get("metadata", {}).get("name") == "weave-net":
            for c in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
                if c.get("name") == "weave":
                    env = [e for e in c.get("env") or [] if e.get("name") != "IPALLOC_RANGE"]
                    c["env"] = env + [{"name": "IPALLOC_RANGE", "value": cidr}]
                    found += 1
    if found != 1:
        raise LabkitError("the bundle's Weave Net manifest has no weave-net DaemonSet with a weave container", fix)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})


def redact(line: str) -> str:
    """kubeadm prints the bootstrap token (in its join command): never show it."""
    return TOKEN.sub("<token hidden>", line)


# --- facts and decisions ---------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    kubeadm: str = ""
    docker: str = ""
    admin_conf: bool = False
    kubelet_conf: bool = False
    bootstrap_kubelet_conf: bool = False
    ca_crt: bool = False
    kubelet_config: bool = False
    kubeadm_flags: bool = False
    manifests: int = 0
    etcd_data: bool = False
    cni_conf: int = 0
    machine_id: str = ""
    product_uuid: str = ""

    @classmethod
    def parse(cls, text: str) -> "Facts":
        raw = {k: v.strip() for k, v in (line.split("=", 1) for line in text.splitlines() if "=" in line)}
        return cls(kubeadm=raw.get("kubeadm", ""), docker=raw.get("docker", ""),
                   **{key: raw.get(key) == "yes" for key in KUBEADM_FILES},
                   manifests=_int(raw.get("manifests")), etcd_data=raw.get("etcd_data") == "yes",
                   cni_conf=_int(raw.get("cni_conf")), machine_id=raw.get("machine_id", ""),
                   product_uuid=raw.get("product_uuid", "").lower())

    @property
    def initialized(self) -> bool:
        return self.admin_conf

    @property
    def leftovers(self) -> list[str]:
        """What kubeadm init/join left on the node (even a half-finished run), by path."""
        found = [path for key, path in KUBEADM_FILES.items() if getattr(self, key)]
        if self.manifests:
            found.append("/etc/kubernetes/manifests/*")
        if self.etcd_data:
            found.append("/var/lib/etcd/member")
        if self.cni_conf:
            found.append("/etc/cni/net.d/*")
        return found

    @property
    def traces(self) -> bool:
        return bool(self.leftovers)


def _int(value: Optional[str]) -> int:
    try:
        return int((value or "0").strip())
    except ValueError:
        return 0


def gather(backend) -> Facts:
    result = backend.run(sudo_sh(FACTS_SCRIPT), timeout=60)
    if result.exit_code == 255 or not result.stdout:
        raise LabkitError(f"cannot ask {backend.name} about its state: {result.stderr.strip() or 'no answer'}",
                          "check that the VM is running (invoke vm.status), then try again")
    return Facts.parse(result.stdout)


def init_action(facts: Facts, version: str, node: str) -> str:
    """'init' or 'skip' (already initialized); LabkitError when init cannot work here."""
    if not facts.docker:
        raise LabkitError(f"Docker is not running on {node}", "run invoke vm.provision --step docker")
    if facts.kubeadm != version:
        found = facts.kubeadm or "not installed"
        raise LabkitError(f"kubeadm on {node} is {found}, settings want {version}",
                          "run invoke vm.provision --step kubernetes")
    if facts.initialized:
        return "skip"
    if facts.traces:
        raise LabkitError(f"{node} holds the remains of an unfinished kubeadm init",
                          "run invoke cluster.reset, then invoke cluster.init")
    return "init"


def reset_action(facts: Facts, node: str = "the node") -> str:
    """'reset' if kubeadm left anything on the node, else 'skip'."""
    if not facts.traces:
        return "skip"
    if not facts.kubeadm:
        where = f" --node {node}" if node != "the node" else ""
        raise LabkitError(f"{node} has kubeadm's files ({', '.join(facts.leftovers)}) but no kubeadm to remove them",
                          f"run invoke vm.provision{where} --step kubernetes, then invoke cluster.reset")
    return "reset"


# --- images ------------------------------------------------------------------------------------

def normalize_ref(ref: str) -> str:
    """Docker's short form of an image reference: docker.io/library/busybox:1 -> busybox:1."""
    ref = ref.strip().strip("'\"")
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        ref += ":latest"
    return ref


def manifest_images(text: str) -> list[str]:
    """Every `image:` a manifest names, in order, without duplicates."""
    seen: list[str] = []
    for match in re.finditer(r"^\s*(?:-\s+)?image:\s*['\"]?([^'\"\s]+)", text, re.MULTILINE):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def missing_images(wanted: list[str], present_listing: str) -> list[str]:
    """`wanted` refs absent from `docker images --format '{{.Repository}}:{{.Tag}}'` output."""
    present = {normalize_ref(line) for line in present_listing.splitlines() if line.strip()}
    return [ref for ref in wanted if normalize_ref(ref) not in present]


PRESENT_IMAGES_ARGV = ["sudo", "-n", "docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]


# --- the bundle's CHECKSUMS, as the node sees it -----------------------------------------------

def select(checksums: list[Checksum], prefix: str, what: str) -> Checksum:
    found = [c for c in checksums if c.path.startswith(prefix)]
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)}"
        raise LabkitError(f"the bundle's CHECKSUMS lists {problem} {what} (paths starting {prefix})",
                          "on the laptop run invoke bundle.fetch, then invoke vm.provision")
    return found[0]


def verify_on_node(backend, bundle_guest: str, prefix: str, what: str) -> str:
    """The guest path of the one bundle artifact under `prefix`, after checking its hash on the node."""
    sums = backend.run(["cat", f"{bundle_guest}/CHECKSUMS"], timeout=30)
    if not sums.ok:
        raise LabkitError(f"the bundle in the VM has no CHECKSUMS ({bundle_guest})",
                          "on the laptop run invoke bundle.fetch, then invoke vm.provision")
    pin = select(parse_checksums(sums.stdout), prefix, what)
    path = f"{bundle_guest}/{pin.path}"
    got = backend.run([f"{pin.algo}sum", path], timeout=120)
    fix = f"on the laptop run invoke bundle.fetch --only {pin.name}, then invoke vm.provision"
    if not got.ok:
        raise LabkitError(f"bundle artifact {pin.name} ({pin.path}) is missing in the VM", fix)
    if got.stdout.split()[0] != pin.hex:
        raise LabkitError(f"bundle artifact {pin.name} ({pin.path}) is corrupt ({pin.algo} mismatch)", fix)
    return path


# --- long commands with live output --------------------------------------------------------------

def run_logged(backend, argv: list[str], log: str, show: Callable[[str], None], timeout: float,
               poll: float = 2.0):
    """Run `argv` (which writes to the node file `log`) and show that log's new lines as they come.

    Backends return output only at the end; kubeadm init takes minutes, so a second SSH channel
    tails the log meanwhile. Every line goes through redact() before it is shown.
    """
    shown = 0

    def show_new() -> None:
        nonlocal shown
        tail = backend.run(["sudo", "-n", "tail", "-n", f"+{shown + 1}", log], timeout=30)
        if tail.ok:
            lines = tail.stdout.splitlines()
            for line in lines:
                show(redact(line))
            shown += len(lines)

    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(backend.run, argv, timeout)
        while not job.done():
            time.sleep(poll)
            show_new()
        result = job.result()
    show_new()
    return result
