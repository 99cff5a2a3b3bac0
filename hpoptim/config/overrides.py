"""Command-line overrides: ``key=value`` strings → :class:`Override` objects → applied to a dict.

Syntax (compatible with cluster_utils and hydra):

* ``a.b=v`` changes an existing key. "Existing" means present in the config
  file or a key the schema knows (so ``slurm.partition="gpu"`` works without a
  ``slurm`` section in the file).
* ``+a.b=v`` adds a key that is not there yet.
* ``~a.b`` deletes a key.

Values are Python literals (``ast.literal_eval``): ``3``, ``0.5``, ``True``,
``None``, ``"text"``, ``[1, 2]``, ``{"a": 1}``. Keys are dotted paths; list
elements are addressed by index, ``optimized_params[0].bounds`` (or
``optimized_params.0.bounds``), and ``+optimized_params[N]={...}`` with ``N``
the list's length appends. Inside free-form mappings such as ``fixed_params`` a
dotted key matches whether the file wrote it flat (``"model.lr": 0.1``) or
nested (``model: {lr: 0.1}``).
"""

from __future__ import annotations

import ast
import copy
import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpoptim.errors import OverrideError
from hpoptim.messages import closest, json_problem

__all__ = [
    "Key",
    "Override",
    "OverrideKind",
    "apply_overrides",
    "format_key",
    "parse_override",
    "parse_overrides",
]

Key = tuple[str | int, ...]
"""A parsed key path: mapping keys are ``str``, list indices ``int``."""

