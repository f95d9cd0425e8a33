"""T1: the real `invoke` command, as a classroom user meets it: help, typos, pipes, code pages, Ctrl-C, colour."""
from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.support.env import REPO, default_sigint, free_port, need_binary
from tests.support.bundle import cli_serve
from tests.support.cli import one_line_error, run
from tests.support.cli import INVOKE, invoke
from tests.support.vagrantfile import NO_MACHINES

pytestmark = pytest.mark.t1


def test_h_is_help_for_every_task_even_one_with_a_host_option():
    out = run("bundle.serve", "-h")
    assert out.returncode == 0, out.stderr
    assert "--host=STRING" in out.stdout and "-p INT, --port=INT" in out.stdout
    assert "-s INT, --section=INT" in run("verify", "--help").stdout


def test_a_typo_in_a_task_or_option_names_the_closest_one():
    assert one_line_error(run("verfy")) == ("labkit: there is no task 'verfy'. "
                                            "Fix: did you mean `invoke verify`? `invoke --list` shows every task")
    assert one_line_error(run("verify", "--sectoin", "5")) == (
        "labkit: verify has no option --sectoin. Fix: did you mean --section? `invoke verify --help` lists its options")


def test_zero_workers_is_refused():
    assert one_line_error(run("bundle.fetch", "--workers", "0")).startswith("labkit: --workers 0 is not allowed")


