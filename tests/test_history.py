from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import StorageError
from hpoptim.state.events import InvalidEventError
from hpoptim.state.history import (
    MAX_OPEN_RESUMES,
    JournalRepair,
    Lifecycle,
    RunHistory,
    load_events,
    repair_journal,
)
from hpoptim.state.setting import SettingResult, SettingState


def _submitted(job: str, sid: int, rerun: int, it: int, att: int, t: float = 0.0) -> dict[str, Any]:
    return {
        "e": "submitted",
        "job": job,
        "sid": sid,
        "rerun": rerun,
        "it": it,
        "att": att,
        "dir": f"/r/{sid}/run_{rerun}.{it}-{att}",
        "t": t,
    }


def _ended(
    job: str,
    state: str,
    metrics: dict[str, float] | None = None,
    problem: str = "",
    exit_code: int | None = 0,
    t: float = 1.0,
) -> dict[str, Any]:
    return {
        "e": "ended",
        "job": job,
        "state": state,
        "exit_code": exit_code,
        "signal": None,
        "reason": state,
        "metrics": metrics or {},
        "problem": problem,
        "t": t,
    }


def _history(**kw: Any) -> RunHistory:
    h = RunHistory(Lifecycle("loss", **kw))
    h.apply({"e": "asked", "sid": 0, "params": {"x": 1.0}})
    return h


def test_resume_chain_moves_through_iterations_then_completes() -> None:
    h = _history(training_iterations=3)
    for it in range(3):
        assert h.ready[0] == (0, 0)
        h.ready.popleft()
        h.apply(_submitted(f"j{it}", 0, 0, it, 0))
        state = "resume" if it < 2 else "completed"
        h.apply(_ended(f"j{it}", state, {"loss": 3.0 - it}, exit_code=3 if it < 2 else 0))
    rerun = h.settings[0].reruns[0]
    assert rerun.done
    assert rerun.ok
    assert rerun.iteration == 2
    assert rerun.previous_run_dir == "/r/0/run_0.1-0"
    assert rerun.metrics == {"loss": 1.0}


def test_resume_on_last_iteration_counts_as_done() -> None:
    h = _history(training_iterations=2)
    for it in range(2):
        h.ready.popleft()
        h.apply(_submitted(f"j{it}", 0, 0, it, 0))
        h.apply(_ended(f"j{it}", "resume", {"loss": 2.0}, exit_code=3))
    assert h.settings[0].reruns[0].ok
    assert not h.ready


def test_without_training_iterations_exit_3_starts_the_job_again_up_to_the_bound() -> None:
    h = _history()  # training_iterations not set: cluster_utils' exit_for_resume
    for it in range(MAX_OPEN_RESUMES):
        assert h.ready.popleft() == (0, 0)
        h.apply(_submitted(f"j{it}", 0, 0, it, 0))
        h.apply(_ended(f"j{it}", "resume", {"loss": 2.0}, exit_code=3))
        rerun = h.settings[0].reruns[0]
        assert rerun.done == (it == MAX_OPEN_RESUMES - 1)
    assert rerun.ok
    assert not h.ready
    assert rerun.previous_run_dir == f"/r/0/run_0.{MAX_OPEN_RESUMES - 2}-0"


@pytest.mark.parametrize(
    ("state", "problem", "metrics"),
    [
        pytest.param("failed", "", {}, id="failed"),
        pytest.param("timeout", "", {"loss": 1.0}, id="timeout"),
        pytest.param("completed", "no metrics file metrics.json was written", {}, id="no-metrics"),
    ],
)
def test_failures_are_retried_up_to_max_attempts(
    state: str, problem: str, metrics: dict[str, float]
) -> None:
    h = _history(max_attempts=3)
    for att in range(3):
        assert list(h.ready) == [(0, 0)]
        h.ready.popleft()
        h.apply(_submitted(f"j{att}", 0, 0, 0, att))
        h.apply(_ended(f"j{att}", state, metrics, problem, exit_code=1))
    rerun = h.settings[0].reruns[0]
    assert rerun.done
    assert not rerun.ok
    assert rerun.reason.startswith("3 attempt(s) failed; last: ")
    assert not h.ready
    result = h.aggregate(0)
    assert result.value is None
    assert result.state is SettingState.FAILED


