"""A run's results as pandas DataFrames, read from its journal: :func:`load_run`.

Reading takes no lock and writes nothing, so it works on a run whose driver is
still running (it sees the events journaled so far; a torn last line is skipped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hpoptim.errors import StorageError
from hpoptim.jobspec import JobState
from hpoptim.results.report import job_rows, ranked, setting_rows
from hpoptim.state.history import Lifecycle, RunHistory, load_history
from hpoptim.state.storage import ResultsLayout, open_regular

JOB_INTS = ("setting_id", "rerun", "iteration", "attempt", "exit_code", "signal")
SETTING_INTS = (
    "setting_id",
    "n_ok",
    "n_failed",
    "n_iterations",
    "stopped_at_iteration",
    "n_attempts",
)
TIMES = ("start_time", "end_time")
STRINGS = ("job_id", "status", "reason", "job_dir", "native_id", "commit", "image_sha256")
_SUCCESS = (JobState.COMPLETED.value, JobState.RESUME.value)


@dataclass(frozen=True)
class RunData:
    """What a run has produced so far.

    Attributes:
        root: The run's results directory.
        config: The resolved config the run was started with (``config.json``).
        settings: One row per setting: ``setting_id``, ``status``, the metric's mean
            and ``<metric>_std`` over reruns, ``n_ok``, ``n_failed``, ``n_iterations``,
            ``stopped_at_iteration`` (settings stopped early: the last iteration they
            ran, 0-based), ``n_attempts``, ``reason``, the parameters and the other metrics' means.
        jobs: One row per job (process): ids, ``status``, ``exit_code``, ``signal``,
            ``reason``, ``start_time``/``end_time`` (UTC datetimes), ``duration_s``,
            ``job_dir``, ``native_id``, the parameters and the job's metrics.
        iterations: The metrics each rerun reported at the end of each training
            iteration (one row per successful job): ``setting_id``, ``rerun``,
            ``iteration``, ``end_time`` and the metrics.
        metric: The optimised metric.
        minimize: Whether lower values are better.
        history: The run state folded from the journal.
    """

    root: Path
    config: dict[str, Any]
    settings: pd.DataFrame
    jobs: pd.DataFrame
    iterations: pd.DataFrame
    metric: str
    minimize: bool
    history: RunHistory

    @property
    def best(self) -> pd.Series | None:
        """The best completed setting's row of :attr:`settings` (None if none completed)."""
        order = ranked(self.history, minimize=self.minimize)
        if not order:
            return None
        rows = self.settings[self.settings["setting_id"] == order[0].setting_id]
        return rows.iloc[0]


def load_run(root: str | Path) -> RunData:
    """Read a run's results directory into DataFrames, without locking or writing.

    Args:
        root: ``RESULTS_DIR/optimization_procedure_name`` of a run.

    Raises:
        StorageError: The directory holds no run, or its config or journal is unreadable.

    Example:
        >>> run = hpoptim.load_run("results/rosenbrock")  # doctest: +SKIP
        >>> run.settings.sort_values("loss").head()  # doctest: +SKIP
    """
    layout = ResultsLayout(Path(root).resolve())
    config = read_saved_config(layout)
    history = fold_journal(layout, config)
    metric = str(config["metric_to_optimize"])
    return RunData(
        root=layout.root,
        config=config,
        settings=settings_frame(setting_rows(history, metric)),
        jobs=jobs_frame(job_rows(history)),
        iterations=iterations_frame(history),
        metric=metric,
        minimize=bool(config.get("minimize", True)),
        history=history,
    )


def read_saved_config(layout: ResultsLayout) -> dict[str, Any]:
    """The run's ``config.json`` as a dict.

    Raises:
        StorageError: It is missing, unreadable or not a JSON object.
    """
    path = layout.config_file
    try:
        with open_regular(path) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise StorageError(f"{layout.root} holds no hpoptim run (no config.json)", path) from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read the saved config {path}: {exc}", path) from None
    if not isinstance(data, dict) or "metric_to_optimize" not in data:
        raise StorageError(f"{path} is not an hpoptim config", path)
    return data


def lifecycle_of(config: Mapping[str, Any]) -> Lifecycle:
    """The lifecycle rules recorded in a saved config."""
    return Lifecycle(
        metric=str(config["metric_to_optimize"]),
        n_reruns=int(config.get("n_reruns", 1)),
        max_attempts=int(config.get("max_attempts", 3)),
        training_iterations=int(config.get("training_iterations", 1)),
        judge_iterations=_early_stopping_method(config) not in (None, "none"),
    )


def _early_stopping_method(config: Mapping[str, Any]) -> Any:
    section = config.get("early_stopping")
    return section.get("method") if isinstance(section, Mapping) else None


def fold_journal(layout: ResultsLayout, config: Mapping[str, Any]) -> RunHistory:
    """Replay the journal (read-only) into a :class:`RunHistory`, checking each event.

    Raises:
        StorageError: A journal line before the last is damaged (named in the message).
    """
    return load_history(layout.journal, lifecycle_of(config))[0]


def _frame(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> pd.DataFrame:
    columns = list(first)
    for row in rows:
        columns += [k for k in row if k not in columns]
    return pd.DataFrame.from_records(list(rows), columns=columns)


def _typed(frame: pd.DataFrame, ints: Sequence[str]) -> pd.DataFrame:
    for name in frame.columns:
        if name in ints:
            frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
        elif name in TIMES:
            frame[name] = pd.to_datetime(frame[name].where(frame[name] != "", None), utc=True)
        elif name in STRINGS:
            frame[name] = frame[name].astype("string")
        elif name == "dirty":
            frame[name] = pd.array([None if v == "" else v for v in frame[name]], "boolean")
        else:
            frame[name] = _param_or_metric(frame[name])
    return frame


def _param_or_metric(column: pd.Series) -> pd.Series:
    """Integers (with gaps) as Int64, numbers as float, anything else as it is."""
    values = [v for v in column.tolist() if v is not None and v == v]
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pd.Series(pd.array(column.tolist(), dtype="Int64"), index=column.index)
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return column.astype("float64")
    return column


def jobs_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """:attr:`RunData.jobs` from :func:`hpoptim.results.report.job_rows`."""
    return _typed(_frame(rows, ("job_id", *JOB_INTS, "status")), JOB_INTS)


def settings_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """:attr:`RunData.settings` from :func:`hpoptim.results.report.setting_rows`."""
    return _typed(_frame(rows, ("setting_id", "status")), SETTING_INTS)


def iterations_frame(history: RunHistory) -> pd.DataFrame:
    """The metrics of each successful job, one row per (setting, rerun, iteration)."""
    names = sorted({m for rec in history.jobs.values() for m in rec.metrics})
    rows = [
        {
            "setting_id": rec.setting_id,
            "rerun": rec.rerun,
            "iteration": rec.iteration,
            "end_time": rec.ended_at,
            **{m: rec.metrics.get(m) for m in names},
        }
        for rec in history.jobs.values()
        if rec.state in _SUCCESS and rec.metrics
    ]
    frame = pd.DataFrame.from_records(
        rows, columns=["setting_id", "rerun", "iteration", "end_time", *names]
    )
    for name in ("setting_id", "rerun", "iteration"):
        frame[name] = frame[name].astype("Int64")
    frame["end_time"] = pd.to_datetime(frame["end_time"], unit="s", utc=True)
    for name in names:
        frame[name] = frame[name].astype("float64")
    return frame
