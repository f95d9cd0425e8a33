"""The README's code blocks, as the tests that run them read them."""
from __future__ import annotations

import re

from tests.support.env import REPO


def block(kind: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## First command elsewhere", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{kind}\n(.*?)```", section, re.S).group(1)
