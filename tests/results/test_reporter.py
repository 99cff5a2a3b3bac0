"""The Reporter keeps best params and best jobs right as settings finish, at a bounded cost."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hpoptim.results import report
from hpoptim.results.ranking import ranked
from hpoptim.results.report import Reporter
from hpoptim.state.history import Lifecycle, RunHistory
from hpoptim.state.storage import ResultsLayout


def _finish(history: RunHistory, sid: int, value: float | None) -> None:
    history.apply({"e": "asked", "sid": sid, "params": {"x": sid}})
    result = {
        "value": value,
        "std": 0.0 if value is not None else None,
        "n_ok": int(value is not None),
        "n_failed": int(value is None),
        "metrics": {} if value is None else {"loss": value},
        "reason": "" if value is not None else "crashed",
    }
    history.apply({"e": "setting_finished", "sid": sid, "result": result})


@pytest.mark.parametrize("minimize", [True, False], ids=["minimize", "maximize"])
@pytest.mark.parametrize("n_best", [0, 1, 3])
def test_best_settings_follow_a_full_ranking_as_settings_finish(
    tmp_path: Path, minimize: bool, n_best: int
) -> None:
    rng = random.Random(n_best)
    history = RunHistory(Lifecycle("loss"))
    layout = ResultsLayout(tmp_path)
    reporter = Reporter(layout, "loss", minimize=minimize, n_best=n_best)
    for sid in range(60):
        # failures, and ties (broken by the lower setting id) among few distinct values
        value = None if rng.random() < 0.2 else float(rng.randint(0, 8))
        _finish(history, sid, value)
        reporter.on_setting_finished(history, history.settings[sid])
        expected = [s.setting_id for s in ranked(history, "loss", minimize=minimize)[:n_best]]
        assert reporter._best_ids == expected, sid
    if n_best:
        best = json.loads(layout.best_params.read_text())
        assert best["setting_id"] == reporter._best_ids[0]


def test_a_resumed_reporter_ranks_what_the_journal_holds(tmp_path: Path) -> None:
    history = RunHistory(Lifecycle("loss"))
    for sid, value in enumerate([5.0, 1.0, None, 3.0]):
        _finish(history, sid, value)
    reporter = Reporter(ResultsLayout(tmp_path), "loss", minimize=True, n_best=2)
    _finish(history, 4, 2.0)
    reporter.on_setting_finished(history, history.settings[4])
    assert reporter._best_ids == [1, 4]


def test_csv_rewrites_wait_a_multiple_of_their_own_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(report.time, "monotonic", lambda: now[0])
    writes: list[float] = []

    def slow_write(self: Reporter, history: RunHistory) -> None:
        writes.append(now[0])
        self._last_csv = now[0] + 1.0  # each rewrite takes 1 s of the clock
        self._csv_cost_s = 1.0

    monkeypatch.setattr(Reporter, "write_csvs", slow_write)
    history = RunHistory(Lifecycle("loss"))
    reporter = Reporter(ResultsLayout(tmp_path), "loss", minimize=True, n_best=0)
    for sid in range(200):
        _finish(history, sid, float(sid))
        reporter.on_setting_finished(history, history.settings[sid])
        now[0] += 0.5
    # 100 s of settings: the first write at once, then one per 1 s + 20 x 1 s
    assert writes[0] == 100.0
    assert [b - a for a, b in zip(writes, writes[1:], strict=False)] == [21.0] * (len(writes) - 1)
    assert len(writes) == 5
