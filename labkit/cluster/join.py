"""Workers joining the cluster: the JoinConfiguration kubeadm join reads, and the decisions around it.

Pure: no VM needed. What runs on the nodes is plain data (argv lists), as in labkit.cluster.node.

Sources (Kubernetes 1.15, the first release with kubeadm.k8s.io/v1beta2):
  * cmd/kubeadm/app/apis/kubeadm/v1beta2/types.go: JoinConfiguration {nodeRegistration, caCertPath,
    discovery {bootstrapToken {token, apiServerEndpoint, caCertHashes, unsafeSkipCAVerification},
    file, tlsBootstrapToken, timeout}, controlPlane}; caCertHashes entries are "<type>:<value>" and the
    only type is sha256, over the DER Subject Public Key Info of the cluster CA.
  * cmd/kubeadm/app/util/pubkeypin/pubkeypin.go: Hash() = "sha256:" + lower-case hex of
    sha256(cert.RawSubjectPublicKeyInfo); Allow() refuses anything but 32 bytes of hex.
  * the lab's own `kubeadm init` transcript prints the same form: --discovery-token-ca-cert-hash sha256:519f3ae3...
The bootstrap token is a credential: it is never printed or logged (the dry-run shows it masked), the
worker's copy of the configuration is root-only and removed after the join.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Optional

from labkit.cluster import kubeadm
from labkit.cluster.node import TOKEN, sudo_sh
from labkit.errors import LabkitError

GUEST_JOIN_CONFIG = "/etc/labkit/kubeadm-join.yaml"
JOIN_LOG = "/var/log/labkit-kubeadm-join.log"
CA_CERT = "/etc/kubernetes/pki/ca.crt"
TOKEN_FILE = "/etc/labkit/join-token"  # on the master, root-only: "<token> <expiry, epoch seconds>"
TOKEN_TTL = 7200  # seconds; kubeadm's own default is 24h, a join needs minutes
TOKEN_MIN_LEFT = 900  # a stored token with less left than this is replaced
TOKEN_DESCRIPTION = "labkit cluster.join"
DISCOVERY_TIMEOUT = "5m0s"
CA_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
MASKED_TOKEN = "******.****************"  # the shape of a bootstrap token, none of its characters
UNKNOWN_HASH = "sha256:<the master's CA key hash, read when the join runs>"


@dataclass(frozen=True)
class Discovery:
    """What a worker needs from the master. repr() never shows the token."""

    token: str
    ca_hash: str

    def __post_init__(self):
        if not TOKEN.fullmatch(self.token):
            raise LabkitError("the master gave no usable bootstrap token", "run invoke cluster.join again")
        if not CA_HASH.match(self.ca_hash):
            raise LabkitError("the master's CA certificate hash is malformed", "run invoke cluster.reset, then cluster.init")

    def __repr__(self) -> str:
        return f"Discovery(token={MASKED_TOKEN!r}, ca_hash={self.ca_hash!r})"

    __str__ = __repr__


def ca_cert_hash(pem: str) -> str:
    """kubeadm's pin of the cluster CA: sha256 over the certificate's DER SubjectPublicKeyInfo."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise LabkitError(f"the master's {CA_CERT} is not a PEM certificate",
                          "run invoke cluster.reset, then invoke cluster.init") from None
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def documents(settings, worker, discovery: Optional[Discovery]) -> list[dict]:
    """The JoinConfiguration for `worker`; discovery None renders the token masked (dry-run)."""
    if worker.role != "worker":
        raise LabkitError(f"{worker.name} is a {worker.role}, not a worker", "join only nodes with role: worker")
    kubeadm.kubernetes_version(settings)
    registration = kubeadm.node_registration(settings, worker)
    # The kubelet's cgroup driver comes from the cluster's kubelet-config ConfigMap; the flag pins it
    # to what this node's Docker uses (provision/files/docker-daemon.json) whatever the ConfigMap says.
    registration["kubeletExtraArgs"]["cgroup-driver"] = kubeadm.cgroup_driver(settings.root)
    return [{
        "apiVersion": kubeadm.API_VERSION,
        "kind": "JoinConfiguration",
        "nodeRegistration": registration,
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": f"{settings.master.ip}:{kubeadm.API_PORT}",
                "token": discovery.token if discovery else MASKED_TOKEN,
                "caCertHashes": [discovery.ca_hash if discovery else UNKNOWN_HASH],
            },
            "timeout": DISCOVERY_TIMEOUT,
        },
    }]


