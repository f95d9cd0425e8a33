"""T0: the JoinConfiguration a worker gets, the token decisions on the master, the worker's join decision."""
from __future__ import annotations

import datetime
import re
import shutil

import pytest
import yaml

from labkit import settings as settings_mod
from labkit.cluster import join, kubeadm
from labkit.cluster.node import Facts
from labkit.errors import LabkitError
from tests.conftest import REPO

TOKEN = "abcdef.0123456789abcdef"
HASH = "sha256:519f3ae3c5824232f225cfcb9be036422c952c0c454d4596f3779652b889b055"  # the lab transcript's form
# JoinConfiguration fields of kubeadm.k8s.io/v1beta2 (cmd/kubeadm/app/apis/kubeadm/v1beta2/types.go): kubeadm 1.15
# ignores a misspelt field silently, so the renderer may use only these.
JOIN_FIELDS = {"apiVersion", "kind", "nodeRegistration", "caCertPath", "discovery", "controlPlane"}
DISCOVERY_FIELDS = {"bootstrapToken", "file", "tlsBootstrapToken", "timeout"}
BOOTSTRAP_FIELDS = {"token", "apiServerEndpoint", "caCertHashes", "unsafeSkipCAVerification"}
REGISTRATION_FIELDS = {"name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors"}


@pytest.fixture
def s(tmp_path):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    return settings_mod.load(tmp_path, {"LABKIT_WORKERS": "2"})


def config(s, worker, discovery=None):
    docs = list(yaml.safe_load_all(join.render(s, worker, discovery)))
    assert len(docs) == 1
    return docs[0]


def test_join_configuration_uses_only_v1beta2_fields(s):
    doc = config(s, s.node("worker-1"), join.Discovery(TOKEN, HASH))
    assert (doc["apiVersion"], doc["kind"]) == ("kubeadm.k8s.io/v1beta2", "JoinConfiguration")
    assert set(doc) <= JOIN_FIELDS
    assert set(doc["discovery"]) <= DISCOVERY_FIELDS
    assert set(doc["discovery"]["bootstrapToken"]) <= BOOTSTRAP_FIELDS
    assert set(doc["nodeRegistration"]) <= REGISTRATION_FIELDS
    assert "unsafeSkipCAVerification" not in doc["discovery"]["bootstrapToken"]  # the CA is always pinned


def test_each_worker_registers_with_its_own_host_only_address(s):
    for name, ip in (("worker-1", "192.168.56.11"), ("worker-2", "192.168.56.12")):
        reg = config(s, s.node(name), join.Discovery(TOKEN, HASH))["nodeRegistration"]
        assert reg["name"] == name
        assert reg["kubeletExtraArgs"]["node-ip"] == ip == reg["kubeletExtraArgs"]["address"]
    assert "10.0.2.15" not in join.render(s, s.node("worker-1"), join.Discovery(TOKEN, HASH))


