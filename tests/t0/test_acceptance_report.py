"""T0: the acceptance report carries no secret, whatever the phases print (their output stands in for
Kubernetes 1.15 and VirtualBox, which cannot run here; the formats are those of kubeadm, kubectl and ssh-keygen)."""
from __future__ import annotations

import json
import subprocess

import pytest

from labkit import acceptance, checks

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
    """Stands in for the tasks (VirtualBox and Kubernetes cannot run here): every phase prints secrets and
    writes what it did as the real tasks do (labkit.results records, verify's --json file); cluster.init fails."""

    def __init__(self, private_key: str, fail=("cluster.init", "vm.ssh")):
        self.text, self.calls, self.fail, self.interrupted = leaky_output(private_key), [], fail, False

    def run(self, args, echo, timeout=None, results_file=None):
        self.calls.append(args)
        for line in self.text.splitlines():
            echo(line)
        code = 1 if args[0] in self.fail else 0
        if results_file is not None:
            with open(results_file, "a", encoding="utf-8") as fh:
                for record in ([{"kind": "step", "title": "Initialising the cluster", "outcome": "ok", "note": "",
                                 "seconds": 95.2}, {"kind": "provision", "step": "base", "seconds": 41}] +
                               ([{"kind": "error", "message": "kubeadm init failed: the API server did not come up",
                                  "fix": "invoke cluster.reset, then invoke cluster.init"}] if code else [])):
                    fh.write(json.dumps(record) + "\n")
        if "--json" in args:
            path = args[args.index("--json") + 1]
            with open(path, "w") as fh:
                json.dump({"schema": "labkit-verify/1", "results": [{"detail": self.text, "token": TOKEN}]}, fh)
        return acceptance.Ran(code, self.text)


NODES = [type("Node", (), {"name": "ubuntu", "role": "master"})()]


def run_all(runner, tmp_path, echo=None, written=None):
    run = acceptance.Run(runner, tmp_path, NODES, destroy=False, echo=echo or (lambda line: None))
    done, interrupted = acceptance.run(run, (written if written is not None else []).append)
    return run, {c.check.id: c for c in done}, done


def test_no_secret_reaches_the_report_or_the_screen(private_key, tmp_path):
    shown = []
    run, by, done = run_all(Leaky(private_key), tmp_path, shown.append)
    text = acceptance.report({"host os": "Linux", "bundle lock": "x"}, done, "2026-12-02T12:00:00+00:00", run.evidence)
    secrets = [TOKEN, JWT, KEY_DATA, CERT_KEY] + [line for line in private_key.splitlines() if "-----" not in line]
    for secret in secrets:
        assert secret not in text
        assert not any(secret in line for line in shown)
    assert "BEGIN OPENSSH PRIVATE KEY" not in text
    # ...while the report still says what happened, from what the task wrote as data
    init = by["cluster.init"]
    assert init.status == "fail" and init.result.detail == "kubeadm init failed: the API server did not come up"
    assert init.result.fix == "invoke cluster.reset, then invoke cluster.init"
    assert "| cluster.init | fail |" in text and "[redacted" in text
    assert acceptance.read_json_text(text)["summary"]["fail"] == 1  # the machine-readable part parses


def test_phases_that_need_a_failed_one_are_skipped_with_the_reason(private_key, tmp_path):
    run, by, done = run_all(Leaky(private_key), tmp_path)
    assert by["vm.up"].status == "pass" and by["snapshot.save"].status == "pass"
    assert by["app.deploy"].status == "skip" and by["app.deploy"].result.detail == "needs: cluster.init"
    assert by["verify.after-reboot"].result.detail == "needs: cluster.init"
    assert by["vm.up.after-halt"].status == "pass"
    assert "vm.destroy" not in by
    assert run.evidence["cluster.init"].vm_logs  # the VM was up: its logs were gathered
    assert "pods" in run.evidence["cluster.init"].vm_logs  # the master's cluster view too


def test_the_steps_come_from_the_tasks_data_not_their_screen(private_key, tmp_path):
    runner = Leaky(private_key)
    runner.text = "✓ A status line on the screen only  3.0s\n"
    run, by, done = run_all(runner, tmp_path)
    steps = run.evidence["vm.up"].steps
    assert [s.get("title") or s.get("step") for s in steps] == ["Initialising the cluster", "base"]
    text = acceptance.report({}, done, "t", run.evidence)
    assert "| Initialising the cluster | ok | 95.2s |" in text and "| provision base | ok | 41s |" in text
    assert "A status line on the screen only" not in text.split("### cluster.init")[0]