def render(settings, worker, discovery: Optional[Discovery] = None) -> str:
    import yaml

    header = f"# kubeadm join configuration (v1beta2, Kubernetes 1.15) for {worker.name}, rendered by labkit\n"
    return header + yaml.safe_dump_all(documents(settings, worker, discovery), sort_keys=False,
                                       default_flow_style=False)


# --- the token, on the master ------------------------------------------------------------------

# One round trip: the master's clock, the token labkit stored, and the tokens kubeadm still knows.
TOKEN_FACTS_SCRIPT = f"""
printf 'now=%s\\n' "$(date +%s)"
printf 'stored=%s\\n' "$(cat {TOKEN_FILE} 2>/dev/null)"
kubeadm token list 2>/dev/null | awk 'NR > 1 {{ print "listed=" $1 }}'
"""


def token_facts_argv() -> list[str]:
    return sudo_sh(TOKEN_FACTS_SCRIPT)


def create_token_argv() -> list[str]:
    return sudo_sh(f"set -e; umask 077; mkdir -p {TOKEN_FILE.rsplit('/', 1)[0]}; "
                   f"t=$(kubeadm token create --ttl {TOKEN_TTL}s --description '{TOKEN_DESCRIPTION}'); "
                   f"echo \"$t $(( $(date +%s) + {TOKEN_TTL} ))\" >{TOKEN_FILE}; echo \"$t\"")


def usable_token(facts: str) -> Optional[str]:
    """The stored token if kubeadm still has it and it has TOKEN_MIN_LEFT to live; None: create one.

    After a kubeadm reset of the master the stored token is unknown to the new cluster; after two
    hours it has expired (kubeadm's token cleaner deletes it): either way a new one is made.
    """
    now, stored, listed = 0, "", set()
    for line in facts.splitlines():
        key, _, value = line.partition("=")
        if key == "now" and value.strip().isdigit():
            now = int(value)
        elif key == "stored":
            stored = value.strip()
        elif key == "listed":
            listed.add(value.strip())
    parts = stored.split()
    if len(parts) != 2 or not TOKEN.fullmatch(parts[0]) or not parts[1].isdigit():
        return None
    token, expires = parts[0], int(parts[1])
    if token not in listed or expires - now < TOKEN_MIN_LEFT:
        return None
    return token


# --- the worker ----------------------------------------------------------------------------------

SKIP, JOIN, RESET_JOIN = "skip", "join", "reset and join"


def join_action(facts, registered: bool, version: str, node: str, same_ca: Optional[bool] = None) -> str:
    """What to do with a worker, from its Facts, whether the API server lists a Node of its name, and whether
    its CA (/etc/kubernetes/pki/ca.crt) is the master's (None: not compared).

    joined (kubelet.conf), listed, same CA  → skip
    joined but not listed (the master was reset since), joined to another CA (a restored or re-initialized
    master), or any file of a half-finished join (node.KUBEADM_FILES: kubeadm's preflight refuses them)
                                            → reset, then join
    clean (new, reset or recreated VM)      → join (a stale Node object of that name is deleted first)
    """
    if not facts.docker:
        raise LabkitError(f"Docker is not running on {node}", f"run invoke vm.provision --node {node} --step docker")
    if facts.kubeadm != version:
        found = facts.kubeadm or "not installed"
        raise LabkitError(f"kubeadm on {node} is {found}, settings want {version}",
                          f"run invoke vm.provision --node {node} --step kubernetes")
    if facts.admin_conf:
        raise LabkitError(f"{node} holds a control plane (admin.conf) but is a worker in settings",
                          f"run invoke cluster.reset, then invoke cluster.init")
    if facts.kubelet_conf and registered and same_ca is not False:
        return SKIP
    if facts.traces:
        return RESET_JOIN
    return JOIN


