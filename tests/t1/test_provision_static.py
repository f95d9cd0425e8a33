"""provision/ statically: shellcheck-clean, nothing that downloads, checks before changes.

The scripts run inside the VM where the classroom has no network: a download attempt there is a
broken lab, so it is caught here, before any VM exists.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_binary

pytestmark = pytest.mark.t1

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "provision"
SCRIPTS = sorted(PROVISION.glob("*.sh"))
STEPS = [p for p in SCRIPTS if p.name != "lib.sh"]
VENDORED = sorted((PROVISION / "files").glob("*"))

# (pattern, what it is). Applied to logical lines (continuations joined) with comments removed.
DOWNLOADS = [
    (r"\bcurl\b", "curl"),
    (r"\bwget\b", "wget"),
    (r"https?://|ftp://", "a remote URL"),
    (r"\bapt(-get)?\s+(update|upgrade|dist-upgrade|full-upgrade|download|source)\b", "apt fetching package data"),
    (r"\bdocker\s+(pull|login|search)\b|\bdocker\s+image\s+pull\b", "a registry pull"),
    (r"\bkubeadm\s+config\s+images\s+pull\b", "kubeadm pulling images"),
    (r"\b(git\s+clone|pip3?\s+install|snap\s+install|npm\s+install|add-apt-repository|apt-key)\b", "a network install"),
    (r"/dev/tcp/|\bnc\s|\bsocat\s+\S*tcp", "a raw network connection"),
]
# apt may only simulate, with no download: it is the offline dependency check before dpkg.
APT_CALL = re.compile(r"(?<!command -v )\bapt(-get)?\s")  # `command -v apt-get` only looks
# Commands that change the node; every bundle check in a step must come before the first one.
CHANGES = re.compile(r"^\s*(deb_install|put_file|install_file|systemctl\s+(start|restart|enable)|modprobe|swapoff|"
                     r"sysctl\s+-q\s+-p|docker\s+load|tar\s+-x|install\s+-m|usermod|extract_stamped|ensure_enabled)\b|"
                     r"\bput_file\b")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text without comments) for each logical line (backslash continuations joined)."""
    out, buf, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        code = re.sub(r"(^|\s)#.*$", "", line)  # a comment: '#' at the start or after whitespace
        if not buf:
            start = number
        if code.endswith("\\"):
            buf += code[:-1] + " "
            continue
        out.append((start, buf + code))
        buf = ""
    return out


# apt reading only the VM's local repository (built from the bundle by provision/aptrepo.sh).
LOCAL_SOURCE_ONLY = ("Dir::Etc::SourceList=/etc/apt/sources.list.d/kubernetes.list", "Dir::Etc::SourceParts=")


def download_problems(text: str, allow=()) -> list[str]:
    problems = []
    for number, code in logical_lines(text):
        if any(a in code for a in allow) or all(a in code for a in LOCAL_SOURCE_ONLY):
            continue
        for pattern, what in DOWNLOADS:
            if re.search(pattern, code):
                problems.append(f"line {number}: {what}: {code.strip()}")
        if APT_CALL.search(code) and not ("--simulate" in code and "--no-download" in code):
            problems.append(f"line {number}: apt without --simulate --no-download: {code.strip()}")
    return problems


def test_the_download_detector_catches_what_it_must_and_ignores_comments():
    bad = ("curl -fsSL https://get.docker.com | sh\n"
           "wget -q http://x/y\n"
           "apt-get update && apt-get install -y socat\n"
           "apt-get -y \\\n  install kubelet\n"
           "docker pull busybox\n"
           "kubeadm config images pull\n"
           "exec 3<>/dev/tcp/10.0.0.1/80\n")
    found = download_problems(bad)
    for what in ("curl", "wget", "remote URL", "apt fetching", "apt without --simulate", "registry pull",
                 "kubeadm pulling", "raw network"):
        assert any(what in p for p in found), what
    assert any(p.startswith("line 4:") for p in found)  # the continued apt-get line
    fine = ("# see https://kubernetes.io/docs for why\n"
            "say \"skip: ${name#prefix}\"  # curl is never used\n"
            "apt-get --simulate --no-download -o Dir::Etc::SourceList=/x \\\n  install ./a.deb\n")
    assert download_problems(fine) == []
    local = ("apt-get -o Dir::Etc::SourceList=/etc/apt/sources.list.d/kubernetes.list -o Dir::Etc::SourceParts=/e update\n"
             "apt-get -o Dir::Etc::SourceList=/etc/apt/sources.list.d/kubernetes.list update\n")
    assert [p[:7] for p in download_problems(local)] == ["line 2:"]  # half the restriction is none