def test_the_report_is_rewritten_after_every_phase(private_key, tmp_path):
    written = []
    run_all(Leaky(private_key), tmp_path, written=written)
    assert [len(w) for w in written] == list(range(1, len(written) + 1))
    assert [c.check.id for c in written[0]] == ["doctor"]


def test_doctors_checks_reach_the_report_even_when_it_passes(tmp_path):
    report = {"schema": "labkit-checks/1", "kind": "doctor", "summary": {"warn": 1},
              "checks": [{"id": "memory", "title": "memory", "status": "warn", "detail": "2.1 GiB free of 8.0 GiB",
                          "fix": "close browsers and other programs before vm.up"}]}

    class Doctor(acceptance.Runner):
        interrupted = False

        def run(self, args, echo, timeout=None, results_file=None):
            if args[0] == "doctor":
                results_file.write_text(json.dumps({"kind": "report", "report": report}) + "\n")
            return acceptance.Ran(0, "")

    run, by, done = run_all(Doctor(tmp_path), tmp_path)
    text = acceptance.report({}, done, "t", run.evidence)
    assert by["doctor"].status == "pass"
    assert "## doctor's checks (JSON)" in text and "close browsers and other programs before vm.up" in text


def test_a_failed_doctor_phase_names_its_first_failed_check(tmp_path):
    """doctor ends with exit 1 and no one-line error: the phase says which check failed, from its report."""
    report = {"schema": "labkit-checks/1", "kind": "doctor", "checks": [
        {"id": "memory", "title": "memory", "status": "warn", "detail": "2.1 GiB free"},
        {"id": "provider", "title": "provider", "status": "fail", "detail": "VirtualBox is not installed (no VBoxManage found)",
         "fix": "install VirtualBox 7.0"},
        {"id": "box", "title": "box", "status": "fail", "detail": "the box is neither installed nor in the bundle"}]}

    class Doctor(acceptance.Runner):
        interrupted = False

        def run(self, args, echo, timeout=None, results_file=None):
            if args[0] == "doctor":
                results_file.write_text(json.dumps({"kind": "report", "report": report}) + "\n")
                return acceptance.Ran(1, "3 failed, 1 warning(s), 10 passed\n")
            return acceptance.Ran(0, "")

    run, by, done = run_all(Doctor(tmp_path), tmp_path)
    assert by["doctor"].result == checks.failed(
        "provider: VirtualBox is not installed (no VBoxManage found) (1 more failed check(s) in its report)",
        fix="install VirtualBox 7.0", key="checks")


def test_a_phase_over_its_timeout_is_a_failure_naming_it(tmp_path):
    class Slow(acceptance.Runner):
        interrupted = False

        def run(self, args, echo, timeout=None, results_file=None):
            return acceptance.Ran(-2, "still waiting for the machine to boot\n", stopped=args[0] == "vm.up")

    run, by, done = run_all(Slow(tmp_path), tmp_path)
    up = by["vm.up"].result
    assert up.status == "fail" and up.key == "timeout" and up.detail.startswith("no end within 60 minutes")
    assert by["cluster.init"].result.detail == "needs: vm.up"


def test_the_report_is_named_for_the_laptop():
    import datetime

    when = datetime.datetime(2026, 12, 7, 9, 30, tzinfo=datetime.timezone.utc)
    assert acceptance.report_name(when, "LAB-PC-07") == "acceptance-LAB-PC-07-20261207-093000.md"
    assert acceptance.report_name(when, "Łukasz's MacBook.local") == "acceptance-ukasz-s-MacBook-local-20261207-093000.md"
    assert acceptance.report_name(when, "") == "acceptance-laptop-20261207-093000.md"


def test_overrides_in_force_are_named(tmp_path):
    (tmp_path / "settings.local.yaml").write_text("vm:\n  memory: 3072\nworkers: 1\n")
    found = acceptance.overrides(tmp_path, {"LABKIT_PROVIDER": "libvirt", "HOME": "/home/x"})
    assert found == ["vm.memory = 3072 (settings.local.yaml)", "workers = 1 (settings.local.yaml)",
                     "LABKIT_PROVIDER=libvirt (environment)"]


def test_a_fact_that_cannot_be_read_does_not_stop_the_report(monkeypatch):
    from labkit import settings as settings_mod
    from tests.support.env import REPO

    def broken():
        raise PermissionError(13, "Permission denied", "/proc/cpuinfo")

    monkeypatch.setattr(acceptance, "cpu_model", broken)
    facts = acceptance.host_facts(settings_mod.load(REPO, {}))
    assert facts["cpu"] == "(could not read: PermissionError: [Errno 13] Permission denied: '/proc/cpuinfo')"
    assert facts["provider"] == "virtualbox"


