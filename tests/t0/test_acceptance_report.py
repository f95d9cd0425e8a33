"""T0: the acceptance report carries no secret, whatever the phases print (their output stands in for
Kubernetes 1.15 and VirtualBox, which cannot run here; the formats are those of kubeadm, kubectl and ssh-keygen)."""
from __future__ import annotations

import json
import subprocess

import pytest

from labkit import acceptance

# A real key, made here by ssh-keygen (the format of Vagrant's insecure-key replacement in .vagrant/).
@pytest.fixture(scope="module")
def private_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.read_text()


TOKEN = "abcdef.0123456789abcdef"  # kubeadm's bootstrap token format
JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0."
       "c2lnbmF0dXJlLW9mLXRoZS1zZXJ2aWNlLWFjY291bnQtdG9rZW4")
KEY_DATA = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB"
CERT_KEY = "9d4a2f1c0b7e6d5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a"


def leaky_output(private_key: str) -> str:
    return f"""✓ Initialising the cluster  95.2s
You can now join any number of machines by running the following on each node as root:

  kubeadm join 192.168.56.10:6443 --token {TOKEN} \\
    --discovery-token-ca-cert-hash sha256:7c9e0e2a9b1f5c6d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d
    --certificate-key {CERT_KEY}
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {KEY_DATA}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: {KEY_DATA}
    client-key-data: {KEY_DATA}
    token: {JWT}
Authorization: Bearer {JWT}
{private_key}
labkit: kubeadm init failed: the API server did not come up. Fix: invoke cluster.reset, then invoke cluster.init
"""


class Leaky(acceptance.Runner):
    """Every phase prints secrets; verify writes them into its JSON; cluster.init fails."""

    def __init__(self, private_key: str):
        self.text, self.calls = leaky_output(private_key), []

    def run(self, args, echo):
        self.calls.append(args)
        for line in self.text.splitlines():
            echo(line)
        if "--json" in args:
            path = args[args.index("--json") + 1]
            with open(path, "w") as fh:
                json.dump({"schema": "labkit-verify/1", "results": [{"detail": self.text, "token": TOKEN}]}, fh)
        return (1 if args[0] in ("cluster.init", "vm.ssh") else 0), self.text


def test_no_secret_reaches_the_report_or_the_screen(private_key, tmp_path):
    shown = []
    outcomes = acceptance.run_phases(Leaky(private_key), tmp_path, destroy=False, echo=shown.append)
    text = acceptance.report({"host os": "Linux", "bundle lock": "x"}, outcomes, "2026-12-02T12:00:00+00:00")
    secrets = [TOKEN, JWT, KEY_DATA, CERT_KEY] + [line for line in private_key.splitlines() if "-----" not in line]
    for secret in secrets:
        assert secret not in text
        assert not any(secret in line for line in shown)
    assert "BEGIN OPENSSH PRIVATE KEY" not in text
    # ...while the report still says what happened
    init = next(o for o in outcomes if o.name == "cluster.init")
    assert init.status == "failed" and init.reason == "kubeadm init failed: the API server did not come up"
    assert init.fix == "invoke cluster.reset, then invoke cluster.init"
    assert "| cluster.init | failed |" in text and "[redacted" in text


def test_phases_that_need_a_failed_one_are_skipped_with_the_reason(private_key, tmp_path):
    outcomes = {o.name: o for o in acceptance.run_phases(Leaky(private_key), tmp_path, False, lambda line: None)}
    assert outcomes["vm.up"].status == "passed" and outcomes["snapshot.save"].status == "passed"
    assert outcomes["app.deploy"].status == "skipped" and outcomes["app.deploy"].reason == "needs cluster.init, which failed"
    assert outcomes["verify.after-reboot"].reason == "needs cluster.init, which failed"
    assert outcomes["vm.up.after-halt"].status == "passed"
    assert "vm.destroy" not in outcomes
    assert outcomes["cluster.init"].vm_logs  # the VM was up: its logs were gathered
    assert outcomes["cluster.init"].steps == [["Initialising the cluster", "ok", "95.2s"]]


@pytest.mark.parametrize("line", [
    "token: " + JWT, '"token": "' + JWT + '"', "--token " + TOKEN, "client-key-data: " + KEY_DATA,
    "Authorization: Bearer " + JWT, "--certificate-key " + CERT_KEY])
def test_redact_each_form(line):
    assert all(secret not in acceptance.redact(line) for secret in (JWT, TOKEN, KEY_DATA, CERT_KEY))


def test_the_report_names_every_node_it_ran_on():
    """A two-node acceptance run (LABKIT_WORKERS=1) says so in the laptop facts, with host-only IPs."""
    from labkit import settings as settings_mod
    from tests.conftest import REPO

    facts = acceptance.host_facts(settings_mod.load(REPO, {"LABKIT_WORKERS": "1"}))
    assert facts["nodes"] == "ubuntu (master, 192.168.56.10), worker-1 (worker, 192.168.56.11)"
    assert acceptance.host_facts(settings_mod.load(REPO, {}))["nodes"] == "ubuntu (master, 192.168.56.10)"


def test_the_report_names_the_architecture_and_asks_the_guest_for_its_release_and_kernel():
    import platform

    from labkit import settings as settings_mod
    from tests.conftest import REPO

    facts = acceptance.host_facts(settings_mod.load(REPO, {"LABKIT_ARCH": "arm64", "LABKIT_PROVIDER": "libvirt"}))
    assert facts["architecture"] == f"{platform.machine()} host, arm64 guest"
    assert facts["box"].startswith("cloud-image/ubuntu-20.04") and facts["provider"] == "libvirt"
    # the command the report runs in the guest, run here (a Linux too): release name, then kernel and machine
    out = subprocess.run(["sh", "-c", acceptance.VM_LOGS["guest"]], capture_output=True, text=True, check=True).stdout
    release, kernel = out.splitlines()
    assert release and kernel.split() == [platform.system(), platform.release(), platform.machine()]
