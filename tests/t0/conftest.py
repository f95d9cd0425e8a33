"""Fixtures shared by T0 tests (helpers live in tests/support/)."""
from __future__ import annotations

import shutil

import pytest

from labkit import settings as settings_mod
from labkit.verify.model import Lab
from tests.support.env import REPO


@pytest.fixture(scope="module")
def lab(repo):
    return Lab.from_settings(settings_mod.load(repo, {}))


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    home = tmp_path / "vagrant.d"  # Vagrant's box directory, with the boxes of both providers installed
    for box, provider in (("ubuntu-VAGRANTSLASH-xenial64", "virtualbox"), ("generic-VAGRANTSLASH-ubuntu1604", "libvirt")):
        (home / "boxes" / box / "0" / provider).mkdir(parents=True)
        (home / "boxes" / box / "0" / provider / "metadata.json").write_text(f'{{"provider": "{provider}"}}')
    monkeypatch.setenv("VAGRANT_HOME", str(home))
    return tmp_path
