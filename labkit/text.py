"""Small text helpers every part of labkit shows output with (one definition each)."""
from __future__ import annotations


def short(text: str, width: int = 70) -> str:
    """One line of at most `width` characters: whitespace runs collapsed, the cut marked with "…"."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def reason(exc: object, width: int = 160) -> str:
    """The first line of an error's message, at most `width` characters; its type's name when it says nothing."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:width]
