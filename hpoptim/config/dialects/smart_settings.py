"""What cluster_utils' settings loader (smart_settings) does beyond plain JSON/YAML/TOML.

``__import__`` merges other config files under the importing one
(:func:`resolve_imports`); ``"{...}"`` strings are expressions smart_settings evaluates
as Python f-strings over the other settings and the environment (``{$USER}``,
``{fn_args.u < 0.2}``): :func:`evaluate_tree` evaluates them over the config, as
smart_settings does when cluster_utils loads it; what needs a job's parameters is left
to the job (``hpoptim.compat.initialize_job`` evaluates it there, as cluster_utils'
job side does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpoptim.config.dialects.notes import Note

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


class _Attributes(dict[str, Any]):
    """A mapping whose keys are also attributes (``fn_args.u``), as smart_settings gives."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def namespace_of(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The names an expression sees: the settings (nested, attribute access) and each
    environment variable ``VAR`` as ``ENV_VAR`` (written ``$VAR`` in the expression)."""
    env: dict[str, Any] = {f"ENV_{k}": v for k, v in os.environ.items()}
    return {**env, **_attributes(tree)}


def _attributes(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _Attributes({str(k): _attributes(v) for k, v in value.items()})
    return value


def evaluate(text: str, namespace: Mapping[str, Any]) -> tuple[Any, str]:
    """smart_settings' evaluation of one string: ``(value, "")``, or ``(text, why)``
    when it holds an expression that cannot be evaluated over ``namespace``.

    The string is an f-string (``$VAR`` inside braces reads the environment); if that
    changes it, the result is read as a Python literal where it is one (``"True"`` ->
    True, ``"[1, 2]"`` -> a list), else kept as a string.
    """
    if not _REFERENCE.search(text):
        return text, ""
    replaced = re.sub(r"\{[^{}]*\}", lambda m: m.group(0).replace("$", "ENV_"), text)
    try:
        formatted = eval('f"' + replaced + '"', dict(namespace))  # smart_settings' rule
    except Exception as exc:  # any error: the expression is left as written
        return text, f"{type(exc).__name__}: {exc}"
    if formatted == text:
        return text, ""
    try:
        return eval(formatted, {"__builtins__": None}), ""
    except Exception:  # not a literal: the string as formatted
        return formatted, ""


def _expression_leaves(tree: Any, path: str = "") -> list[tuple[str, str]]:
    """Like :func:`expressions`, also inside lists (``key[0]``)."""
    if isinstance(tree, Mapping):
        return [x for k, v in tree.items() for x in _expression_leaves(v, f"{path}{k}.")]
    if isinstance(tree, list):
        return [x for i, v in enumerate(tree) for x in _expression_leaves(v, f"{path}[{i}].")]
    if isinstance(tree, str) and _REFERENCE.search(tree):
        return [(path.rstrip(".").replace(".[", "["), tree)]
    return []


def evaluate_tree(
    tree: Any, namespace: Mapping[str, Any], path: str = ""
) -> tuple[Any, list[tuple[str, str, str]]]:
    """``tree`` with every expression :func:`evaluate` can evaluate replaced, and
    ``(dotted key, expression, why)`` for each it cannot."""
    left: list[tuple[str, str, str]] = []
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out[key], more = evaluate_tree(value, namespace, f"{path}{key}.")
            left += more
        return out, left
    if isinstance(tree, list):
        items = []
        for i, value in enumerate(tree):
            item, more = evaluate_tree(value, namespace, f"{path}[{i}].")
            items.append(item)
            left += more
        return items, left
    if isinstance(tree, str):
        value, why = evaluate(tree, namespace)
        if why:
            left.append((path.rstrip(".").replace(".[", "["), tree, why))
        return value, left
    return tree, left


def evaluate_expressions(out: dict[str, Any], config: Mapping[str, Any]) -> list[Note]:
    """Evaluate the expressions of ``out`` in place over ``config``; a note for each.

    One that needs a job's parameters (``{fn_args.u < 0.2}``) is left to the job in
    ``fixed_params`` (``hpoptim.compat.initialize_job`` evaluates it over the job's
    parameters, as cluster_utils' job side does), an error when the job runs through a
    shipped wrapper (which does not evaluate it); anywhere else it is kept as written,
    as smart_settings keeps it, with a warning.
    """
    before = dict(_expression_leaves(out))
    evaluated, left = evaluate_tree(out, namespace_of(config))
    out.clear()
    out.update(evaluated)
    unresolved = {key for key, _, _ in left}
    notes = [
        Note(key, "translated", f"{value!r} evaluated as smart_settings does")
        for key, value in before.items()
        if key not in unresolved
    ]
    wrapper = Path(str(out.get("script_relative_path", ""))).name in JOB_SIDE_UNAWARE
    for key, value, why in left:
        if key.startswith("fixed_params.") and wrapper:
            message = (
                f"{value!r} is a smart_settings expression over the job's parameters, which "
                f"{out['script_relative_path']} does not evaluate (over the config: {why}); "
                "write the value itself"
            )
            notes.append(Note(key, "error", message))
        elif key.startswith("fixed_params."):
            message = (
                f"{value!r} is evaluated in the job over its parameters by "
                f"hpoptim.compat.initialize_job (over the config: {why})"
            )
            notes.append(Note(key, "translated", message))
        else:
            message = f"{value!r} kept as written, as smart_settings keeps it ({why})"
            notes.append(Note(key, "ignored", message))
    return notes


#: Job scripts shipped with hpoptim, which pass parameters on without evaluating
#: smart_settings' expressions or imports (only hpoptim.compat does).
JOB_SIDE_UNAWARE = ("run_learning.py", "run_singularity.py")


PROMISE, IMPORT = "__import_promise__", "__import__"


def import_promise(out: dict[str, Any], run_dir: Path | None) -> list[Note]:
    """cluster_utils' ``fixed_params.__import_promise__``: files merged under each job's
    parameters in the job (``hpoptim.compat.initialize_job``), as cluster_utils' job side
    does; it is passed on as ``__import__``.

    Args:
        out: The config being translated; changed in place.
        run_dir: The directory jobs run in, when known before the run (the working
            directory): each file must exist there.
    """
    fixed = out.get("fixed_params")
    if not isinstance(fixed, dict):
        return []
    if IMPORT in fixed:
        why = "cannot import inside fixed params; did you mean __import_promise__?"
        return [Note(f"fixed_params.{IMPORT}", "error", why)]
    if PROMISE not in fixed:
        return []
    source = f"fixed_params.{PROMISE}"
    names = fixed.pop(PROMISE)
    fixed[IMPORT] = names
    listed = [names] if isinstance(names, str) else names
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        return [Note(source, "error", f"must be a path or a list of paths, got {names!r}")]
    script = str(out.get("script_relative_path", ""))
    if Path(script).name in JOB_SIDE_UNAWARE:
        why = (
            f"{script} does not merge imported files into the parameters (only hpoptim.compat does)"
        )
        return [Note(source, "error", why)]
    notes = []
    for name in listed:
        path = Path(name).expanduser()
        if run_dir is not None and not (run_dir / path).is_file():
            notes.append(Note(source, "error", f"{name!r} does not exist under {run_dir}"))
    why = (
        f"-> fixed_params.{IMPORT}: merged under each job's parameters by "
        "hpoptim.compat.initialize_job, relative to the directory jobs run in"
    )
    return notes or [Note(source, "translated", why, target=f"fixed_params.{IMPORT}")]


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
