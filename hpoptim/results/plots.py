"""The report's plots, drawn with matplotlib's object API (no pyplot, no display).

Each function takes a :class:`~hpoptim.results.load.RunData` and returns a
:class:`~matplotlib.figure.Figure`, or None when the run has nothing to show yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from hpoptim.results.load import RunData
from hpoptim.space import entry_names

N_BEST = 10
"""Settings drawn in the parallel-coordinates, rerun-spread and iteration plots."""
WIDTH_IN, HEIGHT_IN = 6.4, 3.6


def log_params(config: Mapping[str, Any]) -> set[str]:
    """Names of the parameters sampled on a log scale (drawn on log axes)."""
    return {
        str(p.get("param"))
        for p in config.get("optimized_params") or []
        if isinstance(p, Mapping) and "log" in str(p.get("distribution", "")).lower()
    }


def param_names(run: RunData) -> list[str]:
    """The sampled parameters, as columns of ``run.settings``."""
    names = [n for p in run.config.get("optimized_params") or [] for n in entry_names(p)]
    return [n for n in names if n in run.settings.columns]


def _metric_scale(ax: Any, values: Any) -> None:
    """A log axis for a positive metric spanning more than two orders of magnitude."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) and (v > 0).all() and v.max() / v.min() > 100:
        ax.set_yscale("log")


def _metric(run: RunData) -> str:
    """The metric every plot shows (a run without one draws no plots)."""
    assert run.metric is not None
    return run.metric


def _complete(run: RunData) -> pd.DataFrame:
    done = run.settings[run.settings["status"] == "complete"]
    return done[done[_metric(run)].notna()]


def _finish_order(run: RunData) -> pd.DataFrame:
    """Completed settings in the order they finished, with their end time in seconds."""
    order = pd.Series(range(len(run.history.finished_order)), index=run.history.finished_order)
    done = _complete(run).copy()
    if done.empty:  # e.g. settings asked but no job journaled yet: no job columns
        return done
    done["order"] = done["setting_id"].map(lambda sid: order.get(int(sid), np.nan))
    ends = run.jobs.groupby("setting_id")["end_time"].max()
    start = run.jobs["start_time"].min()
    done["t_s"] = done["setting_id"].map(lambda sid: (ends[sid] - start).total_seconds())
    return done.sort_values("order")


def best_over_time(run: RunData) -> Figure | None:
    """Best value so far over finished settings and over wall time."""
    done = _finish_order(run)
    if done.empty:
        return None
    values = done[_metric(run)].to_numpy(dtype=float)
    best = np.minimum.accumulate(values) if run.minimize else np.maximum.accumulate(values)
    t_s = done["t_s"].to_numpy(dtype=float)
    minutes = np.nanmax(t_s) > 120
    fig = Figure(figsize=(WIDTH_IN * 1.5, HEIGHT_IN))
    left, right = fig.subplots(1, 2)
    for ax, x, label in (
        (left, np.arange(1, len(values) + 1), "settings completed"),
        (right, t_s / 60 if minutes else t_s, f"wall time ({'min' if minutes else 's'})"),
    ):
        ax.scatter(x, values, s=8, alpha=0.4, color="tab:gray", label="setting")
        ax.step(x, best, where="post", color="tab:blue", label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(_metric(run))
        _metric_scale(ax, values)
    left.legend(loc="best", fontsize="small")
    fig.suptitle(f"best {_metric(run)} so far")
    fig.tight_layout()
    return fig


def params_vs_metric(run: RunData) -> Figure | None:
    """Each parameter against the metric; log axes for log-scale parameters."""
    done = _complete(run)
    names = [n for n in param_names(run) if pd.api.types.is_numeric_dtype(done[n])]
    if done.empty or not names:
        return None
    logs = log_params(run.config)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(WIDTH_IN / 2 * cols + 1, HEIGHT_IN * rows * 0.9))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, name in zip(axes, names, strict=False):
        ax.scatter(done[name].astype(float), done[_metric(run)], s=10, alpha=0.6)
        if name in logs:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(_metric(run))
        _metric_scale(ax, done[_metric(run)])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _best(run: RunData, n: int = N_BEST) -> pd.DataFrame:
    return _complete(run).sort_values(_metric(run), ascending=run.minimize).head(n)


