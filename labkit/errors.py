"""The one exception type for mistakes a user can fix.

Tasks turn it into a single line on stderr (no traceback): what is wrong, then how to fix it.
"""
from __future__ import annotations


class LabkitError(Exception):
    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def line(self) -> str:
        text = self.message.rstrip(".")
        return f"labkit: {text}. Fix: {self.fix}" if self.fix else f"labkit: {text}."

    def __str__(self) -> str:
        return self.line()
