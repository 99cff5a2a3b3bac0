"""Turn a run's history into files people read: CSVs, best params, best jobs, a report.

Everything here reads the history (folded from the journal) and writes derived
files; nothing here changes the journal, so ``hpoptim report`` can rebuild them
from the journal at any time.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hpoptim.results.markdown import markdown_report
from hpoptim.results.ranking import (
    best_params,
    checkout_fields,
    rank_key,
    ranked,
    value_of,
)
from hpoptim.results.redact import redact
from hpoptim.state.history import JobRecord, RunHistory, SettingRecord
from hpoptim.state.setting import SettingState
from hpoptim.state.storage import ResultsLayout, write_json_atomic, write_text_atomic


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> None:
    columns = list(first)
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    # "\r\n" (RFC 4180) also makes the writer quote a cell holding a lone "\r", which
    # readers take for a line break: with "\n" such a cell would split its row.
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())


def _add_columns(row: dict[str, Any], values: Mapping[str, Any], prefix: str) -> None:
    """Add ``values`` to ``row``; a name the row already has gets ``prefix`` instead of
    overwriting that column (a parameter called ``status``, a metric called like a
    parameter)."""
    for name, value in values.items():
        key = name
        while key in row:
            key = prefix + key
        row[key] = value


def job_rows(history: RunHistory) -> list[dict[str, Any]]:
    """One row per job (process): params, metrics, state, exit code, times, dir."""
    extra = checkout_fields(history)
    rows = []
    for rec in history.jobs.values():
        params = history.settings[rec.setting_id].params
        rows.append(_job_row(rec, params, extra))
    return rows


def _job_row(rec: JobRecord, params: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    duration = None if rec.ended_at is None else rec.ended_at - rec.submitted_at
    row: dict[str, Any] = {
        "job_id": rec.job_id,
        "setting_id": rec.setting_id,
        "rerun": rec.rerun,
        "iteration": rec.iteration,
        "attempt": rec.attempt,
        "status": rec.state,
        "exit_code": rec.exit_code,
        "signal": rec.signal,
        "reason": redact(rec.reason),
        "start_time": _iso(rec.submitted_at),
        "end_time": _iso(rec.ended_at),
        "duration_s": duration,
        "job_dir": rec.run_dir,
        "native_id": rec.native_id,
        **extra,
    }
    _add_columns(row, params, "param_")
    _add_columns(row, rec.metrics, "metric_")
    return row


def setting_rows(history: RunHistory, metric: str | None) -> list[dict[str, Any]]:
    """One row per setting: params, mean/std/count of the metric (without a metric to
    optimise, of none in particular), the mean of every other metric, outcome."""
    extra = checkout_fields(history)
    rows = []
    for setting in history.settings.values():
        result = setting.result
        iterations = [r.iteration + 1 for r in setting.reruns]
        row: dict[str, Any] = {"setting_id": setting.setting_id, "status": setting.state.value}
        if metric is not None:
            row[metric] = None if result is None else result.metrics.get(metric)
            # the std over reruns is known for the run's optimised metric only
            known = result is not None and metric == history.lifecycle.metric
            row[f"{metric}_std"] = result.std if known and result is not None else None
        row |= {
            "n_ok": None if result is None else result.n_ok,
            "n_failed": None if result is None else result.n_failed,
            "n_iterations": max(iterations),
            "stopped_at_iteration": setting.stopped_at,
            "n_attempts": sum(r.n_attempts for r in setting.reruns),
            "reason": "" if result is None else redact(result.reason),
            **extra,
        }
        _add_columns(row, setting.params, "param_")
        if result is not None:  # the optimised metric's mean is in its column already
            others = {k: v for k, v in result.metrics.items() if k != metric}
            _add_columns(row, others, "metric_")
        rows.append(row)
    return rows


def _link_or_copy(source: str, dest: str) -> None:
    """Hard-link ``source`` to ``dest``; copy it where the file system cannot link."""
    try:
        os.link(source, dest, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, dest, follow_symlinks=False)


def refresh_best_jobs(
    history: RunHistory, layout: ResultsLayout, n_best: int, metric: str, *, minimize: bool
) -> list[int]:
    """Make ``best_jobs/`` mirror the ``n_best`` best settings' directories.

    Files are hard links to the job directories' files (no extra disk space), or
    copies where the file system cannot link (another device, no hard links)."""
    keep = [s.setting_id for s in ranked(history, metric, minimize=minimize)[:n_best]]
    target = layout.best_jobs_dir
    target.mkdir(parents=True, exist_ok=True)
    wanted = {f"setting_{sid}" for sid in keep}
    for child in target.iterdir():
        if child.is_dir() and child.name not in wanted:
            shutil.rmtree(child)
    for sid in keep:
        dest = target / f"setting_{sid}"
        source = layout.setting_dir(sid)
        if not dest.exists() and source.exists():
            tmp = target / f".setting_{sid}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp, symlinks=True, copy_function=_link_or_copy)
            tmp.rename(dest)
    write_json_atomic(
        target / "ranking.json", [{"rank": i + 1, "setting_id": sid} for i, sid in enumerate(keep)]
    )
    return keep


class Reporter:
    """Keeps the derived files up to date as settings finish (CSV writes throttled)."""

    def __init__(
        self,
        layout: ResultsLayout,
        metric: str | None,
        *,
        minimize: bool,
        n_best: int,
        csv_interval_s: float = 10.0,
        csv_cost_factor: float = 20.0,
    ) -> None:
        self.layout = layout
        self.metric = metric
        self.minimize = minimize
        self.n_best = n_best
        self.csv_interval_s = csv_interval_s
        self.csv_cost_factor = csv_cost_factor
        self._last_csv = 0.0
        self._csv_cost_s = 0.0
        self._best_ids: list[int] = []
        self._top: list[tuple[tuple[float, int], int]] | None = None  # (rank key, id), best first

    def on_setting_finished(self, history: RunHistory, setting: SettingRecord) -> None:
        """Refresh best params/jobs when they change, CSVs at most every interval.

        The best settings are kept as they finish (no sort of the whole run per
        setting), and a CSV rewrite waits at least ``csv_cost_factor`` times the
        last one's duration: both CSVs grow with the run, so rewriting them every
        interval would make a long run quadratic.
        """
        top = [sid for _, sid in self._update_top(history, setting)]
        if top != self._best_ids:
            self._best_ids = top
            self._write_best(history)
        wait_s = max(self.csv_interval_s, self.csv_cost_factor * self._csv_cost_s)
        if time.monotonic() - self._last_csv >= wait_s:
            self.write_csvs(history)

    def _update_top(
        self, history: RunHistory, setting: SettingRecord
    ) -> list[tuple[tuple[float, int], int]]:
        """The ``n_best`` best completed settings, with ``setting`` just finished."""
        metric = self.metric
        if metric is None:  # nothing is ranked
            return []
        if self._top is None:  # first call of this driver: rank what the journal holds
            done = ranked(history, metric, minimize=self.minimize)[: self.n_best]
            self._top = [(rank_key(s, metric, self.minimize), s.setting_id) for s in done]
        elif (
            setting.state is SettingState.COMPLETE
            and value_of(setting, metric) is not None
            and self.n_best > 0
        ):
            bisect.insort(self._top, (rank_key(setting, metric, self.minimize), setting.setting_id))
            del self._top[self.n_best :]
        return self._top

    def _write_best(self, history: RunHistory) -> None:
        best = best_params(history, self.layout, self.metric, minimize=self.minimize)
        if best is not None:
            write_json_atomic(self.layout.best_params, best)
        if self.n_best > 0 and self.metric is not None:
            refresh_best_jobs(
                history, self.layout, self.n_best, self.metric, minimize=self.minimize
            )

    def write_csvs(self, history: RunHistory) -> None:
        start = time.monotonic()
        _write_csv(self.layout.jobs_csv, job_rows(history), ["job_id", "setting_id"])
        _write_csv(
            self.layout.settings_csv, setting_rows(history, self.metric), ["setting_id", "status"]
        )
        self._last_csv = time.monotonic()
        self._csv_cost_s = self._last_csv - start

    def write_all(self, history: RunHistory) -> None:
        """Write every derived file now (end of run, ``hpoptim report``)."""
        self.write_csvs(history)
        self._write_best(history)
        write_text_atomic(self.layout.report_md, markdown_report(history, self))
