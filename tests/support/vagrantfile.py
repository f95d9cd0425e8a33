"""Vagrant state for tests that run the real Vagrantfile: no machines."""
from __future__ import annotations

import tempfile


# Vagrant's machine state for these tests: none, whatever VM this checkout may have in its .vagrant/.
NO_MACHINES = tempfile.mkdtemp(prefix="labkit-t1-dotfile-")