@pytest.mark.parametrize(
    "judged", [pytest.param(False, id="chained"), pytest.param(True, id="judged")]
)
def test_each_iteration_gets_max_attempts_afresh(judged: bool) -> None:
    h = _history(max_attempts=2, training_iterations=3, judge_iterations=judged)
    h.ready.popleft()
    h.apply(_submitted("j0", 0, 0, 0, 0))
    h.apply(_ended("j0", "failed", exit_code=1))
    h.ready.popleft()
    h.apply(_submitted("j1", 0, 0, 0, 1))
    h.apply(_ended("j1", "resume", {"loss": 2.0}, exit_code=3))
    if judged:
        assert not h.ready  # waits to be judged
        h.apply({"e": "judged", "sid": 0, "it": 0, "value": 2.0, "stop": False})
    rerun = h.settings[0].reruns[0]
    assert (rerun.iteration, rerun.next_attempt, rerun.failures) == (1, 0, 0)
    assert h.ready.popleft() == (0, 0)
    h.apply(_submitted("j2", 0, 0, 1, 0))
    h.apply(_ended("j2", "failed", exit_code=1))
    assert not rerun.done  # one failure in this iteration, of two attempts
    assert list(h.ready) == [(0, 0)]


def test_abandoned_job_is_restarted_without_counting_a_failure() -> None:
    h = _history(max_attempts=1)
    h.ready.popleft()
    h.apply(_submitted("j0", 0, 0, 0, 0))
    h.apply({"e": "abandoned", "job": "j0"})
    assert list(h.ready) == [(0, 0)]
    rerun = h.settings[0].reruns[0]
    assert rerun.failures == 0
    assert rerun.next_attempt == 1
    h.ready.popleft()
    h.apply(_submitted("j1", 0, 0, 0, 1))
    h.apply(_ended("j1", "completed", {"loss": 5.0}))
    assert h.aggregate(0).value == 5.0


