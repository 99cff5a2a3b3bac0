"""cluster_utils' job-script API on top of :mod:`hpoptim.job`.

Job side, standard library only, and like :mod:`hpoptim.job` it imports only
:mod:`hpoptim.contract` (the same file contract: the params file named by
``HPOPTIM_PARAMS_FILE`` or the last argument, ``metrics.json`` written atomically,
exit code 3). A job script written for cluster_utils runs under
hpoptim after changing its import line::

    from cluster_utils import initialize_job, finalize_job, exit_for_resume  # before
    from hpoptim.compat import initialize_job, finalize_job, exit_for_resume  # after

What it gives, as cluster_utils does:

* :func:`initialize_job` returns the parameters as a read-only :class:`AttributeDict`
  (``params.optimizer.lr``), nested by the dotted names, plus ``working_dir`` and
  ``id``. It creates ``working_dir`` and writes ``settings.json`` into it.
* ``working_dir`` is ``<setting dir>/working_dir_<rerun>``: one directory per
  (setting, rerun), the same for every process of that run, so a job that saved a
  checkpoint there and called :func:`exit_for_resume` finds it when it is started
  again. ``id`` is a number unique within the run: ``setting_id * n_reruns + rerun``.
* :func:`finalize_job` adds ``time_elapsed`` (unless present), writes
  ``metrics.csv`` and ``param_choice.csv`` into ``working_dir`` and reports the
  numeric metrics to hpoptim (``metrics.json`` of the run directory).
* :func:`exit_for_resume` exits with code 3: hpoptim starts the job again with the
  same ``working_dir``. With ``training_iterations`` set, that is the next chained
  iteration; without it, the job is restarted until it exits 0 or another code, at
  most ``MAX_OPEN_RESUMES`` (100) processes per run (``hpoptim/state/history.py``).
* :func:`announce_early_results` reports intermediate metrics (they count if the
  job ends without reporting others); :func:`announce_fraction_finished` is
  accepted and ignored; :func:`cluster_main` is the decorator.
* The old names :func:`read_params_from_cmdline` and :func:`save_metrics_params`
  work and warn (``FutureWarning``) as in cluster_utils.
* smart_settings' job side, as cluster_utils' :func:`initialize_job` loads the
  parameters: ``__import__`` (the config's ``fixed_params.__import_promise__``) merges
  the named JSON files (YAML too where PyYAML is installed; paths relative to the
  directory the job runs in) under the parameters, and with ``dynamic`` (the default)
  each ``"{...}"`` string is evaluated as an f-string over the parameters and the
  environment (``{fn_args.u < 0.2}``, ``{$USER}``), its result read as a Python literal
  where it is one.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Dict, NoReturn  # noqa: UP035 - see AttributeDict

from hpoptim.contract import (
    ENV_METRICS_FILE,
    JOB_ENV_FILE_NAME,
    METRICS_FILE_NAME,
    RESUME_EXIT_CODE,
    JobContractError,
    job_environment,
    load_params,
    params_file_path,
    write_json_atomic,
)

__all__ = [
    "AttributeDict",
    "JobContractError",
    "announce_early_results",
    "announce_fraction_finished",
    "cluster_main",
    "exit_for_resume",
    "finalize_job",
    "initialize_job",
    "read_params_from_cmdline",
    "save_metrics_params",
]

SETTINGS_FILE_NAME = "settings.json"
METRIC_FILE_NAME = "metrics.csv"
PARAM_FILE_NAME = "param_choice.csv"
RESERVED_PARAMS = ("working_dir", "id")

_start_time: float | None = None
_metrics_file: Path | None = None
_reported: dict[str, float] = {}
_env_written: set[Path] = set()  # directories holding this process's job_env.json


class AttributeDict(Dict[str, Any]):  # noqa: UP006 - images may run Python 3.8
    """A read-only dict whose keys are also attributes, nested dicts included."""

    def __init__(self, data: Mapping[str, Any] = ()) -> None:  # type: ignore[assignment]
        super().__init__({k: _wrap(v) for k, v in dict(data).items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"no parameter {name!r}; known: {', '.join(sorted(self)) or 'none'}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"parameters are read-only (as in cluster_utils): cannot set {name!r}")

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError(f"parameters are read-only (as in cluster_utils): cannot set {key!r}")

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"parameters are read-only (as in cluster_utils): cannot delete {key!r}")

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable copy (nested dicts included)."""
        return {k: v.to_dict() if isinstance(v, AttributeDict) else v for k, v in self.items()}


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return AttributeDict(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def initialize_job(
    cmd_line: list[str] | None = None, verbose: bool = True, dynamic: bool = True
) -> AttributeDict:
    """Read this job's parameters; create its ``working_dir`` (see the module docstring).

    Args:
        cmd_line: The job's argv (default ``sys.argv``); its last element, or the
            ``HPOPTIM_PARAMS_FILE`` variable, names the params file.
        verbose: Print the parameters, as cluster_utils does.
        dynamic: Evaluate smart_settings' ``"{...}"`` expressions in the parameters.

    Raises:
        JobContractError: Not started by hpoptim, or the params file is unreadable.
        ValueError: The parameters use a name cluster_utils reserves (``working_dir``, ``id``).
    """
    global _start_time, _metrics_file
    data = _load_params(sys.argv if cmd_line is None else cmd_line)
    params = _unpack_imports(dict(data["params"]), [])
    if dynamic:
        params = _evaluated(params, _namespace(params))
    reserved = [name for name in RESERVED_PARAMS if name in params]
    if reserved:
        raise ValueError(
            f"parameter(s) {', '.join(reserved)} are set by hpoptim for cluster_utils job "
            "scripts; rename them in the config"
        )
    context = data["job"]
    metrics = os.environ.get(ENV_METRICS_FILE) or context.get("metrics_file")
    _metrics_file = Path(metrics) if metrics else Path(context["run_dir"]) / METRICS_FILE_NAME
    rerun = int(context.get("rerun", 0))
    setting_dir = Path(context.get("setting_dir") or Path(context["run_dir"]).parent)
    params["working_dir"] = str(setting_dir / f"working_dir_{rerun}")
    params["id"] = int(context["setting_id"]) * int(context.get("n_reruns", 1)) + rerun
    result = AttributeDict(params)
    os.makedirs(result.working_dir, exist_ok=True)
    settings_file = Path(result.working_dir) / SETTINGS_FILE_NAME
    settings_file.write_text(json.dumps(result, sort_keys=True, indent=4), encoding="utf-8")
    if verbose:
        print(json.dumps(result, sort_keys=True, indent=1), flush=True)
    _start_time = time.time()
    return result


def finalize_job(metrics: MutableMapping[str, Any], params: Mapping[str, Any]) -> None:
    """Save metrics and parameters in ``working_dir`` and report the metrics to hpoptim.

    Args:
        metrics: Metric name to value; numpy/torch scalars are converted to
            floats. ``time_elapsed`` is added unless present.
        params: The parameters :func:`initialize_job` returned.
    """
    working_dir = Path(params["working_dir"])
    _write_csv_row(working_dir / PARAM_FILE_NAME, dict(_flatten(params)))
    if "time_elapsed" not in metrics and _start_time is not None:
        metrics["time_elapsed"] = time.time() - _start_time
    for key, value in metrics.items():
        metrics[key] = _plain(value)
    _write_csv_row(working_dir / METRIC_FILE_NAME, dict(metrics))
    _report(_numeric(metrics))


def announce_early_results(metrics: Mapping[str, Any]) -> None:
    """Report intermediate metrics; they count if the job reports no others."""
    _report(_numeric({k: _plain(v) for k, v in metrics.items()}))


def announce_fraction_finished(fraction_finished: float) -> None:
    """Accepted for compatibility; hpoptim does not use progress estimates."""
    del fraction_finished


def exit_for_resume() -> NoReturn:
    """Exit with code 3: hpoptim starts this job again with the same ``working_dir``."""
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(RESUME_EXIT_CODE)


def read_params_from_cmdline(
    cmd_line: list[str] | None = None,
    make_immutable: bool = True,
    verbose: bool = True,
    dynamic: bool = True,
    save_params: bool = True,
) -> AttributeDict:
    """Old name of :func:`initialize_job` (deprecated in cluster_utils too)."""
    warnings.warn(
        "`read_params_from_cmdline` is deprecated! Use `initialize_job` instead.",
        FutureWarning,
        stacklevel=2,
    )
    del make_immutable, save_params
    return initialize_job(cmd_line, verbose=verbose, dynamic=dynamic)


def save_metrics_params(metrics: MutableMapping[str, Any], params: Mapping[str, Any]) -> None:
    """Old name of :func:`finalize_job` (deprecated in cluster_utils too)."""
    warnings.warn(
        "`save_metrics_params` is deprecated! Use `finalize_job` instead.",
        FutureWarning,
        stacklevel=2,
    )
    finalize_job(metrics, params)


def cluster_main(
    main_func: Callable[..., MutableMapping[str, Any]] | None = None, **init_args: Any
) -> Any:
    """Decorator: call ``main_func(**params)`` between initialize_job and finalize_job."""
    if main_func is None:
        return functools.partial(cluster_main, **init_args)
    func = main_func

    @functools.wraps(func)
    def wrapper() -> None:
        params = initialize_job(**init_args)
        metrics = func(working_dir=params.working_dir, id=params.id, **_without_reserved(params))
        finalize_job(metrics, params)

    return wrapper


def _load_params(argv: list[str]) -> dict[str, Any]:
    return load_params(params_file_path(argv[1:], os.environ))


def _unpack_imports(params: dict[str, Any], seen: list[Path]) -> dict[str, Any]:
    """smart_settings' ``__import__``: the named files' settings under ``params``."""
    names = params.pop("__import__", None)
    if names is None:
        return params
    merged: dict[str, Any] = {}
    for name in [names] if isinstance(names, str) else list(names):
        path = Path(str(name)).expanduser().resolve()
        if path in seen:
            raise ValueError(f"__import__ of {path} is cyclic")
        merged = _merge(merged, _unpack_imports(_read_settings(path), [*seen, path]))
    return _merge(merged, params)


def _read_settings(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # type: ignore[import-untyped,unused-ignore]  # only where PyYAML is

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a mapping of settings")
    return data


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _namespace(params: Mapping[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = {f"ENV_{k}": v for k, v in os.environ.items()}
    return {**env, **AttributeDict(params)}


def _evaluated(value: Any, namespace: Mapping[str, Any]) -> Any:
    """smart_settings' dynamic evaluation of every string in ``value``."""
    if isinstance(value, Mapping):
        return {k: _evaluated(v, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [_evaluated(v, namespace) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    replaced = re.sub(r"\{[^{}]*\}", lambda m: m.group(0).replace("$", "ENV_"), value)
    try:
        formatted = eval('f"' + replaced + '"', dict(namespace))  # smart_settings' rule
    except Exception:  # as smart_settings: an expression that fails is kept as written
        return value
    if formatted == value:
        return value
    try:
        return eval(formatted, {"__builtins__": None})
    except Exception:  # not a literal: the string as formatted
        return formatted


def _report(metrics: Mapping[str, float]) -> None:
    """Add ``metrics`` to the run directory's metrics.json, atomically."""
    if _metrics_file is None:
        raise JobContractError("call initialize_job() before reporting metrics")
    _reported.update(metrics)
    write_json_atomic(_metrics_file, _reported)
    if _metrics_file.parent not in _env_written:  # as hpoptim.job does, for the provenance
        _env_written.add(_metrics_file.parent)
        write_json_atomic(_metrics_file.with_name(JOB_ENV_FILE_NAME), job_environment())


def _without_reserved(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in RESERVED_PARAMS}


def _plain(value: Any) -> Any:
    """numpy/torch scalars (anything with ``.item()``) as Python numbers."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (int, float, str)):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _flatten(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _write_csv_row(path: Path, row: Mapping[str, Any]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