def why_reset(facts, registered: bool, same_ca: Optional[bool]) -> str:
    """The line cluster.join shows before it resets a worker (RESET_JOIN)."""
    if facts.kubelet_conf and same_ca is False:
        return "is joined to another cluster (its CA is not the master's: a restored or re-initialized master)"
    if facts.kubelet_conf and not registered:
        return ("has a kubelet.conf but the API server lists no Node of its name (a join stopped before the kubelet "
                "registered, or the master was reset since)")
    return f"holds what a failed or interrupted kubeadm join left ({', '.join(facts.leftovers)})"


def upload_argv() -> list[str]:
    """The join configuration on stdin → a root-only file on the worker."""
    folder = GUEST_JOIN_CONFIG.rsplit("/", 1)[0]
    return sudo_sh(f"umask 077 && mkdir -p {folder} && cat >{GUEST_JOIN_CONFIG}")


def join_argv() -> list[str]:
    """kubeadm join, its output in a root-only log; the configuration (it holds the token) removed after."""
    return sudo_sh(f"install -m 600 /dev/null {JOIN_LOG}; kubeadm join --config {GUEST_JOIN_CONFIG} >{JOIN_LOG} 2>&1; "
                   f"rc=$?; rm -f {GUEST_JOIN_CONFIG}; exit $rc")


# --- Weave's ports between nodes, before joining -------------------------------------------------

WEAVE_TCP = 6783  # Weave's control connections; its data goes over UDP 6783 (sleeve) and 6784 (fastdp)
PORT_WAIT = 3


def tcp_probe_argv(ip: str, port: int) -> list[str]:
    """Open a TCP connection with bash alone (no nc on a minimal box). Nothing needs to listen: a refusal
    comes from the other node's kernel and proves the path is open; only silence or a reject means blocked."""
    return ["timeout", str(PORT_WAIT), "bash", "-c", f"exec 3<>/dev/tcp/{ip}/{port}"]


def path_problem(result, source: str, target, port: int) -> Optional[str]:
    """None if `source` reached `target` on TCP `port` (connected or refused), else what blocks it."""
    said = (result.stderr or "").strip()
    if result.ok or "Connection refused" in said:
        return None
    what = f"{source} cannot reach {target.name} ({target.ip}) on TCP {port}"
    if result.exit_code == 124:
        return f"{what}: no answer within {PORT_WAIT}s (a firewall drops it, or {target.name} is down)"
    if "No route to host" in said or "Network is unreachable" in said:
        return f"{what}: no route (the host-only network between them is down, or a firewall rejects it)"
    return f"{what}: {said.splitlines()[-1][:120] if said else f'exit code {result.exit_code}'}"


# --- running it ------------------------------------------------------------------------------------

def master_ca_hash(master) -> str:
    """The master's CA pin (ca_cert_hash of its /etc/kubernetes/pki/ca.crt)."""
    ca = master.run(["sudo", "-n", "cat", CA_CERT], timeout=30)
    if not ca.ok:
        raise LabkitError(f"cannot read {CA_CERT} on {master.name}", "run invoke cluster.init first")
    return ca_cert_hash(ca.stdout)


def worker_ca_hash(backend) -> Optional[str]:
    """The pin of the CA a joined worker trusts; None if it has none that parses."""
    ca = backend.run(["sudo", "-n", "cat", CA_CERT], timeout=30)
    if not ca.ok:
        return None
    try:
        return ca_cert_hash(ca.stdout)
    except LabkitError:
        return None


def discovery_from(master, ca_hash: str) -> tuple[Discovery, str]:
    """The token (reused while it has time left, else a new one) from the master, with its CA pin.
    Returns (discovery, how) with how 'reused' or 'new'. Token output is never shown or logged."""
    from labkit.cluster.node import ADMIN_CONF

    fix = "check that the master runs (invoke vm.status) and holds the cluster (invoke cluster.init)"
    facts = master.run(token_facts_argv(), timeout=60)
    if not facts.ok:
        raise LabkitError(f"cannot ask {master.name} for a join token ({facts.stderr.strip()[:120]})", fix)
    token, how = usable_token(facts.stdout), "reused"
    if token is None:
        made = master.run(create_token_argv(), timeout=60)
        found = TOKEN.findall(made.stdout) if made.ok else []
        if not found:
            raise LabkitError(f"kubeadm token create failed on {master.name} (is {ADMIN_CONF} there?)", fix)
        token, how = found[-1], "new"
    return Discovery(token, ca_hash), how