def test_reruns_aggregate_to_mean_and_std() -> None:
    h = _history(n_reruns=3)
    for r, loss in enumerate([1.0, 2.0, 6.0]):
        h.apply(_submitted(f"j{r}", 0, r, 0, 0))
        h.apply(_ended(f"j{r}", "completed", {"loss": loss, "acc": 0.5}))
    result = h.aggregate(0)
    assert result.value == pytest.approx(3.0)
    assert result.std == pytest.approx((((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 3) ** 0.5)
    assert (result.n_ok, result.n_failed) == (3, 0)
    assert result.metrics == {"acc": 0.5, "loss": pytest.approx(3.0)}


def test_setting_with_some_failed_reruns_keeps_the_successful_ones() -> None:
    h = _history(n_reruns=2, max_attempts=1)
    h.apply(_submitted("a", 0, 0, 0, 0))
    h.apply(_ended("a", "completed", {"loss": 4.0}))
    h.apply(_submitted("b", 0, 1, 0, 0))
    h.apply(_ended("b", "failed", exit_code=2))
    result = h.aggregate(0)
    assert (result.value, result.n_ok, result.n_failed) == (4.0, 1, 1)


def test_setting_finished_event_round_trips_the_result() -> None:
    h = _history()
    result = SettingResult(1.5, 0.25, 2, 1, {"loss": 1.5}, "x")
    h.apply({"e": "setting_finished", "sid": 0, "result": result.to_dict()})
    assert h.settings[0].result == result
    assert h.n_finished == 1
    assert h.n_failed_settings == 0


def test_unknown_events_are_ignored() -> None:
    h = _history()
    h.apply({"e": "from_a_newer_version", "x": 1})
    assert h.n_asked == 1


def test_a_job_prepared_ahead_counts_from_its_launch() -> None:
    h = _history()
    h.apply(_submitted("j0", 0, 0, 0, 0, t=5.0))
    h.apply({"e": "launched", "jobs": ["j0", "unknown"], "t": 9.0})
    h.apply(_ended("j0", "completed", {"loss": 1.0}, t=12.0))
    assert (h.jobs["j0"].submitted_at, h.jobs["j0"].ended_at) == (9.0, 12.0)


def test_a_setup_error_is_not_a_failed_attempt_and_the_run_is_ready_again() -> None:
    h = _history(max_attempts=1)
    h.ready.popleft()
    h.apply(_submitted("j0", 0, 0, 0, 0))
    h.apply(_ended("j0", "failed", {}, exit_code=78))
    rerun = h.settings[0].reruns[0]
    assert (rerun.failures, rerun.done) == (0, False)
    assert list(h.ready) == [(0, 0)]  # `hpoptim resume` starts it again


_ASKED = {"e": "asked", "sid": 0, "params": {"x": 1.0}}


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        pytest.param({"sid": 1}, "no event kind (field 'e')", id="no-kind"),
        pytest.param({"e": 3}, "no event kind (field 'e')", id="kind-not-a-string"),
        pytest.param({"e": "asked", "params": {}}, "asked event lacks field 'sid'", id="no-sid"),
        pytest.param(
            {"e": "asked", "sid": True, "params": {}},
            "asked event field 'sid' must be int, got true",
            id="bool-is-not-an-int",
        ),
        pytest.param(
            {**_submitted("j", 0, 0, 0, 0), "t": "now"},
            "submitted event field 't' must be int or float, got \"now\"",
            id="time-not-a-number",
        ),
        pytest.param(
            {**_ended("j", "failed"), "exit_code": "1"},
            "ended event field 'exit_code' must be int or null, got \"1\"",
            id="optional-field-of-the-wrong-type",
        ),
        pytest.param(
            {"e": "setting_finished", "sid": 0, "result": {"value": 1.0}},
            "its result lacks field 'std'",
            id="result-incomplete",
        ),
        pytest.param(_ASKED, "setting 0 was asked before", id="asked-twice"),
        pytest.param(_submitted("j", 5, 0, 0, 0), "setting 5 was never asked", id="unknown-sid"),
        pytest.param(_submitted("j", 0, 1, 0, 0), "setting 0 has no rerun 1", id="no-such-rerun"),
        pytest.param(_ended("k", "completed"), "job 'k' was never submitted", id="unknown-job"),
        pytest.param({"e": "abandoned", "job": "k"}, "job 'k' was never submitted", id="abandon"),
        pytest.param(_ended("j0", "exploded"), "unknown job state 'exploded'", id="bad-state"),
        pytest.param(
            {"e": "launched", "jobs": "j0", "t": 2.0},
            "launched event field 'jobs' must be list, got \"j0\"",
            id="launched-jobs-not-a-list",
        ),
    ],
)
def test_an_invalid_event_is_refused_and_changes_nothing(
    event: dict[str, Any], problem: str
) -> None:
    h = _history()
    h.apply(_submitted("j0", 0, 0, 0, 0))
    with pytest.raises(InvalidEventError) as err:
        h.apply(event)
    assert str(err.value) == problem
    assert (h.n_asked, list(h.jobs), h.n_finished) == (1, ["j0"], 0)


