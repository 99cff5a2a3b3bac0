"""Wording shared by every check of user input: did-you-mean, unknown keys, JSON values.

One copy of each helper, used by the config models, the search space, the sampler
and launcher registries and the override parser, so that the same slip gets the
same message wherever it is made.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hpoptim.errors import ConfigProblem

__all__ = [
    "ENV_NAME",
    "closest",
    "did_you_mean",
    "did_you_mean_or_list",
    "env_problem",
    "join_path",
    "json_problem",
    "show",
    "unknown_key_problems",
]

#: A name a process environment and a POSIX shell both accept.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def closest(word: str, valid: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The entry of ``valid`` closest to ``word`` (ignoring case), or None if none is close."""
    by_lower = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[close[0]] if close else None


def did_you_mean(word: str, valid: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``valid``, or ``""``."""
    meant = closest(word, valid)
    return f"; did you mean {meant!r}?" if meant is not None else ""


def did_you_mean_or_list(word: str, names: Sequence[str], what: str, limit: int = 20) -> str:
    """``"did you mean 'x'?"``, or else the existing ``names`` (at most ``limit`` shown).

    For names a user cannot look up in hpoptim's docs (a repository's branches):
    when none is close, showing what exists is the useful hint. Refs are short
    (``v1``, ``v2``), so a looser match counts as close than for config keys.
    """
    meant = closest(word, names, cutoff=0.5)
    if meant is not None:
        return f"did you mean {meant!r}?"
    if not names:
        return f"there are no {what}"
    shown = ", ".join(repr(n) for n in sorted(names)[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"existing {what}: {shown}{more}"


def unknown_key_problems(
    keys: Iterable[Any], valid: Sequence[str], path: str, owner: str
) -> list[ConfigProblem]:
    """One problem per key not in ``valid``, with the closest match and the valid keys.

    The valid keys go into each problem's ``valid_keys``, which
    :class:`~hpoptim.errors.ConfigError` lists once per section.

    Args:
        keys: The keys given.
        valid: The keys allowed.
        path: Config path of the mapping holding the keys.
        owner: What the keys belong to, for the message (e.g. ``"Uniform"``).
    """
    given = [str(key) for key in keys]
    unused = [key for key in valid if key not in given]
    listing = tuple(sorted(valid))
    return [
        ConfigProblem(
            join_path(path, key),
            f"unknown key {key!r} for {owner}" + did_you_mean(key, unused),
            valid_keys=listing,
        )
        for key in given
        if key not in valid
    ]


def show(value: Any) -> str:
    """``repr(value)``, shortened to at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def json_problem(value: Any) -> str:
    """Why ``value`` is not plain JSON data (str keys, finite numbers), or ``""``."""
    if value is None or isinstance(value, str | int | bool):
        return ""
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list | tuple):
        return next((p for p in map(json_problem, value) if p), "")
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            return f"{show(value)} has non-string keys"
        return next((p for p in map(json_problem, value.values()) if p), "")
    return (
        f"a {type(value).__name__} is not allowed; use str, int, float, bool, None, lists and dicts"
    )


def env_problem(name: str, value: str) -> str:
    """Why ``name=value`` cannot be passed to a process and a shell, or ``""``."""
    if ENV_NAME.match(name) and "\0" not in value:
        return ""
    return (
        "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL character, "
        f"got {name!r}={value!r}"
    )


def join_path(prefix: str, rest: str) -> str:
    """Join dotted key paths: ``("a", "b")`` -> ``a.b``, ``("a", "[0].b")`` -> ``a[0].b``."""
    if not prefix or not rest:
        return prefix or rest
    return f"{prefix}{rest}" if rest.startswith("[") else f"{prefix}.{rest}"
