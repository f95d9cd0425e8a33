"""Small text helpers every part of labkit shows output with (one definition each)."""
from __future__ import annotations


def short(text: str, width: int = 70) -> str:
    """One line of at most `width` characters: whitespace runs collapsed, the cut marked with "…"."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