_SEGMENT = re.compile(r"([^.\[\]=]+)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


class OverrideKind(enum.Enum):
    """What an override does."""

    SET = "set"
    ADD = "add"
    DELETE = "delete"

    @property
    def prefix(self) -> str:
        """The override's leading character (``+``, ``~`` or none)."""
        return {OverrideKind.SET: "", OverrideKind.ADD: "+", OverrideKind.DELETE: "~"}[self]


@dataclass(frozen=True)
class Override:
    """One parsed override.

    Attributes:
        text: The override string exactly as given.
        index: Its position among the overrides (0-based).
        kind: Change, add or delete.
        key: The key path.
        value: The parsed value (``None`` for a deletion).
    """

    text: str
    index: int
    kind: OverrideKind
    key: Key
    value: Any = None

    def fail(self, reason: str) -> OverrideError:
        """An :class:`OverrideError` for this override."""
        return OverrideError(self.text, self.index, reason)


def format_key(key: Key) -> str:
    """``("optimized_params", 0, "bounds")`` → ``"optimized_params[0].bounds"``."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _parse_key(text: str, index: int, raw: str) -> Key:
    parts: list[str | int] = []
    for segment in raw.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None or not match.group(1).strip():
            raise OverrideError(
                text,
                index,
                f"{raw!r} is not a key path; write dotted names such as slurm.mem_gb "
                "or optimized_params[0].bounds",
            )
        parts.append(match.group(1))
        parts.extend(int(i) for i in _INDEX.findall(match.group(2)))
    return tuple(parts)


def _quoting_hint(prefix: str, key: str, raw: str) -> str:
    lowered = raw.strip().lower()
    fixes = {"true": "True", "false": "False", "null": "None", "none": "None"}
    if lowered in fixes:
        return f"write {prefix}{key}={fixes[lowered]} for the literal, or "
    return ""


def _parse_value(text: str, index: int, prefix: str, key: str, raw: str) -> Any:
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        quoted = f"{prefix}{key}={json.dumps(raw, ensure_ascii=False)}"
        raise OverrideError(
            text,
            index,
            f"value {raw!r} is not a Python literal; {_quoting_hint(prefix, key, raw)}"
            f"quote a string: {quoted} (in a shell: '{quoted}')",
        ) from None
    problem = json_problem(value)
    if problem:
        raise OverrideError(text, index, f"value {raw!r}: {problem}")
    return _lists(value)


def _lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def parse_override(text: str, index: int = 0) -> Override:
    """Parse one override string.

    Args:
        text: ``key=value``, ``+key=value`` or ``~key``.
        index: Its position among the overrides, for error messages.

    Raises:
        OverrideError: Bad syntax or a value that is not a Python literal (the
            message shows the quoted form to use).
    """
    kind = {"+": OverrideKind.ADD, "~": OverrideKind.DELETE}.get(text[:1], OverrideKind.SET)
    body = text[len(kind.prefix) :]
    if kind is OverrideKind.DELETE:
        if "=" in body:
            raise OverrideError(
                text, index, f"a deletion takes no value: write ~{body[: body.index('=')]}"
            )
        return Override(text, index, kind, _parse_key(text, index, body))
    if "=" not in body:
        raise OverrideError(
            text, index, "expected key=value (change), +key=value (add) or ~key (delete)"
        )
    raw_key, raw = body.split("=", 1)
    key = _parse_key(text, index, raw_key)
    value = _parse_value(text, index, kind.prefix, raw_key, raw)
    return Override(text, index, kind, key, value)


def parse_overrides(texts: Sequence[str]) -> list[Override]:
    """Parse override strings in order (see :func:`parse_override`)."""
    return [parse_override(t, i) for i, t in enumerate(texts)]


def _match(node: Mapping[str, Any], rest: Key) -> int:
    """How many leading parts of ``rest`` name one key of ``node`` (dotted keys count)."""
    for n in range(len(rest), 0, -1):
        if all(isinstance(p, str) for p in rest[:n]) and ".".join(map(str, rest[:n])) in node:
            return n
    return 0


def _kind_of(value: Any) -> str:
    return "null" if value is None else f"a value of type {type(value).__name__}"


class _Applier:
    """Walks a dict along one override's key path, creating sections where allowed."""

    def __init__(self, override: Override, known: Callable[[Key], bool]) -> None:
        self.o = override
        self.key = override.key
        self.create = override.kind is OverrideKind.ADD or (
            override.kind is OverrideKind.SET and known(override.key)
        )

    def missing(self, upto: int, node: Mapping[str, Any]) -> OverrideError:
        """The error for a key that is not there (``upto``: index of the first missing part)."""
        shown = format_key(self.key)
        hint = ""
        if upto == len(self.key) - 1:
            meant = closest(str(self.key[upto]), [str(k) for k in node])
            hint = f" (did you mean {meant!r}?)" if meant is not None else ""
        if self.o.kind is OverrideKind.DELETE:
            return self.o.fail(f"there is no key {shown} to delete{hint}")
        return self.o.fail(
            f"key {shown} is not in the config{hint}; to add it use +{shown}={self._raw()}"
        )

    def _raw(self) -> str:
        return self.o.text.split("=", 1)[1] if "=" in self.o.text else "..."

    def _index(self, node: list[Any], part: str | int, i: int) -> int:
        if isinstance(part, str) and part.isdigit():
            part = int(part)
        last = i == len(self.key) - 1
        limit = len(node) + (1 if last and self.o.kind is OverrideKind.ADD else 0)
        if not isinstance(part, int) or not 0 <= part < limit:
            raise self.o.fail(
                f"{format_key(self.key[:i])} is a list of {len(node)} element(s); "
                f"{part!r} is not an index of it (use [0] to [{len(node) - 1}])"
            )
        return part

    def locate(self, root: dict[str, Any]) -> tuple[dict[str, Any] | list[Any], str | int]:
        """The container holding the key and the key (or index) within it."""
        node: Any = root
        i = 0
        while True:
            if isinstance(node, list):
                idx = self._index(node, self.key[i], i)
                if i == len(self.key) - 1:
                    return node, idx
                node, i = node[idx], i + 1
                continue
            if not isinstance(node, dict):
                raise self.o.fail(
                    f"{format_key(self.key[:i])} is {_kind_of(node)}, not a section, so it has "
                    f"no key {format_key(self.key[i:])}"
                )
            n = _match(node, self.key[i:])
            if n == 0 and isinstance(self.key[i], int):
                raise self.o.fail(f"{format_key(self.key[:i])} is a mapping, not a list")
            name = ".".join(map(str, self.key[i : i + max(n, 1)]))
            if i + max(n, 1) == len(self.key):
                return node, name
            if n == 0 and not self.create:
                raise self.missing(i, node)
            if n == 0 or (node[name] is None and self.create):
                node[name] = {}
            node, i = node[name], i + max(n, 1)

    def _delete(self, container: dict[str, Any] | list[Any], k: str | int, exists: bool) -> None:
        """Delete ``k``; a section written as flat dotted keys (``"singularity.image"``
        for ``~fixed_params.singularity``) goes with all its keys."""
        if exists:
            del container[k]  # type: ignore[arg-type]
            return
        mapping = container if isinstance(container, dict) else {}
        flat = [name for name in mapping if name.startswith(f"{k}.")]
        if not flat:
            raise self.missing(len(self.key) - 1, mapping)
        for name in flat:
            del mapping[name]

    def apply(self, root: dict[str, Any]) -> None:
        container, k = self.locate(root)
        exists = k in container if isinstance(container, dict) else k < len(container)  # type: ignore[operator]
        shown = format_key(self.key)
        if self.o.kind is OverrideKind.DELETE:
            self._delete(container, k, exists)
        elif self.o.kind is OverrideKind.ADD and exists:
            raise self.o.fail(f"key {shown} already exists; to change it use {shown}={self._raw()}")
        elif not exists and not self.create:
            raise self.missing(len(self.key) - 1, container if isinstance(container, dict) else {})
        elif isinstance(container, list) and not exists:
            container.append(copy.deepcopy(self.o.value))
        else:
            container[k] = copy.deepcopy(self.o.value)  # type: ignore[index]


def apply_overrides(
    data: Mapping[str, Any], overrides: Sequence[Override], known: Callable[[Key], bool]
) -> dict[str, Any]:
    """Apply overrides in order to a copy of ``data``.

    Args:
        data: The config as read from its file (not modified).
        overrides: Parsed overrides (see :func:`parse_overrides`).
        known: Whether the schema knows a key path; such keys may be set with
            ``key=value`` even when the file does not have them.

    Returns:
        A new dict with the overrides applied.

    Raises:
        OverrideError: A key to change or delete is missing (the message says to
            use ``+key=...`` to add one), a key to add exists, or a path runs
            through a value that is not a section or list.
    """
    result = copy.deepcopy(dict(data))
    for override in overrides:
        _Applier(override, known).apply(result)
    return result
