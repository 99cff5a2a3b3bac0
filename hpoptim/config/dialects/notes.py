"""What the translation did with one key of the file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Note:
    """What happened to one key of the file.

    Attributes:
        path: The key as the file wrote it, e.g. ``optimization_setting.minimize``.
        kind: ``translated``, ``ignored`` (one warning line) or ``error``.
        message: Where the value went, or why it was ignored or refused.
        target: The native key it became, if any.
    """

    path: str
    kind: Literal["translated", "ignored", "error"]
    message: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def warnings_of(notes: Iterable[Note]) -> list[str]:
    """One line per ignored key."""
    return [str(n) for n in notes if n.kind == "ignored"]
