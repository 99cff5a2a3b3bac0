"""Which settings of a run are best by a metric, and what the reports say about the run."""

from __future__ import annotations

from typing import Any, Protocol

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.state.history import RunHistory, SettingRecord
from hpoptim.state.provenance import Provenance
from hpoptim.state.setting import SettingState
from hpoptim.state.storage import ResultsLayout


class Ranking(Protocol):
    """What a report ranks by: the metric (None: nothing is ranked), its direction, and
    the run's results directory."""

    layout: ResultsLayout
    metric: str | None
    minimize: bool


def ranked(history: RunHistory, metric: str | None, *, minimize: bool) -> list[SettingRecord]:
    """Completed settings with a mean of ``metric``, best first (none without a metric:
    a run that only collects metrics names no best)."""
    if metric is None:
        return []
    done = [
        s
        for s in history.settings.values()
        if s.state is SettingState.COMPLETE and value_of(s, metric) is not None
    ]
    return sorted(done, key=lambda s: rank_key(s, metric, minimize))


def rank_key(setting: SettingRecord, metric: str, minimize: bool) -> tuple[float, int]:
    value = value_of(setting, metric)
    assert value is not None
    return ((1.0 if minimize else -1.0) * value, setting.setting_id)


def value_of(setting: SettingRecord, metric: str) -> float | None:
    """The setting's mean of ``metric`` over its reruns (the optimised metric's is its
    value; every other metric every successful rerun reported is in its metrics)."""
    assert setting.result is not None
    value = setting.result.metrics.get(metric)
    return None if value is None else float(value)


def reported_metrics(history: RunHistory) -> list[str]:
    """Every metric some completed setting has a mean of, sorted."""
    names = {k for s in history.settings.values() if s.result is not None for k in s.result.metrics}
    return sorted(names)


def checkout_fields(history: RunHistory) -> dict[str, Any]:
    """The commit, whether it was dirty and the image digest, for every CSV row."""
    provenance = Provenance.from_run_info(history.run_info)
    if provenance is None:
        return {"commit": "", "dirty": "", "image_sha256": ""}
    return {
        "commit": provenance.commit or "",
        "dirty": provenance.dirty,
        "image_sha256": provenance.image_sha256 or "",
    }


def best_params(
    history: RunHistory, layout: ResultsLayout, metric: str | None, *, minimize: bool
) -> dict[str, Any] | None:
    """The best setting so far as a JSON-able dict (None if nothing completed, or no
    metric is named)."""
    order = ranked(history, metric, minimize=minimize)
    if not order or metric is None:
        return None
    best = order[0]
    assert best.result is not None
    return {
        "metric": metric,
        "minimize": minimize,
        "value": value_of(best, metric),
        "std": best.result.std if metric == history.lifecycle.metric else None,
        "n_reruns": best.result.n_ok,
        "setting_id": best.setting_id,
        "params": best.params,
        "setting_dir": str(layout.setting_dir(best.setting_id)),
    }


def check_ranking(history: RunHistory, metric: str) -> None:
    """Refuse ranking by a metric no completed setting reported (``--metric``).

    Raises:
        ConfigError: Naming the metrics that were reported.
    """
    reported = reported_metrics(history)
    if metric not in reported:
        names = ", ".join(reported) or "none yet"
        why = f"no completed setting reported {metric!r} (metrics reported: {names})"
        raise ConfigError([ConfigProblem("--metric", why)])