def parallel_coordinates(run: RunData) -> Figure | None:
    """The best settings' parameters and metric, each axis scaled to [0, 1]."""
    best = _best(run)
    names = [n for n in param_names(run) if pd.api.types.is_numeric_dtype(best[n])]
    if len(best) < 2 or not names:
        return None
    logs = log_params(run.config)
    axes_names = [*names, _metric(run)]
    scaled = []
    for name in axes_names:
        col = best[name].astype(float).to_numpy()
        if name in logs and (col > 0).all():
            col = np.log10(col)
        lo, hi = np.nanmin(col), np.nanmax(col)
        scaled.append((col - lo) / (hi - lo) if hi > lo else np.full_like(col, 0.5))
    data = np.vstack(scaled).T
    fig = Figure(figsize=(WIDTH_IN * 1.2, HEIGHT_IN))
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    for rank, row in enumerate(data, start=1):
        colour = cmap((rank - 1) / max(1, len(data) - 1) * 0.9)
        label = f"#{rank}" if rank <= 3 else None
        ax.plot(range(len(axes_names)), row, color=colour, alpha=0.85, lw=1.4, label=label)
    for i in range(len(axes_names)):
        ax.axvline(i, color="#999", lw=0.8)
    ax.set_xticks(range(len(axes_names)), axes_names, rotation=20)
    ax.set_yticks([0, 1], ["min", "max"])
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"the {len(best)} best settings (axes scaled to their range)")
    fig.tight_layout()
    return fig


def _rerun_values(run: RunData) -> pd.DataFrame:
    """The metric of each rerun: its last iteration's value."""
    it = run.iterations
    if it.empty or _metric(run) not in it.columns:
        return it
    last = it.sort_values("iteration").groupby(["setting_id", "rerun"]).tail(1)
    return last[["setting_id", "rerun", _metric(run)]]


def rerun_spread(run: RunData) -> Figure | None:
    """The metric of each rerun of the best settings (their spread over seeds)."""
    best = _best(run)
    values = _rerun_values(run)
    if best.empty or values.empty or values.groupby("setting_id").size().max() < 2:
        return None
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    ax = fig.subplots()
    ids = [int(s) for s in best["setting_id"]]
    groups = [values[values["setting_id"] == sid][_metric(run)].to_numpy(float) for sid in ids]
    ax.boxplot(groups, showmeans=True)
    for i, g in enumerate(groups, start=1):
        ax.scatter(np.full(len(g), i), g, s=10, color="tab:blue", alpha=0.6)
    ax.set_xticks(range(1, len(ids) + 1), [str(s) for s in ids])
    ax.set_xlabel("setting (best first)")
    ax.set_ylabel(_metric(run))
    ax.set_title("spread over reruns")
    fig.tight_layout()
    return fig


def iteration_curves(run: RunData) -> Figure | None:
    """The metric at the end of each chained training iteration, per best setting."""
    it = run.iterations
    if it.empty or _metric(run) not in it.columns or int(it["iteration"].max()) < 1:
        return None
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    ax = fig.subplots()
    for sid in [int(s) for s in _best(run)["setting_id"]]:
        rows = it[it["setting_id"] == sid]
        mean = rows.groupby("iteration")[_metric(run)].mean()
        ax.plot(mean.index.astype(int), mean.to_numpy(float), marker="o", ms=3, label=str(sid))
    ax.set_xlabel("training iteration")
    ax.set_ylabel(f"{_metric(run)} (mean over reruns)")
    ax.legend(title="setting", fontsize="small", ncols=2)
    ax.set_title("intermediate values across chained iterations")
    fig.tight_layout()
    return fig


PLOTS: dict[str, tuple[str, Callable[[RunData], Figure | None]]] = {
    "best_over_time": ("Best value so far", best_over_time),
    "params_vs_metric": ("Each parameter against the metric", params_vs_metric),
    "parallel_coordinates": ("The best settings", parallel_coordinates),
    "rerun_spread": ("Spread over reruns", rerun_spread),
    "iteration_curves": ("Chained training iterations", iteration_curves),
}
"""File stem → (title, drawing function), in the report's order."""