def test_workers_use_the_masters_cri_socket_and_cgroup_driver(s):
    init = {d["kind"]: d for d in kubeadm.documents(s)}
    reg = config(s, s.node("worker-1"))["nodeRegistration"]
    assert reg["criSocket"] == init["InitConfiguration"]["nodeRegistration"]["criSocket"] == "/var/run/dockershim.sock"
    assert reg["kubeletExtraArgs"]["cgroup-driver"] == init["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_discovery_points_at_the_masters_api_and_pins_its_ca(s):
    boot = config(s, s.node("worker-2"), join.Discovery(TOKEN, HASH))["discovery"]["bootstrapToken"]
    assert boot == {"apiServerEndpoint": "192.168.56.10:6443", "token": TOKEN, "caCertHashes": [HASH]}


def test_dry_run_rendering_masks_the_token(s):
    text = join.render(s, s.node("worker-1"))
    assert not re.search(r"[a-z0-9]{6}\.[a-z0-9]{16}", text)
    assert config(s, s.node("worker-1"))["discovery"]["bootstrapToken"]["token"] == join.MASKED_TOKEN


def test_discovery_never_shows_its_token():
    d = join.Discovery(TOKEN, HASH)
    assert TOKEN not in repr(d) and TOKEN not in str(d) and TOKEN not in f"{d}"
    assert HASH in repr(d)


@pytest.mark.parametrize("token, ca_hash", [
    ("abcdef.0123456789", HASH),                # too short a secret
    ("ABCDEF.0123456789abcdef", HASH),          # kubeadm tokens are lower-case
    (TOKEN, HASH[:-1]),                          # 63 hex digits: pubkeypin.Allow wants 32 bytes
    (TOKEN, HASH.replace("sha256:", "md5:")),   # the only format kubeadm knows is sha256
    (TOKEN, HASH.replace("5", "g", 1)),         # not hex
])
def test_malformed_discovery_is_refused_without_quoting_it(token, ca_hash):
    with pytest.raises(LabkitError) as info:
        join.Discovery(token, ca_hash)
    assert token not in info.value.line()


def test_only_workers_join(s):
    with pytest.raises(LabkitError, match="is a master, not a worker"):
        join.render(s, s.master)


def make_ca_pem() -> str:
    """A self-signed CA certificate like kubeadm's (CN kubernetes, RSA 2048, ten years), as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


CA_PEM = make_ca_pem()


def test_ca_hash_is_sha256_over_the_public_key_info():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])  # kubeadm's CA subject
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    got = join.ca_cert_hash(pem)
    assert join.CA_HASH.match(got)
    join.Discovery(TOKEN, got)  # accepted as kubeadm's pin format
    # another key, another pin; the certificate's own signature or dates do not enter it
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert join.ca_cert_hash(pem) == got
    resigned = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(2).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .sign(key, hashes.SHA256()))
    assert join.ca_cert_hash(resigned.public_bytes(serialization.Encoding.PEM).decode()) == got
    rekeyed = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(other.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
               .sign(other, hashes.SHA256()))
    assert join.ca_cert_hash(rekeyed.public_bytes(serialization.Encoding.PEM).decode()) != got


def test_a_broken_ca_certificate_is_one_line():
    with pytest.raises(LabkitError, match="is not a PEM certificate"):
        join.ca_cert_hash("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


# --- the token on the master ------------------------------------------------------------------

def facts(now=1_000_000, stored=None, listed=()):
    # what TOKEN_FACTS_SCRIPT prints; listed= lines are the TOKEN column of `kubeadm token list`
    lines = [f"now={now}", f"stored={stored or ''}"] + [f"listed={t}" for t in listed]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, expected", [
    (facts(stored=f"{TOKEN} 1005000", listed=[TOKEN]), TOKEN),                 # 83 minutes left: reuse
    (facts(stored=f"{TOKEN} 1000600", listed=[TOKEN]), None),                  # 10 minutes left: replace
    (facts(stored=f"{TOKEN} 999000", listed=[]), None),                        # expired, cleaned up by kubeadm
    (facts(stored=f"{TOKEN} 1005000", listed=["zzzzzz.0123456789abcdef"]), None),  # master reset since
    (facts(listed=[TOKEN]), None),                                             # nothing stored yet
    (facts(stored="garbage", listed=[TOKEN]), None),
    ("", None),                                                                # no answer at all
])
def test_a_stored_token_is_reused_only_while_kubeadm_knows_it_and_it_has_time_left(text, expected):
    assert join.usable_token(text) == expected


def test_the_token_list_column_is_read_from_kubeadms_table():
    # `kubeadm token list` (format of kubernetes/kubernetes#42233): a header, then the token first
    table = ("TOKEN                     TTL         EXPIRES   USAGES                   DESCRIPTION\n"
             f"{TOKEN}   1h          2026-12-02T08:00:00Z   authentication,signing   labkit cluster.join\n")
    import subprocess

    listed = subprocess.run(["awk", "NR > 1 { print \"listed=\" $1 }"], input=table, capture_output=True,
                            text=True).stdout
    assert listed == f"listed={TOKEN}\n"
    assert f"awk 'NR > 1 {{ print \"listed=\" $1 }}'" in join.TOKEN_FACTS_SCRIPT


# --- the worker's join decision ---------------------------------------------------------------

V = "v1.15.12"
CLEAN = Facts(kubeadm=V, docker="18.09.9")
JOINED = Facts(kubeadm=V, docker="18.09.9", kubelet_conf=True, cni_conf=1)


@pytest.mark.parametrize("facts_, registered, expected", [
    (CLEAN, False, join.JOIN),              # a new worker
    (CLEAN, True, join.JOIN),               # recreated VM: the API still lists its old Node
    (JOINED, True, join.SKIP),              # already joined
    (JOINED, False, join.RESET_JOIN),       # joined to a cluster the master has reset since
    (Facts(kubeadm=V, docker="18.09.9", cni_conf=1), False, join.RESET_JOIN),  # leftovers of a half join
])
def test_join_decision(facts_, registered, expected):
    assert join.join_action(facts_, registered, V, "worker-1") == expected


@pytest.mark.parametrize("facts_, fragment", [
    (Facts(kubeadm=V), "Docker is not running on worker-1"),
    (Facts(kubeadm="v1.14.0", docker="18.09.9"), "kubeadm on worker-1 is v1.14.0"),
    (Facts(kubeadm=V, docker="18.09.9", admin_conf=True), "holds a control plane"),
])
def test_a_worker_that_cannot_join_is_one_line_with_its_node(facts_, fragment):
    with pytest.raises(LabkitError) as info:
        join.join_action(facts_, False, V, "worker-1")
    assert fragment in info.value.line()
    assert "--node worker-1" in info.value.line() or "cluster.reset" in info.value.line()


def test_the_worker_keeps_no_copy_of_the_token():
    script = join.join_argv()[-1]
    assert f"rm -f {join.GUEST_JOIN_CONFIG}" in script and script.endswith("exit $rc")
    assert "umask 077" in join.upload_argv()[-1]


# --- ensure_joined against stand-ins for the two nodes (kubeadm 1.15 cannot run here) -------------

from labkit.backends import CommandResult  # noqa: E402


class Node:
    """A node answering the commands join sends it; records them (argv, stdin)."""

    def __init__(self, name, answers):
        self.name, self.answers, self.seen = name, answers, []

    def run(self, argv, timeout=30, stdin=None):
        text = " ".join(argv)
        self.seen.append((text, stdin))
        for needle, result in self.answers:
            if needle in text:
                return result
        return CommandResult(0, "", "", 0.0)


def ok(out=""):
    return CommandResult(0, out, "", 0.0)


def worker_node(facts_text, refused=True):
    return Node("worker-1", [("kubeadm version", ok(facts_text)),
                             ("/dev/tcp/", CommandResult(1, "", "bash: connect: Connection refused", 0.0) if refused
                              else CommandResult(124, "", "", 3.0))])


def master_node(registered):
    return Node("ubuntu", [("get node worker-1", ok("node/worker-1\n" if registered else ""))])


FRESH = "kubeadm=v1.15.12\ndocker=18.09.9\nadmin_conf=\nkubelet_conf=\nmanifests=0\netcd_data=\ncni_conf=0\n"
JOINED_FACTS = FRESH.replace("kubelet_conf=", "kubelet_conf=yes").replace("cni_conf=0", "cni_conf=1")


def test_a_recreated_worker_replaces_its_stale_node_and_joins_with_the_real_token(s):
    master, worker, shown = master_node(registered=True), worker_node(FRESH), []
    note = join.ensure_joined(s, master, s.node("worker-1"), worker, lambda: HASH, lambda: join.Discovery(TOKEN, HASH),
                              shown.append)
    assert note == "joined"
    assert any("delete node worker-1" in cmd for cmd, _ in master.seen)
    [config] = [stdin for cmd, stdin in worker.seen if join.GUEST_JOIN_CONFIG in cmd and stdin]
    assert TOKEN.encode() in config and b"node-ip: 192.168.56.11" in config
    assert any("kubeadm join --config" in cmd for cmd, _ in worker.seen)
    assert not any(TOKEN in line for line in shown)


def test_a_joined_worker_is_skipped_without_asking_for_a_token(s):
    def no_token():
        raise AssertionError("a joined worker needs no token")

    worker = worker_node(JOINED_FACTS)
    worker.answers.append((f"cat {join.CA_CERT}", ok(CA_PEM)))
    got = join.ensure_joined(s, master_node(True), s.node("worker-1"), worker, lambda: join.ca_cert_hash(CA_PEM),
                             no_token, print)
    assert got == "already joined"


def test_a_blocked_weave_port_stops_the_join_naming_both_nodes(s):
    worker, shown = worker_node(FRESH, refused=False), []
    with pytest.raises(LabkitError) as info:
        join.ensure_joined(s, master_node(False), s.node("worker-1"), worker, lambda: HASH,
                           lambda: join.Discovery(TOKEN, HASH), shown.append)
    assert info.value.line().startswith("labkit: worker-1 cannot reach ubuntu (192.168.56.10) on TCP 6783: no answer")
    assert not any("kubeadm join" in cmd for cmd, _ in worker.seen)
