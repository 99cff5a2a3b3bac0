"""What cluster_utils' settings loader (smart_settings) does beyond plain JSON/YAML/TOML.

``__import__`` merges other config files under the importing one
(:func:`resolve_imports`); ``"{...}"`` strings are expressions smart_settings evaluates
(other parameters, ``$VARS``, Python), which hpoptim does not (:func:`expressions`
finds them, so each can be named).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_REFERENCE = re.compile(r"\{[^{}\s][^{}]*\}")


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def expressions(tree: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every string leaf of ``tree`` holding a ``"{...}"`` expression, by its dotted key."""
    return [(k, v) for k, v in _leaves(tree) if isinstance(v, str) and _REFERENCE.search(v)]


def resolve_imports(
    data: Mapping[str, Any], source: Path, read: Callable[[Path], dict[str, Any]], depth: int = 0
) -> dict[str, Any]:
    """smart_settings' ``__import__``: the named files' settings under this file's.

    Each import (a path or a list of paths, relative to the current directory or else
    to the importing file) is read with ``read`` and merged in order; the importing
    file's own keys win, key by key in nested sections.

    Raises:
        ValueError: An imported file does not exist, or imports nest too deep (a cycle).
    """
    if "__import__" not in data:
        return dict(data)
    if depth > 10:
        raise ValueError(f"__import__ in {source} nests more than 10 levels (a cycle?)")
    imports = data["__import__"]
    merged: dict[str, Any] = {}
    for name in [imports] if isinstance(imports, str) else list(imports):
        path = Path(str(name)).expanduser()
        if not path.is_absolute():
            path = path if path.exists() else source.parent / path
        if not path.is_file():
            raise ValueError(f"__import__ in {source}: {name!r} does not exist")
        merged = _deep_merge(merged, resolve_imports(read(path), path, read, depth + 1))
    return _deep_merge(merged, {k: v for k, v in data.items() if k != "__import__"})


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
