#!/usr/bin/env python3
"""Run a learner on config files patched from hpoptim parameters.

A job script for hpoptim (``script_relative_path: wrappers/run_learning.py``, or
``singularity.script`` of ``wrappers/run_singularity.py``), started as
``run_learning.py /path/to/params.json`` in the checkout root. Standard library only
(PyYAML, when importable, for YAML files); it does not import hpoptim.

1. ``config.config_templates`` (a fixed parameter) names a template index: a JSON (or
   YAML) object mapping config names to template files, e.g.
   ``{"rl_config": "../config/ppo.json"}``, the shape the hysr executables and LTTFS's
   own config.json use. The index path is relative to the working directory; the
   template paths are relative to the index's directory (``~`` is expanded, absolute
   paths are kept: ``/opt/mpi-is/...`` may exist only inside the image the job runs in).
   Templates are JSON or YAML (``.yaml``/``.yml``, read with PyYAML inside the job).
2. Every parameter ``config.<name>.<key>`` sets ``<key>`` (a dotted path into nested objects)
   in config ``<name>``; ``config.<name>.<key>:<i>`` sets element ``i`` of a list. A key the
   template lacks is an error, unless the object holding it has ``"__extensible__": true``
   (the marker is dropped from the written files).
3. The patched configs go to ``<run_dir>/config/<name>.<suffix of its template>``, in
   their template's format, and the main config ``<run_dir>/main_config.json`` (the
   index's format) has the index's flat shape: ``{config name: path}``. What else the
   learner may need goes beside it, in ``<run_dir>/run_info.json`` and in the
   environment: ``output_dir``, ``log_dir``, ``checkpoint_dir`` (``HPOPTIM_OUTPUT_DIR``,
   ``HPOPTIM_LOG_DIR``, ``HPOPTIM_CHECKPOINT_DIR``), ``resume_from``
   (``HPOPTIM_RESUME_FROM``, empty in the first iteration), ``seed``, ``iteration``,
   ``n_iterations``, ``run_dir``. The three directories are the run directory unless
   ``learner.output_dir`` / ``learner.log_dir`` / ``learner.checkpoint_dir`` are set (then
   kept as given). ``resume_from`` is the ``checkpoint_dir`` of the previous iteration.
4. ``learner.command`` (an argv list; ``{python}`` stands for this interpreter; default
   ``["hysr_one_ball_rl"]``, found on the PATH the wrapper runs with, as LTTFS's
   wrapper did) is run with the main config's path appended, with the run directory as
   working directory, so parallel jobs never share files; arguments naming an existing
   file relative to the checkout are made absolute. Signals this process gets are
   forwarded to it.
5. A non-zero learner exit code is passed through (3 = to be resumed). After exit 0 the
   metric ``learner.metric_key`` is read from ``learner.metric_file`` (relative to the
   output dir; ``.csv``: the column's last non-empty value; ``.json``: a key or dotted
   path; ``.jsonl``: the same in the last line holding it; defaults ``progress.csv`` and
   ``rollout/ep_rew_mean``) and added to ``metrics.json`` as ``learner.metric_name``
   (default: the run's metric_to_optimize, else the key). The wrapper then exits 3 if
   more training iterations follow, else 0; a missing metric exits 1. A problem of the
   wrapper's own setup (bad parameters or templates, a learner that cannot start)
   exits 78 (:data:`SETUP_ERROR_EXIT_CODE`): hpoptim stops the run instead of retrying.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

# the job contract (hpoptim/contract.py; tests/test_contract.py holds these copies equal)
ENV_PARAMS_FILE = "HPOPTIM_PARAMS_FILE"
METRICS_FILE_NAME = "metrics.json"
RESUME_EXIT_CODE = 3
SETUP_ERROR_EXIT_CODE = 78  # stops the run
FAILED_EXIT_CODE = 1

TEMPLATES_PARAM = "config.config_templates"
EXTENSIBLE_KEY = "__extensible__"
MAIN_CONFIG_STEM = "main_config"
RUN_INFO_NAME = "run_info.json"
DEFAULT_LEARNER = ["hysr_one_ball_rl"]
YAML_SUFFIXES = (".yaml", ".yml")
CONFIG_DIR_NAME = "config"
PYTHON_PLACEHOLDER = "{python}"
PATH_KEYS = ("output_dir", "log_dir", "checkpoint_dir")
LEARNER_DEFAULTS: dict[str, Any] = {
    "command": DEFAULT_LEARNER,
    "metric_file": "progress.csv",
    "metric_key": "rollout/ep_rew_mean",
    "metric_name": None,
    "output_dir": None,
    "log_dir": None,
    "checkpoint_dir": None,
}
FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2")

_PARAM = re.compile(r"config\.(?P<config>[^.:]+)\.(?P<key>[^:]+?)(?::(?P<index>\d+))?")
_CONFIG_NAME = re.compile(r"[A-Za-z0-9_-]+")


class Problem(NamedTuple):
    """A parameter that cannot be used, and why."""

    param: str
    message: str


class LearningError(Exception):
    """The parameters or templates cannot be used; holds every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"{p.param}: {p.message}" for p in self.problems))