def _journal(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_load_events_ignores_a_torn_or_garbled_last_line(tmp_path: Path) -> None:
    asked = json.dumps(_ASKED)
    for tail in ("garbage\n", '{"e": "ask'):
        path = tmp_path / "j.jsonl"
        path.write_text(asked + "\n" + tail)
        assert load_events(path, Lifecycle("loss")) == [_ASKED]


def test_load_events_names_an_invalid_last_line_that_is_json(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.jsonl", [json.dumps(_ASKED), json.dumps(_ASKED)])
    with pytest.raises(StorageError, match=r"j.jsonl line 2 is not a valid event \(setting 0 "):
        load_events(path, Lifecycle("loss"))


def test_repair_keeps_the_prefix_before_the_first_bad_line(tmp_path: Path) -> None:
    good = [json.dumps(_ASKED), json.dumps(_submitted("j0", 0, 0, 0, 0))]
    rest = ["garbage", json.dumps(_ended("j0", "completed", {"loss": 1.0}))]
    path = _journal(tmp_path / "journal.jsonl", good + rest)
    original = path.read_text()
    repair = repair_journal(path, Lifecycle("loss"))
    assert repair == JournalRepair(
        2, 2, "line 3 is not a JSON object", tmp_path / "journal.jsonl.damaged-1"
    )
    assert path.read_text() == "".join(line + "\n" for line in good)
    assert (tmp_path / "journal.jsonl.damaged-1").read_text() == original
    assert len(load_events(path, Lifecycle("loss"))) == 2
    _journal(path, [*good, "more garbage"])
    path.write_text(path.read_text() + json.dumps(_ASKED) + "\n")
    second = repair_journal(path, Lifecycle("loss"))
    assert second.backup == tmp_path / "journal.jsonl.damaged-2"  # the first is kept
    assert repair_journal(path, Lifecycle("loss")) == JournalRepair(2)


_RUN = [
    {"e": "run_started", "seed": 3},
    {"e": "asked", "sid": 0, "params": {"x": 1.0}},
    {"e": "asked", "sid": 1, "params": {"x": 2.0}},
    _submitted("j0", 0, 0, 0, 0),
    _submitted("j1", 1, 0, 0, 0),
    _ended("j0", "failed", exit_code=1),
    _submitted("j2", 0, 0, 0, 1),
    _ended("j2", "completed", {"loss": 0.5}),
    {"e": "setting_finished", "sid": 0, "result": SettingResult(0.5, 0.0, 1, 1, {}).to_dict()},
    {"e": "asked", "sid": 2, "params": {"x": 3.0}},
]
LC = Lifecycle("loss")


def _same_state(a: RunHistory, b: RunHistory) -> bool:
    return (a.settings, a.jobs, list(a.ready), a.finished_order, a.run_info) == (
        b.settings,
        b.jobs,
        list(b.ready),
        b.finished_order,
        b.run_info,
    )


def test_replaying_loaded_events_gives_the_state_of_applying_each(tmp_path: Path) -> None:
    """The first replay takes over the loaded history, the next folds again: same state,
    not shared."""
    events = load_events(_journal(tmp_path / "j.jsonl", [json.dumps(e) for e in _RUN]), LC)
    applied = RunHistory(LC)
    for event in _RUN:
        applied.apply(event)
    first, second = RunHistory(LC), RunHistory(LC)
    first.replay(events)
    second.replay(events)
    assert _same_state(first, applied)
    assert _same_state(second, applied)
    first.apply({"e": "asked", "sid": 3, "params": {"x": 4.0}})
    first.settings[1].reruns[0].failures = 2
    assert _same_state(second, applied)


def test_events_added_after_loading_are_checked_when_replayed(tmp_path: Path) -> None:
    events = load_events(_journal(tmp_path / "j.jsonl", [json.dumps(e) for e in _RUN]), LC)
    events.append({"e": "setting_finished", "sid": 7, "result": {}})
    with pytest.raises(InvalidEventError, match="its result lacks field 'value'"):
        RunHistory(LC).replay(events)


def test_loaded_events_replayed_onto_a_history_in_progress_are_checked(tmp_path: Path) -> None:
    events = load_events(_journal(tmp_path / "j.jsonl", [json.dumps(e) for e in _RUN]), LC)
    history = _history()
    with pytest.raises(InvalidEventError, match="setting 0 was asked before"):
        history.replay(events)


def test_loaded_events_replayed_under_other_rules_are_folded_by_those(tmp_path: Path) -> None:
    events = load_events(_journal(tmp_path / "j.jsonl", [json.dumps(e) for e in _RUN]), LC)
    two_reruns = Lifecycle("loss", n_reruns=2)
    applied, replayed = RunHistory(two_reruns), RunHistory(two_reruns)
    for event in _RUN:
        applied.apply(event)
    replayed.replay(events)
    assert _same_state(replayed, applied)
    assert len(replayed.settings[0].reruns) == 2
