"""T2: the shared-folder fallback's copy into the real VM over SSH, from a laptop with no rsync on PATH
(a Windows laptop has none): every file lands checked against CHECKSUMS, as the VM's user through sudo,
and a second copy sends nothing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.t2

GUEST = "/opt/labkit/bundle-over-ssh"  # beside the libvirt rsync copy the lab itself uses


def path_without(tmp_path: Path, tool: str) -> str:
    """A PATH holding every program of this one except `tool`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = Path(folder) / name
            if name != tool and not (bin_dir / name).exists() and os.access(target, os.X_OK) and target.is_file():
                (bin_dir / name).symlink_to(target)
    return str(bin_dir)


def test_the_bundle_is_copied_over_ssh_without_rsync_on_the_laptop(lab_vm, tmp_path, monkeypatch):
    from labkit import settings as settings_mod
    from labkit.bundle import over_ssh

    monkeypatch.setenv("PATH", path_without(tmp_path, "rsync"))
    assert shutil.which("rsync") is None and shutil.which("vagrant")
    # the lab's settings in this process's environment too: Vagrant (asked for the SSH facts) reads them
    for key, value in {**lab_vm.env, "LABKIT_BUNDLE__GUEST_DIR": GUEST}.items():
        if key.startswith("LABKIT_"):
            monkeypatch.setenv(key, value)
    s = settings_mod.load(lab_vm.settings.root, os.environ)
    said = []
    try:
        done = over_ssh.copy(s, s.master.name, said.append)
        assert done.files > 1 and done.bytes > 0, said
        check = lab_vm.ssh(f"cd {GUEST} && test \"$(stat -c %U .)\" = \"$(id -un)\" && n=0 && "
                           "while read -r name algo hex path; do case $path in boxes/*|sources/*) continue;; esac; "
                           "echo \"$hex  $path\" | ${algo}sum -c --quiet || exit 1; n=$((n+1)); done < CHECKSUMS && "
                           "echo \"verified $n\" && ! find . -name '*.part' | grep -q .")
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"verified {done.files - 1}" in check.stdout  # every artifact (CHECKSUMS itself is the other file)
        again = over_ssh.copy(s, s.master.name, said.append)
        assert (again.files, again.bytes) == (0, 0), said
    finally:
        lab_vm.ssh(f"sudo rm -rf {GUEST}")
