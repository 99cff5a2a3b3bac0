"""A small engine for typed, frozen config sections with our own error messages.

A section is a frozen dataclass deriving from :class:`Section` whose fields are
declared with :func:`key` (documentation, bounds, an optional rule). Field types
are read from the annotations: ``bool``, ``int``, ``float``, ``str``, ``Path``,
``Literal[...]``, ``tuple[str, ...]``, ``tuple[Mapping[str, Any], ...]``,
``Mapping[str, str]``, ``Mapping[str, Any]``, another section, and ``X | None``
of these. :func:`build_section` checks a plain dict against a section class and
collects every problem with its dotted key path instead of stopping at the first.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import operator
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

from hpoptim.errors import ConfigProblem
from hpoptim.space import did_you_mean

__all__ = ["Invalid", "Section", "build_section", "describe", "join_path", "key", "knows"]

_MISSING: Any = dataclasses.MISSING
_BOUNDS = (("ge", ">=", operator.ge), ("gt", ">", operator.gt), ("le", "<=", operator.le))
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}


class Invalid(Exception):
    """Raised by a field rule: one message, or problems with paths relative to the key."""

    def __init__(self, message: str = "", problems: tuple[ConfigProblem, ...] = ()) -> None:
        self.message = message
        self.problems = problems
        super().__init__(message)


def key(
    default: Any = _MISSING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    rule: Callable[[Any], Any] | None = None,
    rule_doc: str = "",
) -> Any:
    """Declare a config key: a dataclass field with its documentation and rules.

    Args:
        default: The default; omitted (and no ``factory``): the key is required.
        doc: One-line description for the reference.
        factory: Builds the default (for lists, mappings and sections).
        ge: A number must be ``>= ge``.
        gt: A number must be ``> gt``.
        le: A number must be ``<= le``.
        rule: Called with the converted value; returns the value to store (possibly
            normalised) or raises :class:`Invalid`.
        rule_doc: A few words for the reference's type column describing ``rule``.
    """
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "rule": rule, "rule_doc": rule_doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Section:
    """Base of config sections (subclasses are frozen, keyword-only dataclasses)."""

    #: Other names for keys (e.g. cluster_utils'), used for "did you mean" only.
    synonyms: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def cross_check(cls, values: Mapping[str, Any]) -> list[ConfigProblem]:
        """Problems involving several keys (paths relative to the section).

        Args:
            values: The valid keys' values, defaults filled in; a key given with an
                invalid value is absent.
        """
        return []

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (paths as strings, tuples as lists) that builds back equal."""
        return {f.name: _plain(getattr(self, f.name)) for f in _fields(type(self))}


def _fields(cls: type[Section]) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cast(Any, cls))


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(hint, False)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def section_type(hint: Any) -> type[Section] | None:
    """The section class a (possibly optional) annotation names, or None."""
    inner, _ = optional(hint)
    return inner if isinstance(inner, type) and issubclass(inner, Section) else None


def _type_words(inner: Any) -> str:
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if section_type(inner) is not None:
        return "section"
    if inner in _SCALARS:
        return _SCALARS[inner]
    if origin is tuple:
        return "list of strings" if args[0] is str else "list of mappings"
    return "mapping of strings to strings" if args[1] is str else "mapping"


def describe(hint: Any, meta: Mapping[str, Any] | None = None) -> str:
    """A key's type in words with its bounds and rule, e.g. ``integer >= 1 or null``."""
    meta = meta or {}
    inner, nullable = optional(hint)
    text = _type_words(inner)
    bounds = " and ".join(f"{op} {meta[k]:g}" for k, op, _ in _BOUNDS if meta.get(k) is not None)
    text = f"{text} {bounds}" if bounds else text
    text = f"{text} ({meta['rule_doc']})" if meta.get("rule_doc") else text
    return f"{text} or null" if nullable else text


def _expected(hint: Any, meta: Mapping[str, Any]) -> str:
    what = describe(hint, {**meta, "rule_doc": ""})
    if what.startswith("'"):
        *first, last = what.split(" or ")
        return f"{', '.join(first)} or {last}"
    return ("an " if what[0] in "aeiou" else "a ") + what


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
            return f"keys must be strings, got {show(list(value))}"
        return next((p for p in map(json_problem, value.values()) if p), "")
    return f"{show(value)} ({type(value).__name__}) is not JSON data"


def absolute(path: str | Path) -> Path:
    """``~`` expanded and made absolute against the current directory (no symlinks resolved)."""
    return Path(os.path.normpath(Path(path).expanduser().absolute()))


def _convert_scalar(inner: Any, value: Any) -> tuple[bool, Any]:
    if inner is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, None
    if inner is int:
        return isinstance(value, int), value
    if inner is float:
        try:
            ok = isinstance(value, int | float) and math.isfinite(value)
        except OverflowError:  # an int too large for a float
            ok = False
        return ok, float(value) if ok else None
    if inner is str:
        return isinstance(value, str), value
    if inner is Path:
        ok = isinstance(value, str | Path) and str(value) != ""
        return ok, absolute(value) if ok else None
    return value in typing.get_args(inner), value  # Literal


