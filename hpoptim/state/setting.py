"""Plain data about settings (trials) and their runs."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SettingState(enum.Enum):
    """Where a parameter setting is in its life."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"  # stopped early by the early_stopping rule; never a failure

    @property
    def is_finished(self) -> bool:
        """True once the setting has a final outcome."""
        return self is not SettingState.RUNNING


@dataclass(frozen=True)
class SettingResult:
    """The aggregated outcome of one setting over its reruns.

    Attributes:
        value: Mean of the optimised metric over the successful reruns (None: failed, or
            the run names no metric to optimise).
        std: Standard deviation of the metric over those reruns (0.0 for one rerun).
        n_ok: Number of reruns that ended with the metric.
        n_failed: Number of reruns that failed after all their attempts.
        metrics: Mean of every numeric metric the reruns reported.
        reason: Why the setting failed (empty when it did not).
        stopped_at: The last iteration (0-based) a setting stopped early ran; its
            ``value`` is the mean over its reruns there (None: not stopped).
    """

    value: float | None
    std: float | None
    n_ok: int
    n_failed: int
    metrics: Mapping[str, float]
    reason: str = ""
    stopped_at: int | None = None

    @property
    def state(self) -> SettingState:
        if self.stopped_at is not None:
            return SettingState.STOPPED
        return SettingState.COMPLETE if self.n_ok > 0 else SettingState.FAILED

    @classmethod
    def aggregate(
        cls,
        metric: str | None,
        rerun_metrics: Sequence[Mapping[str, float]],
        n_failed: int,
        reason: str,
    ) -> SettingResult:
        """Average the reruns that reported ``metric``; the others count as failed.

        Without a metric (a run that only collects metrics) a rerun that reported any
        metric counts, and ``value`` and ``std`` are None.
        """
        if metric is None:
            ok = [m for m in rerun_metrics if any(_finite(v) for v in m.values())]
        else:
            ok = [m for m in rerun_metrics if _finite(m.get(metric))]
        n_failed += len(rerun_metrics) - len(ok)
        if not ok:
            why = f"no rerun reported {metric!r}" if metric else "no rerun reported a metric"
            return cls(None, None, 0, n_failed, {}, reason or why)
        names = sorted({k for m in ok for k in m if all(_finite(o.get(k)) for o in ok)})
        means = {k: math.fsum(float(m[k]) for m in ok) / len(ok) for k in names}
        if metric is None:
            return cls(None, None, len(ok), n_failed, means, reason if n_failed else "")
        values = [float(m[metric]) for m in ok]
        mean = means[metric]
        var = math.fsum((v - mean) ** 2 for v in values) / len(values)
        return cls(mean, math.sqrt(var), len(ok), n_failed, means, reason if n_failed else "")

    def to_dict(self) -> dict[str, Any]:
        data = {
            "value": self.value,
            "std": self.std,
            "n_ok": self.n_ok,
            "n_failed": self.n_failed,
            "metrics": dict(self.metrics),
            "reason": self.reason,
        }
        if self.stopped_at is not None:
            data["stopped_at"] = self.stopped_at
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SettingResult:
        return cls(
            data["value"],
            data["std"],
            int(data["n_ok"]),
            int(data["n_failed"]),
            dict(data["metrics"]),
            str(data.get("reason", "")),
            data.get("stopped_at"),
        )


def _finite(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def is_better(value: float, than: float | None, *, minimize: bool) -> bool:
    """True if ``value`` beats ``than`` (None is beaten by anything)."""
    if than is None:
        return True
    return value < than if minimize else value > than
