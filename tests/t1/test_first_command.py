"""T1: README's first command for Ubuntu/Debian without python3-venv, run verbatim with bash: a venv
made without pip, pip run from the wheelhouse's pip wheel, an offline editable install, then
`.venv/bin/invoke lab` (here a small stand-in project whose `invoke` console script prints a line)."""
from __future__ import annotations

import subprocess
import sys

from tests.support.env import need
from tests.support.readme import block

STAND_IN = """[build-system]
requires = ["setuptools", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "standin-lab"
version = "0.1"

[project.scripts]
invoke = "standin_lab:main"

[tool.setuptools]
py-modules = ["standin_lab"]
"""


def test_readme_offline_first_command_runs(tmp_path):
    wheels = tmp_path / "bundle" / "wheels"
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels),
                          "pip", "setuptools", "wheel"], capture_output=True, text=True, timeout=300)
    need(got.returncode == 0, f"pip cannot download pip, setuptools and wheel here: {got.stderr.strip()[-200:]}")
    (tmp_path / "pyproject.toml").write_text(STAND_IN)
    (tmp_path / "standin_lab.py").write_text(
        "import sys\n\ndef main():\n    print('stand-in invoked with', *sys.argv[1:])\n")
    line = block("sh").strip()
    done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("stand-in invoked with lab")
    pip = subprocess.run([str(tmp_path / ".venv/bin/pip"), "--version"], capture_output=True, text=True)
    assert pip.returncode == 0  # the environment has its own pip afterwards
