"""Keys of earlier hpoptim versions, read as the keys that replaced them (with a note each).

Each job's CPUs, GPUs, memory and time limit moved from the ``slurm`` section (and
the top level) into the launcher-neutral ``resources`` section. An old key still
works: :func:`translate_old_keys` moves its value to the new key and says so in one note.
Giving an old and a new name of one key (or two old names of it) with different
values is a problem at the old key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpoptim.errors import ConfigProblem
from hpoptim.messages import show

__all__ = ["RENAMES", "Translated", "translate_old_keys"]

#: Old key path -> the key path that replaced it.
RENAMES: dict[tuple[str, ...], tuple[str, str]] = {
    ("job_timeout_min",): ("resources", "time_limit_min"),
    ("signal_lead_s",): ("resources", "signal_lead_s"),
    ("timeout_signal",): ("resources", "timeout_signal"),
    ("slurm", "n_cpus_per_job"): ("resources", "n_cpus_per_job"),
    ("slurm", "n_gpus_per_job"): ("resources", "n_gpus_per_job"),
    ("slurm", "mem_gb"): ("resources", "mem_gb"),
    ("slurm", "time_limit_min"): ("resources", "time_limit_min"),
}


@dataclass
class Translated:
    """A config dict in today's keys, and what the translation did.

    Attributes:
        data: The config with old keys moved to their new places.
        notes: One line per old key translated.
        problems: Conflicting old and new keys.
        origins: New key path -> the old key path its value came from (so a problem
            with the value names the key the user wrote).
    """

    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping) or path[-1] not in node:
        return False, None
    return True, node[path[-1]]


def translate_old_keys(data: Mapping[str, Any]) -> Translated:
    """Move every old key of ``data`` (not modified) to its new place.

    Returns:
        The translated config with its notes, problems and origins.
    """
    out = Translated({k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()})
    resources = out.data.get("resources")
    if resources is not None and not isinstance(resources, Mapping):
        return out  # the model reports the section's type
    for old, (section, key) in RENAMES.items():
        found, value = _get(data, old)
        if not found:
            continue
        old_name, new_name = ".".join(old), f"{section}.{key}"
        _remove(out.data, old)
        target = out.data.setdefault(section, {})
        if target is None:
            target = out.data[section] = {}
        if key in target and target[key] != value:
            other = out.origins.get(new_name, new_name)
            out.problems.append(
                ConfigProblem(
                    old_name,
                    f"is the old name of {new_name}, which is also given (as {other}) with a "
                    f"different value: {show(value)} here, {show(target[key])} there; "
                    "remove one",
                )
            )
            continue
        target[key] = value
        out.origins.setdefault(new_name, old_name)
        out.notes.append(f"{old_name} is now {new_name}; read it as {new_name}: {show(value)}")
    return out


def _remove(data: dict[str, Any], path: tuple[str, ...]) -> None:
    if len(path) == 1:
        del data[path[0]]
    else:
        del data[path[0]][path[1]]
