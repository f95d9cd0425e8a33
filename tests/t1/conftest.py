"""Fixtures shared by T1 tests (helpers live in tests/support/)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit.bundle import fetch, lock
from tests.support.bundle import BIG, SMALL, file_entry, start_server, write_lock
from tests.support.env import need, need_binary


@pytest.fixture
def srv():
    """A real HTTP server on loopback with injectable faults (tests/support/bundle.py)."""
    s = start_server()
    yield s
    s.shutdown()
    s.server_close()


@pytest.fixture(scope="module")
def project(repo, tmp_path_factory) -> Path:
    need_binary("vagrant")
    root = tmp_path_factory.mktemp("project")
    for name in ("tasks.py", "settings.yaml", "Vagrantfile"):
        shutil.copy(repo / name, root / name)
    for name in ("vagrant", "provision"):
        shutil.copytree(repo / name, root / name)
    return root


@pytest.fixture
def browser(tmp_path):
    chromium, driver = need_binary("chromium"), need_binary("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need(False, "selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,640"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    b = webdriver.Chrome(service=Service(driver), options=options)
    yield b
    b.quit()


@pytest.fixture
def bundle(tmp_path):
    """A complete, verified bundle (fetched for real from a loopback server) and its lock."""
    origin = start_server()
    try:
        lock_file = write_lock(tmp_path / "lock.yaml", [
            file_entry("kubernetes-node", "k8s/node.tgz", [origin.add("/node.tgz", BIG)], BIG),
            file_entry("weave-manifest", "manifests/weave.yaml", [origin.add("/weave.yaml", SMALL)], SMALL)])
        dest = tmp_path / "instructor"
        lk = lock.load(lock_file)
        assert not any(o.error for o in fetch.fetch(lk, lk.artifacts, dest, fetch.Options()))
    finally:
        origin.shutdown()
        origin.server_close()
    return lk, dest