def test_the_vms_section_names_the_fallback_and_quotes_the_serial_console(tmp_path):
    import shutil

    from labkit import settings as settings_mod
    from labkit.vm import bundle_copied
    from tests.support.env import REPO

    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    s = settings_mod.load(tmp_path, {})
    bundle_copied(s, "ubuntu").parent.mkdir(parents=True)
    bundle_copied(s, "ubuntu").touch()
    boot = "".join(f"[    {i}.000000] line {i}\n" for i in range(100)) + "Ubuntu 16.04.7 LTS ubuntu ttyS0"
    acceptance.console_log(s, "ubuntu").write_bytes(boot.encode() + b"\xff\n")  # a byte of line noise
    vms = acceptance.vm_facts(s)
    facts, logs = vms["ubuntu"]["facts"], vms["ubuntu"]["logs"]
    assert facts["bundle"].startswith("copied over SSH") and "fallback taken" in facts["bundle"]
    assert facts["memory and CPUs (settings)"] == "2048 MB, 2 CPUs"
    console = logs["serial console"].splitlines()
    assert len(console) == acceptance.LOG_TAIL and console[-1] == "Ubuntu 16.04.7 LTS ubuntu ttyS0\ufffd"
    text = acceptance.report({}, [], "t", vms=vms)
    assert "### ubuntu" in text and "serial console (last lines):" in text and "line 99" in text and "line 10\n" not in text


@pytest.mark.parametrize("line", [
    "token: " + JWT, '"token": "' + JWT + '"', "--token " + TOKEN, "client-key-data: " + KEY_DATA,
    "Authorization: Bearer " + JWT, "--certificate-key " + CERT_KEY])
def test_redact_each_form(line):
    assert all(secret not in acceptance.redact(line) for secret in (JWT, TOKEN, KEY_DATA, CERT_KEY))


def test_the_report_names_every_node_it_ran_on():
    """A two-node acceptance run (LABKIT_WORKERS=1) says so in the laptop facts, with host-only IPs."""
    from labkit import settings as settings_mod
    from tests.support.env import REPO

    facts = acceptance.host_facts(settings_mod.load(REPO, {"LABKIT_WORKERS": "1"}))
    assert facts["nodes"] == "ubuntu (master, 192.168.56.10), worker-1 (worker, 192.168.56.11)"
    assert acceptance.host_facts(settings_mod.load(REPO, {}))["nodes"] == "ubuntu (master, 192.168.56.10)"


def test_the_room_reads_the_report(private_key, tmp_path):
    """labkit/room/laptops.py parses the Markdown a student sends with class.send --report."""
    from labkit.room import laptops

    run, by, done = run_all(Leaky(private_key), tmp_path)
    text = acceptance.report({"host os": "Linux 6.8", "provider": "virtualbox"}, done, "2026-12-07T09:00:00+00:00",
                             run.evidence, vms={"ubuntu": {"facts": {"bundle": "VirtualBox shared folder"}, "logs": {}}})
    got = laptops.from_markdown(text)
    assert got["started"] == "2026-12-07T09:00:00+00:00"
    assert got["laptop"]["host os"] == "Linux 6.8" and got["laptop"]["laptop name"]
    phases = {p["name"]: p for p in got["phases"]}
    assert list(phases) == [c.check.id for c in done]  # the VMs' sections are not taken for phases
    assert phases["cluster.init"]["status"] == "fail"
    assert phases["cluster.init"]["error"] == "kubeadm init failed: the API server did not come up"
    assert phases["cluster.init"]["hint"] == "invoke cluster.reset, then invoke cluster.init"
    assert phases["app.deploy"] == {"name": "app.deploy", "status": "skip", "reason": "needs: cluster.init"}


def test_the_report_names_the_architecture_and_asks_the_guest_for_its_release_and_kernel():
    import platform

    from labkit import settings as settings_mod
    from tests.support.env import REPO

    facts = acceptance.host_facts(settings_mod.load(REPO, {"LABKIT_ARCH": "arm64", "LABKIT_PROVIDER": "libvirt"}))
    assert facts["architecture"] == f"{platform.machine()} host, arm64 guest"
    assert facts["box"].startswith("cloud-image/ubuntu-20.04") and facts["provider"] == "libvirt"
    # the command the report runs in the guest, run here (a Linux too): release name, then kernel and machine
    out = subprocess.run(["sh", "-c", acceptance.VM_LOGS["guest"]], capture_output=True, text=True, check=True).stdout
    release, kernel = out.splitlines()
    assert release and kernel.split() == [platform.system(), platform.release(), platform.machine()]
