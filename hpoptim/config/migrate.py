"""``hpoptim migrate``: a cluster_utils/LTTFS config as native YAML, every translated key commented.

:func:`migrate_text` reads a config file, applies overrides as the file writes its
keys, translates it (:mod:`hpoptim.config.dialects`) and renders the native config
as YAML. Each key that came from a cluster_utils key carries an end-of-line comment
naming it; keys that were dropped or ignored are listed in the header. Loading the
output gives the same resolved config as loading the original file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hpoptim.config.dialects import Note
from hpoptim.errors import ConfigError

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[^\s#'\"-][^:]*|'[^']*'|\"[^\"]*\"):(?: |$)")


def migrate_text(path: Path, overrides: Sequence[str] = ()) -> str:
    """The native YAML config for the config file at ``path`` (see the module docstring).

    Raises:
        ConfigError: The file cannot be read, or a key cannot be translated.
        OverrideError: An override cannot be applied.
    """
    from hpoptim.config import _file_knows, read_file_with_imports, translate_dialect
    from hpoptim.config.overrides import apply_overrides, parse_overrides

    data = apply_overrides(read_file_with_imports(path), parse_overrides(overrides), _file_knows)
    native, notes = translate_dialect(data)
    errors = [n.problem() for n in notes if n.kind == "error"]
    if errors:
        raise ConfigError(errors, path)
    return render(native, notes, source=path)


def render(native: Mapping[str, Any], notes: Iterable[Note], source: Path | None = None) -> str:
    """``native`` as YAML with a comment on each key a note targets, and a header."""
    notes = list(notes)
    by_target: dict[str, list[str]] = {}
    for note in notes:
        if note.target:
            detail = note.message.partition(note.target)[2]
            by_target.setdefault(note.target, []).append(f"{note.path}{detail}")
    header = [f"# hpoptim config translated from {source}" if source else "# hpoptim config"]
    header += [f"# {n.path}: {n.message}" for n in notes if n.kind != "translated"]
    header += [f"# {n.path}: {n.message}" for n in notes if n.kind == "translated" and not n.target]
    body = yaml.dump(dict(native), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join([*header, "", *_commented(body.splitlines(), by_target)]) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block mappings (each key on its line, to carry its comment); lists of scalars inline."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    inline = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def _commented(lines: list[str], by_target: Mapping[str, list[str]]) -> list[str]:
    stack: list[tuple[int, str]] = []
    out = []
    for line in lines:
        match = _KEY_LINE.match(line)
        if match is None:
            out.append(line)
            continue
        indent, key = len(match["indent"]), match["key"].strip("'\"")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        dotted = ".".join(k for _, k in stack)
        sources = by_target.get(dotted)
        out.append(f"{line}  # from {', '.join(dict.fromkeys(sources))}" if sources else line)
    return out
