"""T2, last of all: the suite ran in its own copy of the project (tests/t2/conftest.py), so the checkout it
was started from, maybe an instructor's own lab, is as the session found it."""
from __future__ import annotations

import pytest

from tests.support.vm import users_lab_state

pytestmark = pytest.mark.t2


def test_the_users_own_lab_was_never_touched(lab_vm):
    # this checkout's .vagrant/ and .labkit/ trees (content and mtime) and its libvirt domains
    assert users_lab_state() == lab_vm.users_lab
