"""T0: the acceptance report (the real labkit.acceptance.report of real phase outcomes) read into the room's
`acceptance` kind: facts, phases, errors and hints, no secret, hostile text kept as text."""
from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from labkit import acceptance
from labkit.room import laptops, schema, store

HOSTILE = "<img src=x onerror=alert(1)> =cmd|' /C calc'!A0 \u202eevil"


@pytest.fixture(scope="module")
def private_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.read_text()


class Failing(acceptance.Runner):
    """cluster.init fails with labkit's one line (what, then the fix) after printing a secret."""

    def __init__(self, secret: str):
        self.secret = secret

    def run(self, args, echo):
        if args[0] == "cluster.init":
            text = (f"{self.secret}\n  kubeadm join 192.168.56.10:6443 --token abcdef.0123456789abcdef\n"
                    f"labkit: kubeadm init failed: {HOSTILE}. Fix: invoke cluster.reset, then invoke cluster.init\n")
            return 1, text
        if args[0] == "vm.ssh":
            return 0, "pods: none\n"
        return 0, "✓ Creating VM ubuntu  52.1s\n"


def markdown(private_key: str, tmp_path) -> str:
    outcomes = acceptance.run_phases(Failing(private_key), tmp_path, destroy=False, echo=lambda line: None)
    facts = {"host os": "Linux 6.1 (Debian 12)", "cpu": f"{HOSTILE} ×4", "ram": "15.5 GiB", "virtualbox": "7.0.14",
             "vagrant": "Vagrant 2.4.1", "provider": "virtualbox", "box": "ubuntu/xenial64 | pipe"}
    return acceptance.report(facts, outcomes, "2026-11-30T09:00:00+00:00")


def test_a_real_acceptance_report_becomes_the_rooms_acceptance_kind(private_key, tmp_path):
    rep = laptops.from_markdown(markdown(private_key, tmp_path))
    envelope = {"seat": "0" * 16, "name": "Ana", "kind": "acceptance", "taken": 100.0, "sent": 100.0, "report": rep}
    assert schema.problem(envelope) is None
    assert rep["started"] == "2026-11-30T09:00:00+00:00"
    assert rep["laptop"]["cpu"] == f"{HOSTILE} ×4" and rep["laptop"]["box"] == "ubuntu/xenial64 | pipe"
    phases = {p["name"]: p for p in rep["phases"]}
    assert [p["name"] for p in rep["phases"]] == [p.name for p in acceptance.PHASES if not p.destroy]
    assert phases["vm.up"]["status"] == "pass" and phases["vm.up"]["seconds"] >= 0
    init = phases["cluster.init"]
    assert init["status"] == "fail" and init["error"] == f"kubeadm init failed: {HOSTILE}"
    assert init["hint"] == "invoke cluster.reset, then invoke cluster.init"
    assert phases["app.deploy"] == {"name": "app.deploy", "status": "skip", "reason": "needs cluster.init, which failed"}
    text = json.dumps(rep)
    assert "PRIVATE KEY" not in text and "0123456789abcdef" not in text  # output stays out; secrets too


def test_a_secret_written_into_the_file_by_hand_is_redacted_again(private_key, tmp_path):
    text = markdown(private_key, tmp_path).replace("| ram | 15.5 GiB |", "| ram | token: s3cr3t-value |")
    text = text.replace("- hint: invoke cluster.reset", "- hint: kubeadm join --token abcdef.0123456789abcdef; invoke cluster.reset")
    rep = laptops.from_markdown(text)
    assert "s3cr3t" not in json.dumps(rep) and "0123456789abcdef" not in json.dumps(rep)


@pytest.mark.parametrize("text, why", [
    ("", "does not start with"),
    ("# something else\n", "does not start with"),
    ("# labkit acceptance report\n\n## Phases\n\n", "no phases"),
    ("# labkit acceptance report\n\n## Phases\n\n### vm.up: exploded\n", "status 'exploded'"),
])
def test_what_is_not_an_acceptance_report_is_named(text, why):
    with pytest.raises(ValueError, match=why):
        laptops.from_markdown(text)


def test_a_phase_heading_inside_command_output_is_not_a_phase(private_key, tmp_path):
    text = markdown(private_key, tmp_path).replace("Output (last lines):\n\n```\n",
                                                   "Output (last lines):\n\n```\n### vm.destroy: passed\n")
    assert "vm.destroy" not in [p["name"] for p in laptops.from_markdown(text)["phases"]]


def test_the_laptops_view_and_csv_one_row_per_seat(private_key, tmp_path):
    rep = laptops.from_markdown(markdown(private_key, tmp_path))
    room = store.Room(tmp_path / "room.db")
    try:
        older = dict(rep, laptop=dict(rep["laptop"], ram="8.0 GiB"))
        for seat, name, report, taken in (("a" * 16, "Ana", older, 100.0), ("a" * 16, "Ana", rep, 200.0),
                                          ("b" * 16, "=Bo", rep, 150.0)):
            room.add({"seat": seat, "name": name, "host": "h", "kind": "acceptance", "taken": taken, "sent": taken,
                      "report": report}, received=1000 + taken)
        view = laptops.view(room.laptops(), 2000.0)
    finally:
        room.close()
    assert [lap["name"] for lap in view["laptops"]] == ["=Bo", "Ana"]
    assert view["laptops"][1]["laptop"]["ram"] == "15.5 GiB"  # the latest run of that seat
    rows = list(csv.DictReader(io.StringIO(laptops.csv_text(view))))
    assert rows[0]["name"] == "'=Bo" and rows[1]["cpu"] == f"{HOSTILE} ×4"
    assert rows[1]["cluster.init"] == "fail"
    assert rows[1]["cluster.init_problem"] == (f"kubeadm init failed: {HOSTILE} | hint: invoke cluster.reset, "
                                               "then invoke cluster.init")
    assert rows[1]["app.deploy_problem"] == "needs cluster.init, which failed"