@pytest.mark.parametrize("path", SCRIPTS + VENDORED, ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_in_provision_downloads(path):
    # systemd's Documentation= and a package's Homepage: are metadata, never fetched; a file: package
    # source is the VM's own disk; Docker's registry mirror is labkit-mirror on the VM's own loopback.
    assert download_problems(path.read_text(), allow=("Documentation=", "Homepage: https://kubernetes.io",
                                                                     "deb [trusted=yes] file:/",
                                                                     '"registry-mirrors": ["http://127.0.0.1:5000"]')) == []


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.name)
def test_each_step_is_strict_bash(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    code = [line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == "set -euo pipefail"
    assert re.search(r"^labkit_init " + re.escape(path.stem) + "$", path.read_text(), re.MULTILINE)


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.name)
def test_every_bundle_check_comes_before_the_first_change(path):
    lines = [code for _, code in logical_lines(path.read_text())]
    checks = [i for i, code in enumerate(lines) if re.match(r"^\s*bundle_verify", code)]
    changes = [i for i, code in enumerate(lines) if CHANGES.search(code)]
    if not checks:  # e.g. kubernetes.sh installs from the local repository that aptrepo.sh checked and built
        assert not re.search(r"LABKIT_BUNDLE/|BUNDLE_FILES", path.read_text()), "reads the bundle without checking it"
        return
    assert changes, "the change detector found nothing: it is broken"
    assert max(checks) < min(changes), f"{lines[min(changes)].strip()!r} comes before a bundle check"


def test_shellcheck_is_clean():
    shellcheck = need_binary("shellcheck")
    result = subprocess.run([shellcheck, "-x", *[str(p.relative_to(REPO)) for p in SCRIPTS]],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def assembled(step: str) -> str:
    need_binary("ruby")
    return subprocess.run(["ruby", "-e", f'require "./vagrant/provision_script"; print LabkitProvision.script(".", "{step}")'],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("step", [p.stem for p in STEPS])
def test_the_vagrantfiles_inline_script_carries_lib_files_and_step(step, tmp_path):
    script = assembled(step)
    for f in VENDORED:  # each vendored file, verbatim, in a quoted heredoc
        assert f"cat >/run/labkit/files/{f.name} <<'LABKIT_FILE_EOF'\n{f.read_text()}LABKIT_FILE_EOF\n" in script
    assert (PROVISION / "lib.sh").read_text() in script
    assert script.endswith((PROVISION / f"{step}.sh").read_text())
    (tmp_path / "s.sh").write_text(script)
    assert subprocess.run(["bash", "-n", str(tmp_path / "s.sh")]).returncode == 0
    shellcheck = need_binary("shellcheck")
    result = subprocess.run([shellcheck, "-e", "SC1091", str(tmp_path / "s.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_vendored_file_that_contains_the_heredoc_marker_is_refused(tmp_path):
    need_binary("ruby")
    (tmp_path / "provision/files").mkdir(parents=True)
    (tmp_path / "provision/lib.sh").write_text("")
    (tmp_path / "provision/base.sh").write_text("")
    (tmp_path / "provision/files/evil").write_text("LABKIT_FILE_EOF\nrm -rf /\n")
    result = subprocess.run(["ruby", "-e", f'require "{REPO}/vagrant/provision_script"; LabkitProvision.script("{tmp_path}", "base")'],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "contains the line LABKIT_FILE_EOF" in result.stderr
