"""What the translation did with one key of the file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from hpoptim.errors import ConfigProblem


@dataclass(frozen=True)
class Note:
    """What happened to one key of the file.

    Attributes:
        path: The key as the file wrote it, e.g. ``optimization_setting.minimize``.
        kind: ``translated``, ``ignored`` (one warning line) or ``error``.
        message: Where the value went, or why it was ignored or refused.
        target: The native key it became, if any.
        valid_keys: For an unknown key, the keys its section allows.
    """

    path: str
    kind: Literal["translated", "ignored", "error"]
    message: str
    target: str = ""
    valid_keys: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def problem(self) -> ConfigProblem:
        """An ``error`` note as a config problem."""
        return ConfigProblem(self.path, self.message, valid_keys=self.valid_keys)


def warnings_of(notes: Iterable[Note]) -> list[str]:
    """One line per ignored key."""
    return [str(n) for n in notes if n.kind == "ignored"]