def _convert_container(inner: Any, value: Any) -> tuple[bool, Any]:
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False, None
        if args[0] is str:
            return all(isinstance(v, str) for v in value), tuple(value)
        ok = all(isinstance(v, Mapping) for v in value) and not json_problem(value)
        return ok, tuple(copy.deepcopy(dict(v)) for v in value) if ok else None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        return False, None
    if args[1] is str:
        return all(isinstance(v, str) for v in value.values()), dict(value)
    return not json_problem(value), copy.deepcopy(dict(value))


def _in_bounds(value: Any, meta: Mapping[str, Any]) -> bool:
    if not isinstance(value, int | float):
        return True
    return all(meta.get(k) is None or cmp(value, meta[k]) for k, _, cmp in _BOUNDS)


def _value(
    hint: Any, meta: Mapping[str, Any], value: Any, path: str, out: list[ConfigProblem]
) -> Any:
    """Check and convert one key's value; append its problems to ``out``."""
    inner, nullable = optional(hint)
    section = section_type(inner)
    if section is not None:
        if value is None and not nullable:
            value = {}  # an empty section (``slurm:`` in YAML) means all defaults
        if value is None:
            return None
        if not isinstance(value, Mapping):
            out.append(ConfigProblem(path, f"must be a section (a mapping), got {show(value)}"))
            return None
        return build_section(section, value, path, out)
    if value is None and nullable:
        return None
    scalar = inner in _SCALARS or typing.get_origin(inner) is Literal
    ok, converted = (_convert_scalar if scalar else _convert_container)(inner, value)
    if not (ok and _in_bounds(converted, meta)):
        out.append(ConfigProblem(path, f"must be {_expected(hint, meta)}, got {show(value)}"))
        return None
    if meta.get("rule") is None:
        return converted
    try:
        return meta["rule"](converted)
    except Invalid as exc:
        out.extend(ConfigProblem(join_path(path, p.path), p.message) for p in exc.problems)
        if not exc.problems:
            out.append(ConfigProblem(path, exc.message))
        return None


def join_path(prefix: str, rest: str) -> str:
    """Join dotted key paths: ``("a", "b")`` -> ``a.b``, ``("a", "[0].b")`` -> ``a[0].b``."""
    if not prefix or not rest:
        return prefix or rest
    return f"{prefix}{rest}" if rest.startswith("[") else f"{prefix}.{rest}"


def _unknown_key(cls: type[Section], name: Any, valid: list[str], path: str) -> ConfigProblem:
    text = str(name)
    meant = cls.synonyms.get(text)
    hint = f"; did you mean {meant!r}?" if meant in valid else did_you_mean(text, valid)
    return ConfigProblem(join_path(path, text), f"unknown key{hint} (valid: {', '.join(valid)})")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return cast(Callable[[], Any], f.default_factory)()
    return None


def build_section(
    cls: type[Section], data: Mapping[str, Any], path: str, out: list[ConfigProblem]
) -> Any:
    """Check ``data`` against section ``cls``, appending every problem to ``out``.

    Args:
        cls: The section class.
        data: The section as read (not modified).
        path: Its dotted key path (``""`` for the top level).
        out: Problems found are appended here.

    Returns:
        The section instance, or None if any problem was found in it.
    """
    hints = typing.get_type_hints(cls)
    fields = _fields(cls)
    valid = [f.name for f in fields]
    before = len(out)
    out.extend(_unknown_key(cls, k, valid, path) for k in data if k not in valid)
    values: dict[str, Any] = {}
    for f in fields:
        where = join_path(path, f.name)
        if f.name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:
                out.append(
                    ConfigProblem(
                        where, f"required key is missing ({str(f.metadata['doc']).rstrip('.')})"
                    )
                )
            continue
        mark = len(out)
        converted = _value(hints[f.name], f.metadata, data[f.name], where, out)
        if len(out) == mark:
            values[f.name] = converted
    present = {**{f.name: _default(f) for f in fields if f.name not in data}, **values}
    out.extend(ConfigProblem(join_path(path, p.path), p.message) for p in cls.cross_check(present))
    return cls(**values) if len(out) == before else None


def knows(cls: type[Section], path: tuple[str | int, ...]) -> bool:
    """Whether section ``cls`` defines the key at ``path`` (through nested sections)."""
    section: type[Section] | None = cls
    for i, part in enumerate(path):
        if section is None or not isinstance(part, str):
            return False
        hints = typing.get_type_hints(section)
        if part not in {f.name for f in _fields(section)}:
            return False
        if i == len(path) - 1:
            return True
        section = section_type(hints[part])
    return False


def reference_rows(cls: type[Section]) -> list[tuple[str, str, str, str, str]]:
    """One ``(key, type, default, required, description)`` row per key of ``cls``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in _fields(cls):
        required = f.default is _MISSING and f.default_factory is _MISSING
        default = _default(f)
        if required:
            shown = "—"
        elif isinstance(default, Section):
            shown = "(defaults)"
        else:
            shown = json.dumps(_plain(default))
        doc = str(f.metadata["doc"])
        rows.append(
            (f.name, describe(hints[f.name], f.metadata), shown, "yes" if required else "no", doc)
        )
    return rows
