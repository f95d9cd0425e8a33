"""Fixtures shared by T1 tests."""
from __future__ import annotations

import pytest

from tests.support.bundle import start_server


@pytest.fixture
def srv():
    """A real HTTP server on loopback with injectable faults (tests/support/bundle.py)."""
    s = start_server()
    yield s
    s.shutdown()
    s.server_close()
