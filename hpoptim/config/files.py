"""Read a config file (JSON, YAML or TOML, chosen by extension) into a plain dict.

Parse errors become a :class:`~hpoptim.errors.ConfigError` naming the file and
the line; the top level must be a mapping. Nothing is validated here beyond that.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.messages import join_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

__all__ = ["MAX_DEPTH", "SUFFIXES", "check_depth", "read_config_file"]

MAX_DEPTH = 50
"""How deeply mappings and lists may nest in a config: far more than any config needs,
and far less than what would exhaust the interpreter's recursion limit."""


def check_depth(data: Any, source: Path | None = None) -> None:
    """Refuse ``data`` if its mappings and lists nest deeper than :data:`MAX_DEPTH`.

    Walks without recursion, so any depth is checked.

    Raises:
        ConfigError: Naming the key path where the limit is passed.
    """
    todo: list[tuple[Any, str, int]] = [(data, "", 0)]
    while todo:
        value, path, depth = todo.pop()
        if isinstance(value, dict):
            items = [(join_path(path, str(k)), v) for k, v in value.items()]
        elif isinstance(value, list):
            items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        else:
            continue
        if depth >= MAX_DEPTH:
            raise ConfigError.single(
                path, f"nested more than {MAX_DEPTH} levels deep; a config needs far fewer", source
            )
        todo += [(v, p, depth + 1) for p, v in items]


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers the keys it was given twice."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a plain dict, or as an :class:`_Object` naming its repeated keys."""
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    marked = _Object(pairs)
    counts = Counter(k for k, _ in pairs)
    marked.duplicates = tuple(k for k, n in counts.items() if n > 1)
    return marked


def _duplicates(value: Any, path: str) -> list[ConfigProblem]:
    """Every key given twice in one JSON object of ``value``, by key path (YAML refuses them)."""
    problems: list[ConfigProblem] = []
    if isinstance(value, dict):
        problems += [
            ConfigProblem(join_path(path, k), "duplicate key: a key may appear once in a mapping")
            for k in getattr(value, "duplicates", ())
        ]
        for key, item in value.items():
            problems += _duplicates(item, join_path(path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems += _duplicates(item, f"{path}[{i}]")
    return problems


def _parse_json(text: str, path: Path) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise _parse_error(path, exc.lineno, exc.colno, exc.msg) from None
    check_depth(data, path)  # before the recursive walk below
    problems = _duplicates(data, "")
    if problems:
        raise ConfigError(problems, source=path)
    return data


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml  # only for YAML files: a JSON or TOML config (and resume) does without

    try:
        return yaml.load(text, Loader=_unique_key_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if mark is None:
            raise _parse_error(path, None, None, reason) from None
        raise _parse_error(path, mark.line + 1, mark.column + 1, reason) from None
    except yaml.YAMLError as exc:
        raise _parse_error(path, None, None, str(exc)) from None


def _parse_toml(text: str, path: Path) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message already ends with "(at line L, column C)".
        raise _parse_error(path, None, None, str(exc)) from None


_PARSERS: dict[str, Callable[[str, Path], Any]] = {
    ".json": _parse_json,
    ".yaml": _parse_yaml,
    ".yml": _parse_yaml,
    ".toml": _parse_toml,
}
SUFFIXES = tuple(_PARSERS)


@cache
def _unique_key_loader() -> type[Any]:
    """A safe YAML loader that refuses a key given twice in one mapping."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _parse_error(path: Path, line: int | None, column: int | None, reason: str) -> ConfigError:
    where = f"{path}" if line is None else f"{path}, line {line}, column {column}"
    return ConfigError.single("", f"cannot parse {where}: {reason}", source=path)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a config file into a dict, choosing the format by the file's extension.

    Args:
        path: A ``.json``, ``.yaml``, ``.yml`` or ``.toml`` file.

    Returns:
        The file's top-level mapping.

    Raises:
        ConfigError: The file is missing, unreadable, of an unknown type, does not
            parse (the message names the file and the line), or its top level is
            not a mapping.
    """
    parser = _PARSERS.get(path.suffix.lower())
    if parser is None:
        raise ConfigError.single(
            "",
            f"config file {path} has extension {path.suffix!r}; supported: {', '.join(SUFFIXES)}",
            source=path,
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.single("", f"cannot read config file {path}: {exc}", source=path) from exc
    try:
        data = parser(text, path)
    except RecursionError:
        raise ConfigError.single(
            "", f"cannot parse {path}: nested too deeply (at most {MAX_DEPTH} levels)", path
        ) from None
    check_depth(data, path)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError.single(
            "", f"the top level of {path} must be a mapping of keys to values, got {kind}", path
        )
    return data