class MetricError(Exception):
    """The learner's output holds no usable metric value."""


class ResumeError(Exception):
    """The previous training iteration left no checkpoint location."""


@dataclass(frozen=True)
class Target:
    """Where a ``config.<name>.<key>[:<index>]`` parameter points."""

    config: str
    keys: tuple[str, ...]
    index: int | None


# -- patching rules (pure; also used by hpoptim's config check) ------------------------------


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One dotted key per leaf; lists and empty objects are leaves."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def parse_param(name: str) -> Target | None:
    """The target of a ``config.*`` parameter (None for others and the reserved index)."""
    if not name.startswith("config.") or name == TEMPLATES_PARAM:
        return None
    match = _PARAM.fullmatch(name)
    if match is None or "" in match["key"].split("."):
        raise LearningError([Problem(name, "must have the form config.<name>.<key>[:<index>]")])
    index = match["index"]
    return Target(
        match["config"], tuple(match["key"].split(".")), None if index is None else int(index)
    )


def read_structured(path: Path) -> Any:
    """A JSON file, or a YAML one (``.yaml``/``.yml``, needs PyYAML); raises OSError/ValueError."""
    text = path.read_text(encoding="utf-8")
    if path.suffix not in YAML_SUFFIXES:
        return json.loads(text)
    try:
        import yaml
    except ImportError as exc:
        raise ValueError(
            "reading YAML needs PyYAML where the job runs (pip install pyyaml there, or "
            "use JSON files)"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc


def write_structured(path: Path, data: Any) -> None:
    """Write ``data`` atomically, as YAML for a ``.yaml``/``.yml`` path, else as JSON."""
    if path.suffix not in YAML_SUFFIXES:
        write_json_atomic(path, data)
        return
    import yaml

    _write_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def resolve_index(index_file: Path) -> dict[str, Path]:
    """Config names to template paths, resolved relative to the index's directory."""
    try:
        index = read_structured(index_file)
    except OSError as exc:
        raise _index_error(f"cannot read the template index {str(index_file)!r}: {exc}") from exc
    except ValueError as exc:
        raise _index_error(f"template index {str(index_file)!r} cannot be read: {exc}") from exc
    if not isinstance(index, dict) or not all(isinstance(v, str) for v in index.values()):
        raise _index_error(
            f"template index {str(index_file)!r} must be an object of config name -> path"
        )
    resolved: dict[str, Path] = {}
    for name, raw in index.items():
        if not _CONFIG_NAME.fullmatch(name):
            raise _index_error(
                f"config name {name!r} in {str(index_file)!r} must use only letters, digits, "
                "'_' and '-'"
            )
        path = Path(raw).expanduser()
        resolved[name] = path if path.is_absolute() else index_file.parent / path
    return resolved


def load_templates(index_file: Path, skip: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """The parsed template of every config named in the index (except those in ``skip``)."""
    templates: dict[str, dict[str, Any]] = {}
    for name, path in resolve_index(index_file).items():
        if name in skip:
            continue
        try:
            template = read_structured(path)
        except (OSError, ValueError) as exc:
            raise _index_error(f"cannot read template {name!r} at {str(path)!r}: {exc}") from exc
        if not isinstance(template, dict):
            raise _index_error(f"template {name!r} at {str(path)!r} must be an object")
        templates[name] = template
    return templates


def image_only_templates(index_file: Path) -> dict[str, Path]:
    """Templates given by an absolute path that does not exist here (e.g. only in the image)."""
    try:
        index = resolve_index(index_file)
    except LearningError:
        return {}
    return {n: p for n, p in index.items() if Path(p).is_absolute() and not Path(p).exists()}


def _index_error(message: str) -> LearningError:
    return LearningError([Problem(TEMPLATES_PARAM, message)])


def check_target(target: Target, templates: Mapping[str, Any]) -> str:
    """Why ``target`` cannot be set in ``templates`` ("" if it can)."""
    if target.config not in templates:
        known = ", ".join(sorted(templates)) or "none"
        return f"unknown config {target.config!r}{_hint(target.config, templates)} (known: {known})"
    node: Any = templates[target.config]
    for depth, key in enumerate(target.keys):
        where = repr(".".join(target.keys[:depth])) if depth else "the top level"
        if not isinstance(node, dict):
            return f"{where} in config {target.config!r} is a {_kind(node)}, not an object"
        if key not in node:
            if node.get(EXTENSIBLE_KEY) is True and target.index is None:
                return ""
            valid = ", ".join(sorted(k for k in node if k != EXTENSIBLE_KEY)) or "none"
            return (
                f"unknown key {key!r} at {where} of config {target.config!r}"
                f"{_hint(key, node)} (valid: {valid})"
            )
        node = node[key]
    if target.index is None:
        return ""
    dotted = ".".join(target.keys)
    if not isinstance(node, list):
        return f"index :{target.index} used on {dotted!r}, which is a {_kind(node)}, not a list"
    if target.index >= len(node):
        return (
            f"index :{target.index} out of range for {dotted!r} "
            f"(a list of {len(node)} element(s): valid indexes 0..{len(node) - 1})"
        )
    return ""


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def patch(templates: Mapping[str, Any], flat_params: Mapping[str, Any]) -> dict[str, Any]:
    """Copies of ``templates`` with every ``config.*`` parameter applied.

    Whole values are set before list elements, so ``config.rl.net_arch`` and
    ``config.rl.net_arch:1`` combine. Raises LearningError listing every problem.
    """
    configs: dict[str, Any] = json.loads(json.dumps(templates))
    problems: list[Problem] = []
    targets: list[tuple[Target, Any]] = []
    for name, value in flat_params.items():
        try:
            target = parse_param(name)
        except LearningError as exc:
            problems += exc.problems
            continue
        if target is None:
            continue
        why = check_target(target, configs)
        if why:
            problems.append(Problem(name, why))
        targets.append((target, value))
    if problems:
        raise LearningError(problems)
    for target, value in sorted(targets, key=lambda tv: tv[0].index is not None):
        _assign(configs[target.config], target, value)
    return {name: _strip_markers(config) for name, config in configs.items()}


def _assign(config: dict[str, Any], target: Target, value: Any) -> None:
    node = config
    for key in target.keys[:-1]:
        node = node.setdefault(key, {})
    last = target.keys[-1]
    if target.index is None:
        node[last] = value
    else:
        node[last][target.index] = value


def _strip_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_markers(v) for k, v in value.items() if k != EXTENSIBLE_KEY}
    if isinstance(value, list):
        return [_strip_markers(v) for v in value]
    return value


def learner_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``learner.*`` settings with defaults filled in; raises LearningError."""
    given = params.get("learner", {})
    if not isinstance(given, Mapping):
        raise LearningError([Problem("learner", "must be an object of learner.* settings")])
    problems = [
        Problem(
            f"learner.{k}",
            f"unknown setting{_hint(k, LEARNER_DEFAULTS)} (valid: {', '.join(LEARNER_DEFAULTS)})",
        )
        for k in given
        if k not in LEARNER_DEFAULTS
    ]
    settings = {**LEARNER_DEFAULTS, **{k: v for k, v in given.items() if k in LEARNER_DEFAULTS}}
    if isinstance(settings["command"], tuple):
        settings["command"] = list(settings["command"])
    command = settings["command"]
    if not (isinstance(command, list) and command and all(isinstance(a, str) for a in command)):
        problems.append(
            Problem("learner.command", f"must be a non-empty list of strings, got {command!r}")
        )
    for key in ("metric_file", "metric_key", *PATH_KEYS, "metric_name"):
        value = settings[key]
        if value is not None and not (isinstance(value, str) and value):
            problems.append(Problem(f"learner.{key}", f"must be a non-empty string, got {value!r}"))
    if problems:
        raise LearningError(problems)
    if settings["metric_name"] is None:
        settings["metric_name"] = settings["metric_key"]
    return settings


def templates_file(params: Mapping[str, Any], root: Path) -> Path:
    """The template index named by ``config.config_templates``, relative to ``root``."""
    section = params.get("config")
    raw = section.get("config_templates") if isinstance(section, Mapping) else None
    if not isinstance(raw, str) or not raw:
        raise _index_error(f"must name the template index file (a path), got {raw!r}")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else root / path


def find_problems(
    params: Mapping[str, Any],
    names: Iterable[str],
    root: Path,
    metric: str | None = None,
    in_image: bool = False,
) -> list[Problem]:
    """Every problem with the learner settings and the ``config.*`` parameter names.

    Args:
        params: Fixed parameters, nested by their dotted names.
        names: Every parameter name, fixed and optimised, flat.
        root: The directory the job runs in (the template index is relative to it).
        metric: The metric hpoptim optimises; checked against ``learner.metric_name``.
        in_image: Jobs run in a container: templates at absolute paths missing here
            are left unchecked (see :func:`image_only_templates`).

    Returns:
        The problems, each naming its parameter (empty if all is well).
    """
    problems: list[Problem] = []
    try:
        settings = learner_settings(params)
        explicit = params.get("learner", {}).get("metric_name")
        if metric is not None and explicit is not None and explicit != metric:
            problems.append(
                Problem(
                    "learner.metric_name",
                    f"the wrapper reports {settings['metric_name']!r} but metric_to_optimize is "
                    f"{metric!r}; set learner.metric_name or learner.metric_key to {metric!r}",
                )
            )
    except LearningError as exc:
        problems += exc.problems
    try:
        index = templates_file(params, root)
        skip = image_only_templates(index) if in_image else {}
        templates = load_templates(index, skip)
        checked = [n for n in names if (parse_param(n) or Target("", (), None)).config not in skip]
        patch(templates, dict.fromkeys(checked))
    except LearningError as exc:
        problems += exc.problems
    return problems


# -- reading the learner's metric ------------------------------------------------------------


def read_metric(path: Path, key: str) -> float:
    """The metric ``key`` from a CSV, JSON or JSON-lines file; raises MetricError."""
    if not path.is_file():
        raise MetricError(f"metric file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        raw: Any = _last_csv_value(text, key, path)
    elif path.suffix == ".jsonl":
        raw = _last_jsonl_value(text, key, path)
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MetricError(f"metric file {str(path)!r} is not JSON: {exc}") from exc
        raw = _lookup(data, key)
        if raw is None:
            raise MetricError(f"key {key!r} missing or empty in {str(path)!r}")
    return _as_number(raw, key, path)


def _last_csv_value(text: str, column: str, path: Path) -> str:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or column not in reader.fieldnames:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise MetricError(f"column {column!r} missing from {str(path)!r} (columns: {found})")
    last = ""
    for row in reader:
        value = (row.get(column) or "").strip()
        if value:
            last = value
    if not last:
        raise MetricError(f"column {column!r} of {str(path)!r} holds no value")
    return last


def _last_jsonl_value(text: str, key: str, path: Path) -> Any:
    for line in reversed(text.splitlines()):
        try:
            value = _lookup(json.loads(line), key) if line.strip() else None
        except ValueError:
            continue
        if value is not None:
            return value
    raise MetricError(f"no line of {str(path)!r} holds key {key!r}")


def _lookup(data: Any, key: str) -> Any:
    if isinstance(data, dict) and key in data:
        return data[key]
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _as_number(raw: Any, key: str, path: Path) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise MetricError(f"value {raw!r} of {key!r} in {str(path)!r} is not a finite number")
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers never see a partial file."""
    _write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the job ---------------------------------------------------------------------------------


class Prepared(NamedTuple):
    """What :func:`prepare` wrote and how to start the learner."""

    argv: list[str]
    settings: dict[str, Any]
    env: dict[str, str]
    run_dir: Path


def prepare(document: Mapping[str, Any], root: Path) -> Prepared:
    """Write the patched configs, the flat main config and ``run_info.json``."""
    params, job = document["params"], document["job"]
    flat = document.get("flat_params") or flatten(params)
    settings = learner_settings(params)
    if params.get("learner", {}).get("metric_name") is None and job.get("metric"):
        settings["metric_name"] = job["metric"]
    index_file = templates_file(params, root)
    templates = resolve_index(index_file)
    configs = patch(load_templates(index_file), flat)
    run_dir = Path(job["run_dir"])
    main: dict[str, str] = {}
    for name, config in configs.items():
        main[name] = str(run_dir / CONFIG_DIR_NAME / f"{name}{_suffix(templates[name])}")
        write_structured(Path(main[name]), config)
    main_path = run_dir / f"{MAIN_CONFIG_STEM}{_suffix(index_file)}"
    write_structured(main_path, main)
    info = {
        **{key: settings[key] or str(run_dir) for key in PATH_KEYS},
        "resume_from": _resume_from(job.get("previous_run_dir")),
        "seed": job.get("seed"),
        "iteration": job.get("iteration", 0),
        "n_iterations": job.get("n_iterations", 1),
        "run_dir": str(run_dir),
        "main_config": str(main_path),
    }
    write_json_atomic(run_dir / RUN_INFO_NAME, info)
    env = {f"HPOPTIM_{key.upper()}": str(info[key]) for key in PATH_KEYS}
    env["HPOPTIM_RESUME_FROM"] = info["resume_from"] or ""
    argv = [_learner_arg(a, root) for a in settings["command"]]
    settings = {**settings, "output_dir": info["output_dir"]}
    return Prepared([*argv, str(main_path)], settings, env, run_dir)


def _suffix(path: Path) -> str:
    return path.suffix if path.suffix in YAML_SUFFIXES else ".json"


def _learner_arg(arg: str, root: Path) -> str:
    """``{python}`` -> this interpreter; a file relative to the checkout -> its absolute path."""
    if arg == PYTHON_PLACEHOLDER:
        return sys.executable
    if not Path(arg).is_absolute() and (os.sep in arg or arg.endswith(".py")):
        candidate = root / arg
        if candidate.exists():
            return str(candidate.resolve())
    return arg


def _resume_from(previous_run_dir: str | None) -> str | None:
    if not previous_run_dir:
        return None
    previous = Path(previous_run_dir) / RUN_INFO_NAME
    try:
        checkpoint_dir = json.loads(previous.read_text(encoding="utf-8"))["checkpoint_dir"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(
            f"no checkpoint_dir in the previous iteration's {str(previous)!r}: {exc}"
        ) from exc
    return str(checkpoint_dir)


def run_learner(
    argv: list[str], cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Run the learner in ``cwd``, forwarding signals; return its exit code (128+n on signal n)."""
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **dict(env or {})})

    def forward(signum: int, _frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    for name in FORWARDED_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), forward)
    code = proc.wait()
    return 128 - code if code < 0 else code


def report_metric(settings: Mapping[str, Any], metrics_file: Path) -> None:
    """Read the learner's metric and add it to ``metrics.json``; raises MetricError."""
    source = Path(settings["metric_file"]).expanduser()
    if not source.is_absolute():
        source = Path(settings["output_dir"]).expanduser() / source
    value = read_metric(source, settings["metric_key"])
    metrics: dict[str, Any] = {}
    if metrics_file.is_file():
        try:
            loaded = json.loads(metrics_file.read_text(encoding="utf-8"))
            metrics = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            metrics = {}
    metrics[settings["metric_name"]] = value
    write_json_atomic(metrics_file, metrics)


def main(argv: list[str] | None = None) -> int:
    """Run one job: patch, start the learner, report its metric; return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    params_path = os.environ.get(ENV_PARAMS_FILE) or (args[-1] if args else "")
    try:
        document = json.loads(Path(params_path).read_text(encoding="utf-8"))
        job = document["job"]
        prepared = prepare(document, Path.cwd())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _fail(f"cannot read the params file {params_path!r}: {exc}", SETUP_ERROR_EXIT_CODE)
    except LearningError as exc:
        return _fail(str(exc), SETUP_ERROR_EXIT_CODE)
    except ResumeError as exc:
        return _fail(f"cannot resume: {exc}", FAILED_EXIT_CODE)
    command = prepared.argv
    try:
        code = run_learner(command, prepared.run_dir, prepared.env)
    except OSError as exc:
        return _fail(f"learner.command: cannot start {command!r}: {exc}", SETUP_ERROR_EXIT_CODE)
    if code not in (0, RESUME_EXIT_CODE):
        return _fail(f"learner {command!r} exited with code {code}", code)
    metrics_file = Path(job.get("metrics_file") or Path(job["run_dir"]) / METRICS_FILE_NAME)
    try:
        report_metric(prepared.settings, metrics_file)
    except MetricError as exc:
        if code == 0:
            return _fail(f"no metric: {exc}", FAILED_EXIT_CODE)
    if code == 0 and int(job.get("iteration", 0)) + 1 < int(job.get("n_iterations", 1)):
        return RESUME_EXIT_CODE
    return code


def _fail(message: str, code: int) -> int:
    print(f"run_learning.py: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