def test_tasks_are_found_from_inside_the_package_directory():
    out = subprocess.run([INVOKE, "--list"], cwd=REPO / "labkit", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "verify" in out.stdout and "bundle.fetch" in out.stdout


@pytest.mark.parametrize("args", [("verify", "--help"), ("--list",), ("doctor",), ("app.deploy", "--dry-run")])
def test_a_reader_that_stops_early_ends_the_command_quietly(args):
    env = {**os.environ, "VAGRANT_DOTFILE_PATH": NO_MACHINES}
    proc = subprocess.Popen([INVOKE, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # like `| head -0`: every write to stdout now fails with EPIPE
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("encoding", ["cp1252", "cp1251"])
def test_a_windows_code_page_on_a_pipe_never_crashes_and_the_report_is_written(project, encoding):  # noqa: F811
    report = project / f"report-{encoding}.json"
    out = subprocess.run([INVOKE, "verify", "--json", report.name], cwd=project, capture_output=True, timeout=120,
                         env={**os.environ, "PYTHONIOENCODING": encoding})
    stdout, stderr = out.stdout.decode(encoding), out.stderr.decode(encoding)
    assert out.returncode == 1 and "Traceback" not in stderr, stderr
    assert "laptop -> API server" in stdout and "Report written to" in stdout
    # A pipe gets 80 columns: the table and the causes under it wrap instead of running on (a fix is a
    # command, kept on one line to be copied).
    assert max(len(line) for line in stdout.splitlines() if not line.startswith(("  |", "    fix:"))) <= 80, stdout
    assert "fix:   invoke cluster.init" in stdout
    assert json.loads(report.read_text(encoding="utf-8"))["summary"]["fail"] == 2


def test_the_report_is_written_when_the_reader_stops_before_the_table(project):  # noqa: F811
    report = project / "unprinted.json"
    proc = subprocess.Popen([INVOKE, "verify", "--json", report.name], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"\xe2\x80\xa2 Checking the lab")  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert "Traceback" not in err, err
    assert json.loads(report.read_text())["summary"]["checks"] > 0


@pytest.mark.parametrize("path, problem", [("", "was given no file name"), ("/proc/r.json", "cannot write in /proc"),
                                           ("no/such/dir/r.json", "no/such/dir does not exist"),
                                           (".", "is a directory"), ("tasks.py/r.json", "is not a directory")])
def test_a_bad_report_path_is_one_line_before_any_check(project, path, problem):  # noqa: F811
    out = invoke(project, "verify", "--json", path)
    assert problem in one_line_error(out)
    assert "Checking the lab" not in out.stdout
    assert not (project / "no").exists()  # no directory made on the way


def test_verify_marks_its_step_failed_and_takes_its_own_section_label(project):  # noqa: F811
    out = invoke(project, "verify", "--section", "3-4", "--json", "s34.json")
    assert out.returncode == 1
    assert "✗ Checking the lab like lab 7 does" in out.stdout and "✓ Checking" not in out.stdout
    assert json.loads((project / "s34.json").read_text())["sections"] == ["3-4"]


def test_lab_with_bad_settings_is_one_line_and_no_table():
    out = run("lab", LABKIT_VM__CPUS="1")
    assert one_line_error(out).startswith("labkit: vm.cpus = 1 is too few")
    assert out.stdout == ""


def test_ctrl_c_in_lab_says_interrupted():
    need_binary("vagrant")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env["VAGRANT_DOTFILE_PATH"] = NO_MACHINES
    proc = subprocess.Popen([INVOKE, "lab"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=default_sigint)
    assert proc.stdout.readline().startswith("• Checking prerequisites")  # vm.up is under way
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert err.strip() == "labkit: interrupted. Run the same command again when ready: every task is safe to re-run."
    # the timing table in the one vocabulary: the phase did not pass, and the table says why
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("vm.up")] == [
        ["vm.up", "fail:", "interrupted"]]


def on_a_terminal(*args, **env) -> str:
    """Run invoke with stdout on a pseudo-terminal, as in a classroom terminal window."""
    master, slave = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM") and not k.startswith("LABKIT_")}
    full.update({"VAGRANT_DOTFILE_PATH": NO_MACHINES, "COLUMNS": "100"}, **env)
    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=REPO, stdout=slave, stderr=slave, env=full)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(120)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_failure_stands_out_in_colour_on_a_terminal_unless_colour_is_off():
    coloured = on_a_terminal("doctor", TERM="xterm-256color")
    fail_line = next(line for line in coloured.splitlines() if "provider" in line)
    assert "\x1b[1;31mfail" in fail_line, repr(fail_line)  # bold red
    for off in ({"TERM": "xterm-256color", "NO_COLOR": "1"}, {"TERM": "dumb"}):
        plain = on_a_terminal("doctor", **off)
        assert "provider" in plain and not re.search("\x1b\\[[0-9;]*3[0-9]m", plain), off  # no colour at all


def test_serve_on_loopback_prints_only_the_address_it_listens_on_and_says_students_cannot_reach_it(bundle):  # noqa: F811
    lk, dest = bundle
    with cli_serve(lk.path, dest) as (port, served):
        pass
    urls = [ln.strip() for ln in served["lines"] + served["out"].splitlines() if "--from http://" in ln]
    assert urls == [f"invoke bundle.fetch --from http://127.0.0.1:{port}"]
    assert "--host 127.0.0.1 serves this machine only: students cannot reach it" in served["err"]


def test_fetch_from_a_mirror_that_is_not_serving_says_so(bundle, tmp_path):  # noqa: F811
    lk, _ = bundle
    out = run("bundle.fetch", "--lock", str(lk.path), "--dest", str(tmp_path / "student"), "--only", lk.artifacts[0].name,
              "--from", f"http://127.0.0.1:{free_port()}")
    line = one_line_error(out)
    assert "is not serving (connection refused)" in line
    assert "Fix: check that invoke bundle.serve is running on the instructor's machine" in line


def test_vagrant_names_a_date_in_the_local_settings_in_one_line(tmp_path):
    need_binary("vagrant")
    for name in ("Vagrantfile", "settings.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("vagrant", "provision"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "settings.local.yaml").write_text("vm:\n  memory: 2024-01-01\n")  # was Psych::DisallowedClass
    out = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "VAGRANT_DOTFILE_PATH": str(tmp_path / ".vagrant")})
    assert out.returncode == 1
    assert out.stderr.strip() == ("labkit: 'vm.memory' in settings.local.yaml reads as a date (2024-01-01). "
                                  'Fix: write a number, or quote it to make it text: "2024-01-01"')