def registered_argv(name: str) -> list[str]:
    from labkit.cluster.node import KUBECTL

    return ["sudo", "-n", *KUBECTL, "get", "node", name, "-o", "name", "--ignore-not-found"]


def delete_node_argv(name: str) -> list[str]:
    from labkit.cluster.node import KUBECTL

    return ["sudo", "-n", *KUBECTL, "delete", "node", name, "--ignore-not-found"]


def check_paths(settings, master, worker, worker_backend) -> list[str]:
    """TCP between master and worker, both ways, on Weave's port, plus the worker to the API server."""
    problems = []
    for source, backend, target, port in ((worker.name, worker_backend, settings.master, WEAVE_TCP),
                                          (worker.name, worker_backend, settings.master, kubeadm.API_PORT),
                                          (settings.master.name, master, worker, WEAVE_TCP)):
        problem = path_problem(backend.run(tcp_probe_argv(target.ip, port), timeout=PORT_WAIT + 5),
                               source, target, port)
        if problem:
            problems.append(problem)
    return problems


def ensure_joined(settings, master, worker, backend, master_pin, discovery, show) -> str:
    """Join `worker` (its backend `backend`) unless it already is; returns the step's note.

    `master_pin()` gives the master's CA pin, `discovery()` the Discovery (called only when needed; cache
    them across workers).
    """
    from labkit.cluster import node as nodeops

    version = kubeadm.kubernetes_version(settings)
    facts = nodeops.gather(backend)
    listed = master.run(registered_argv(worker.name), timeout=30)
    if not listed.ok:
        raise LabkitError(f"cannot ask the master about node {worker.name}: {listed.stderr.strip()[:160]}",
                          "run invoke cluster.init first")
    registered = bool(listed.stdout.strip())
    same_ca = None
    if facts.kubelet_conf and registered:
        same_ca = worker_ca_hash(backend) == master_pin()
    action = join_action(facts, registered, version, worker.name, same_ca)
    if action == SKIP:
        return "already joined"
    blocked = check_paths(settings, master, worker, backend)
    if blocked:
        for line in blocked:
            show(line)
        raise LabkitError(blocked[0], "check that both VMs run (invoke vm.status) and that no firewall on the "
                                      "laptop or in the VMs blocks 192.168.56.0/21 (TCP 6783, UDP 6783-6784, TCP 6443)")
    show(f"{worker.name} reaches {settings.master.name} on TCP {WEAVE_TCP} and {kubeadm.API_PORT}, and back")
    if action == RESET_JOIN:
        show(f"{worker.name} {why_reset(facts, registered, same_ca)}: kubeadm reset first")
        reset = backend.run(nodeops.sudo_sh(nodeops.RESET_SCRIPT), timeout=300)
        if not reset.ok:
            raise LabkitError(f"kubeadm reset failed on {worker.name}: {reset.stderr.strip()[:160]}",
                              f"run invoke vm.destroy --node {worker.name}, then vm.up and cluster.join")
    if registered:
        show(f"the API server still lists an old node {worker.name}: deleting it")
        master.run(delete_node_argv(worker.name), timeout=60)
    put = backend.run(upload_argv(), timeout=30, stdin=render(settings, worker, discovery()).encode())
    if not put.ok:
        raise LabkitError(f"cannot write the join configuration on {worker.name}: {put.stderr.strip()[:160]}",
                          "check that the vagrant user has passwordless sudo in the VM")
    result = nodeops.run_logged(backend, join_argv(), JOIN_LOG, show, timeout=600)
    if not result.ok:
        raise LabkitError(f"kubeadm join failed on {worker.name} (output above; full log {JOIN_LOG} on the node)",
                          f"fix the cause it names, then invoke cluster.join (it resets {worker.name} first)")
    return "joined" if action == JOIN else "reset and joined again"
