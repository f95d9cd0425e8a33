"""T0: messages that used to mislead: what they say now is what is true and what to do."""
from __future__ import annotations

import shutil

import pytest

from labkit import doctor, settings
from labkit.bundle import lock as lockmod
from tests.support.env import REPO
from tests.support.laptop import GIB, Laptop


@pytest.fixture
def s(tmp_path, monkeypatch):
    for name in ("settings.yaml", "bundle.lock.yaml"):
        shutil.copy(REPO / name, tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "vagrant.d"))  # no box installed
    return settings.load(tmp_path, {})


def test_memory_too_large_for_the_laptop_says_how_much_fits(s):
    big = settings.load(s.root, {"LABKIT_VM__MEMORY": "8192"})
    got = doctor.check_memory(big, Laptop(total=8 * GIB, available=7 * GIB))
    assert got.status == doctor.FAIL
    assert got.fix == "lower vm.memory to at most 7168 (LABKIT_VM__MEMORY=7168)"


def test_a_damaged_box_file_in_the_bundle_is_not_ok(s):
    art = lockmod.load(s.lock_file).box_for(s.box, s.provider)
    box = art.file(s.bundle_dir)
    box.parent.mkdir(parents=True)
    box.write_bytes(bytes(1024 * 1024))  # 1 MB of zeros where the box should be
    got = doctor.check_box(s, Laptop())
    assert got.status == doctor.FAIL and "corrupt" in got.detail, got
    assert got.fix.startswith(f"invoke bundle.fetch --only {art.name}")
