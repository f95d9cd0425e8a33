"""T0: the Windows-only paths of labkit.fsutil that cannot run here: os.replace retried while an
antivirus holds the new file (WinError 5/32), and the icacls command that makes a file private.
(The POSIX permission path runs for real in tests/t1/test_fsutil_private.py.)"""
from __future__ import annotations

import os

import pytest

from labkit import fsutil


def busy(winerror):
    exc = PermissionError(13, "The process cannot access the file because it is being used by another process")
    exc.winerror = winerror  # what Windows sets on the exception; POSIX never does
    return exc


def flaky_replace(failures, winerror, calls):
    """os.replace as Windows behaves while a scanner holds the file: `failures` refusals, then the real move."""
    real = os.replace

    def replace(src, dst):
        calls.append(src)
        if len(calls) <= failures:
            raise busy(winerror)
        real(src, dst)
    return replace


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(fsutil, "REPLACE_PAUSE", 0.001)


@pytest.mark.parametrize("winerror", [5, 32])
def test_replace_waits_out_a_scanner(tmp_path, monkeypatch, quick, winerror):
    calls = []
    monkeypatch.setattr(os, "replace", flaky_replace(3, winerror, calls))
    fsutil.write_atomic(tmp_path / "CHECKSUMS", "abc\n")
    assert (tmp_path / "CHECKSUMS").read_text() == "abc\n" and len(calls) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["CHECKSUMS"]  # no .part left behind


def test_replace_gives_up_and_leaves_nothing_half_written(tmp_path, monkeypatch, quick):
    calls = []
    monkeypatch.setattr(os, "replace", flaky_replace(99, 32, calls))
    with pytest.raises(PermissionError):
        fsutil.write_atomic(tmp_path / "CHECKSUMS", "abc\n")
    assert len(calls) == fsutil.REPLACE_TRIES and list(tmp_path.iterdir()) == []


def test_other_permission_errors_are_not_retried(tmp_path, monkeypatch, quick):
    calls = []
    monkeypatch.setattr(os, "replace", flaky_replace(99, None, calls))  # a real "permission denied"
    with pytest.raises(PermissionError):
        fsutil.replace(tmp_path / "a", tmp_path / "b")
    assert len(calls) == 1


def test_icacls_command_gives_the_user_alone_full_control():
    cmd = fsutil.owner_only_acl_command(r"C:\Users\Łukasz\lab\.labkit\kubeconfig",
                                        {"USERNAME": "Łukasz", "USERDOMAIN": "LAPTOP-7"})
    assert cmd == ["icacls", r"C:\Users\Łukasz\lab\.labkit\kubeconfig", "/inheritance:r", "/grant:r", "LAPTOP-7\\Łukasz:F"]
    assert fsutil.owner_only_acl_command("k", {"USERNAME": "ana"})[-1] == "ana:F"
