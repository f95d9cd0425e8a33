"""T1: a Windows checkout (Git for Windows' default core.autocrlf=true) sends the VM and the image build
the same bytes as a Linux or macOS one: .gitattributes pins LF for everything that leaves the laptop.

Both checkouts are made by the real git from this repository's HEAD (committed content: what a
student clones), one with core.autocrlf=true, one with core.autocrlf=false.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labkit import settings as settings_mod
from labkit.app import build, objects
from tests.support.env import REPO, need_binary

pytestmark = pytest.mark.t1


def checkout(dest: Path, autocrlf: str) -> Path:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", "--shared", str(REPO), str(dest)], check=True)
    subprocess.run(["git", "config", "core.autocrlf", autocrlf], cwd=dest, check=True)
    subprocess.run(["git", "checkout", "-q", head], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    need_binary("git")
    base = tmp_path_factory.mktemp("eol")
    return checkout(base / "lf", "false"), checkout(base / "windows", "true")


def provision_script(root: Path, step: str) -> bytes:
    """A provision step exactly as the Vagrantfile sends it into the VM."""
    need_binary("ruby")
    return subprocess.run(["ruby", "-e", f'require "./vagrant/provision_script"; print LabkitProvision.script(".", "{step}")'],
                          cwd=root, capture_output=True, check=True).stdout


def test_provision_scripts_reach_the_vm_byte_identical(trees):
    lf, windows = trees
    steps = sorted(p.stem for p in (lf / "provision").glob("*.sh") if p.name != "lib.sh")
    assert steps
    for step in steps:
        a, b = provision_script(lf, step), provision_script(windows, step)
        assert b"\r" not in b, f"the {step} step carries CR characters from a Windows checkout"
        assert a == b, step


def test_image_build_context_and_manifests_are_byte_identical(trees):
    lf, windows = trees
    for rel in sorted(str(p.relative_to(lf)) for d in ("inv", "manifests") for p in (lf / d).rglob("*") if p.is_file()):
        assert (windows / rel).read_bytes() == (lf / rel).read_bytes(), rel
    a, b = settings_mod.load(lf, {}), settings_mod.load(windows, {})
    assert build.context_digest(a) == build.context_digest(b)  # the digest app.build labels the image with
    images = build.images(a)
    assert objects.to_yaml(objects.load(a, images)) == objects.to_yaml(objects.load(b, images))


def test_every_committed_text_file_checks_out_with_lf(trees):
    lf, windows = trees
    listed = subprocess.run(["git", "ls-files", "--eol"], cwd=windows, capture_output=True, text=True, check=True).stdout
    crlf = [line.split("\t")[-1] for line in listed.splitlines() if "w/crlf" in line.split("\t")[0]]
    assert crlf == [], "checked out with CRLF on Windows: " + ", ".join(crlf)
