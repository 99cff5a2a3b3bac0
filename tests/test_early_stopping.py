"""Early stopping: each method's rule on hand-made curves, its rebuild from the journal,
its config section, the cluster_utils translation and what the sampler is told."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hpoptim.cli import main
from hpoptim.config.dialects import translate
from hpoptim.config.stopping import early_stopping_settings
from hpoptim.errors import ConfigError
from hpoptim.run.early_stopping import EarlyStopper
from hpoptim.samplers import make_sampler
from hpoptim.samplers.base import SamplerHistory
from hpoptim.space import SearchSpace
from hpoptim.state.events import InvalidEventError
from hpoptim.state.history import Lifecycle, RunHistory


def stopper(n_iterations: int = 9, minimize: bool = True, **section: Any) -> EarlyStopper:
    return EarlyStopper(
        early_stopping_settings(section), n_iterations=n_iterations, minimize=minimize
    )


def complete(s: EarlyStopper, sid: int, curve: list[float]) -> None:
    """Setting ``sid`` ran every iteration with ``curve`` (the last value is the final one)."""
    for step, value in enumerate(curve[:-1], start=1):
        assert not s.judge(sid, step, value)
    s.finished(sid, curve[-1])


# -- successive halving --------------------------------------------------------------------
def test_successive_halving_keeps_the_best_third_at_each_rung() -> None:
    s = stopper(method="successive_halving", min_iterations=1, reduction_factor=3)
    assert not s.judge(0, 1, 1.0)  # alone at the rung: promoted
    assert s.judge(1, 1, 2.0)  # [1, 2]: only the best goes on
    assert s.judge(2, 1, 3.0)
    assert not s.judge(3, 1, 0.5)  # the best so far
    assert not s.judge(3, 2, 0.4)  # between rungs (1, 3, 9) nothing is decided
    assert not s.judge(0, 3, 0.9)  # first at rung 3
    assert s.judge(3, 3, 1.5)


def test_successive_halving_maximising_keeps_the_highest() -> None:
    s = stopper(minimize=False, method="successive_halving")
    assert not s.judge(0, 1, 1.0)
    assert s.judge(1, 1, 0.5)
    assert not s.judge(2, 1, 2.0)


def test_successive_halving_waits_for_min_iterations() -> None:
    s = stopper(method="successive_halving", min_iterations=2, reduction_factor=2)
    assert not s.judge(0, 2, 1.0)
    assert not s.judge(1, 1, 9.0)  # before the first rung
    assert s.judge(1, 2, 9.0)


# -- median / percentile -------------------------------------------------------------------
def test_median_stops_below_the_median_of_finished_settings_once_enough_finished() -> None:
    s = stopper(n_iterations=4, method="median", n_startup_settings=2)
    assert not s.judge(0, 1, 100.0)  # nothing finished yet
    s.finished(0, None)  # a failed setting is not compared with
    complete(s, 1, [1.0, 0.8, 0.6, 0.5])
    assert not s.judge(2, 1, 100.0)  # one finished: still starting up
    complete(s, 3, [3.0, 2.0, 1.5, 1.0])
    assert s.judge(4, 1, 2.5)  # worse than the median (2.0) of 1.0 and 3.0 at step 1
    assert not s.judge(5, 1, 1.5)
    assert not s.judge(6, 4, 99.0)  # the last iteration is never judged


def test_median_with_min_iterations_leaves_the_first_alone() -> None:
    s = stopper(n_iterations=4, method="median", n_startup_settings=1, min_iterations=2)
    complete(s, 0, [1.0, 1.0, 1.0, 1.0])
    assert not s.judge(1, 1, 5.0)
    assert s.judge(1, 2, 5.0)


# -- threshold -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bounds", "value", "stop"),
    [
        pytest.param({"upper": 1.0}, 2.0, True, id="above-upper"),
        pytest.param({"upper": 1.0}, 0.5, False, id="below-upper"),
        pytest.param({"lower": 0.0}, -1.0, True, id="below-lower"),
        pytest.param({"lower": 0.0, "upper": 1.0}, 0.5, False, id="inside"),
    ],
)
def test_threshold(bounds: dict[str, float], value: float, stop: bool) -> None:
    s = stopper(method="threshold", **bounds)
    assert s.judge(0, 1, value) is stop


def test_threshold_never_stops_on_a_missing_value() -> None:
    s = stopper(method="threshold", upper=1.0)
    assert not s.judge(0, 1, None)
    assert not s.judge(0, 1, float("nan"))


# -- hyperband -----------------------------------------------------------------------------
def test_hyperband_stops_the_worst_settings_and_keeps_the_best() -> None:
    s = stopper(n_iterations=27, method="hyperband", reduction_factor=3)
    decisions = {sid: s.judge(sid, 1, float(sid)) for sid in range(40)}
    assert not decisions[0]  # the best of all is never stopped
    assert sum(decisions.values()) >= 20  # most of a rising sequence goes no further


# -- rank (cluster_utils) ------------------------------------------------------------------
CURVES = [[float(k), float(k) - 0.5, float(k) - 0.7, float(k) - 0.8] for k in range(1, 6)]


def ranked_stopper(**section: Any) -> EarlyStopper:
    s = stopper(n_iterations=4, method="rank", **section)
    for sid, curve in enumerate(CURVES):
        complete(s, sid, curve)
    return s


def test_rank_stops_a_setting_ranked_below_the_target() -> None:
    s = ranked_stopper(target_rank=2, how_many_stds=0.0)
    assert s.judge(10, 1, 9.0)  # rank 5 of 6 (0 = best) > 2
    assert not s.judge(11, 1, 2.5)  # rank 2
    assert not s.judge(12, 1, 0.0)


@pytest.mark.parametrize(("how_many_stds", "stop"), [(0.0, True), (1.0, True), (1.5, False)])
def test_rank_allows_the_deviation_of_ranks_along_the_curves(
    how_many_stds: float, stop: bool
) -> None:
    s = stopper(n_iterations=4, method="rank", target_rank=2, how_many_stds=how_many_stds)
    # the first is best at step 1 and worst at the end: ranks at step 1 (0..4) differ from
    # the final ones (4, 0, 1, 2, 3) by -4, 1, 1, 1, 1: deviation sqrt(20 / 5) = 2
    crossing = [[1.0, 1.0, 1.0, 5.0], *([k, k, k, k - 1.0] for k in (2.0, 3.0, 4.0, 5.0))]
    for sid, curve in enumerate(crossing):
        complete(s, sid, curve)
    # rank 5 among (1, 2, 3, 4, 5, 9); stopped when 5 - how_many_stds * 2 > 2
    assert s.judge(10, 1, 9.0) is stop


def test_rank_needs_five_completed_settings_and_judges_only_the_first_half() -> None:
    s = stopper(n_iterations=4, method="rank", target_rank=0, how_many_stds=0.0)
    for sid, curve in enumerate(CURVES[:4]):
        complete(s, sid, curve)
    assert not s.judge(10, 1, 99.0)  # four completed: no rule yet
    s.finished(9, 1.0, stopped=True)  # a stopped setting is not a completed curve
    assert not s.judge(10, 1, 99.0)
    complete(s, 4, CURVES[4])
    assert s.judge(10, 1, 99.0)
    assert s.judge(11, 2, 99.0)
    assert not s.judge(12, 3, 99.0)  # past half of the 4 iterations


def test_rank_maximising_ranks_high_values_first() -> None:
    s = stopper(n_iterations=4, minimize=False, method="rank", target_rank=2, how_many_stds=0)
    for sid, curve in enumerate(CURVES):
        complete(s, sid, [-v for v in curve])
    assert s.judge(10, 1, -9.0)
    assert not s.judge(11, 1, 0.0)


# -- rebuilt from the journal --------------------------------------------------------------
def test_a_replayed_stopper_decides_as_the_uninterrupted_one() -> None:
    live = stopper(method="successive_halving")
    events: list[dict[str, Any]] = []
    values = [5.0, 3.0, 4.0, 1.0, 2.0, 6.0]
    for sid, value in enumerate(values):
        stop = live.judge(sid, 1, value)
        events.append({"e": "judged", "sid": sid, "it": 0, "value": value, "stop": stop})
        if not stop:
            stop = live.judge(sid, 3, value - 0.5)
            events.append({"e": "judged", "sid": sid, "it": 2, "value": value - 0.5, "stop": stop})
        if stop:
            result = {"value": value, "stopped_at": 0}
            live.finished(sid, value, stopped=True)
            events.append({"e": "setting_finished", "sid": sid, "result": result})
    resumed = stopper(method="successive_halving")
    resumed.replay(events)
    probe = [(10, 3, 2.9), (11, 3, 0.1), (12, 1, 1.5), (13, 9, 0.3)]
    assert [resumed.judge(*p) for p in probe] == [live.judge(*p) for p in probe]
    fresh = stopper(method="successive_halving")  # without the replay, rungs are empty
    assert [fresh.judge(*p) for p in probe] != [resumed.judge(*p) for p in probe]


def test_a_judged_event_is_folded_only_when_the_setting_is_due() -> None:
    history = RunHistory(
        Lifecycle("loss", n_reruns=2, training_iterations=3, judge_iterations=True)
    )
    history.apply({"e": "asked", "sid": 0, "params": {"x": 1}})
    with pytest.raises(InvalidEventError, match="not due"):
        history.apply({"e": "judged", "sid": 0, "it": 0, "value": 1.0, "stop": True})
    for rerun in range(2):
        job = f"0_{rerun}.0-0"
        history.apply(
            {"e": "submitted", "job": job, "sid": 0, "rerun": rerun, "it": 0, "att": 0}
            | {"dir": f"/r/{job}", "t": 0.0}
        )
        history.apply(
            {"e": "ended", "job": job, "state": "resume", "t": 1.0}
            | {"metrics": {"loss": 1.0 + rerun}}
        )
        assert (history.settings[0].due_judgment() is None) is (rerun == 0)
    assert history.settings[0].iteration_value(0) == 1.5
    assert list(history.ready) == []  # no rerun goes on before the judgment
    history.apply({"e": "judged", "sid": 0, "it": 0, "value": 1.5, "stop": True})
    assert history.settings[0].all_reruns_done
    result = history.aggregate(0)
    assert (result.value, result.stopped_at, result.state.value) == (1.5, 0, "stopped")


def test_a_stopped_setting_takes_each_rerun_value_at_the_iteration_it_stopped_after() -> None:
    history = RunHistory(
        Lifecycle("loss", n_reruns=2, training_iterations=4, judge_iterations=True)
    )
    history.apply({"e": "asked", "sid": 0, "params": {"x": 1}})

    def iteration(it: int, metrics: list[dict[str, float]]) -> None:
        for rerun, reported in enumerate(metrics):
            job = f"0_{rerun}.{it}-0"
            history.apply(
                {"e": "submitted", "job": job, "sid": 0, "rerun": rerun, "it": it, "att": 0}
                | {"dir": f"/r/{job}", "t": 0.0}
            )
            history.apply(
                {"e": "ended", "job": job, "state": "resume", "t": 1.0, "metrics": reported}
            )

    iteration(0, [{"loss": 4.0}, {"loss": 6.0}])
    history.apply({"e": "judged", "sid": 0, "it": 0, "value": 5.0, "stop": False})
    iteration(1, [{"loss": 3.0}, {}])  # the second rerun reported nothing at iteration 1
    assert history.settings[0].iteration_value(1) == 3.0
    history.apply({"e": "judged", "sid": 0, "it": 1, "value": 3.0, "stop": True})
    result = history.aggregate(0)
    assert (result.value, result.n_ok, result.n_failed, result.stopped_at) == (3.0, 1, 1, 1)


# -- the sampler is told ---------------------------------------------------------------------
SPACE = SearchSpace.from_config([{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}])


SPACE2 = SearchSpace.from_config(
    [
        {"param": "x", "distribution": "Uniform", "bounds": [0, 1]},
        {"param": "y", "distribution": "LogUniform", "bounds": [1e-3, 1]},
    ]
)


def test_an_optuna_sampler_records_a_stopped_setting_out_of_its_model() -> None:
    optuna = pytest.importorskip("optuna")
    from hpoptim.samplers.optuna_study import STOPPED_AT, STOPPED_VALUE

    live = make_sampler("tpe", SPACE, minimize=True, seed=1, settings={})
    params = live.ask()
    assert params is not None
    live.tell_stopped(params, 0.7, 2)
    (trial,) = live._study.get_trials()
    assert trial.state is optuna.trial.TrialState.FAIL  # Optuna's samplers leave it out
    assert trial.user_attrs == {STOPPED_AT: 2, STOPPED_VALUE: 0.7}
    restored = make_sampler("tpe", SPACE, minimize=True, seed=1, settings={})
    restored.restore(SamplerHistory(asked=(params,), told=((0, 0.7),), stopped={0: 2}))
    (again,) = restored._study.get_trials()
    assert (again.state, again.value, again.user_attrs) == (
        trial.state,
        trial.value,
        trial.user_attrs,
    )


def test_settings_stopped_early_do_not_count_towards_the_startup_settings() -> None:
    pytest.importorskip("optuna")
    live = make_sampler("tpe", SPACE2, minimize=True, seed=2, settings={"n_startup_trials": 2})

    def from_prior() -> bool:  # a startup setting is drawn from the prior, fixed in the study
        assert live.ask() is not None
        return "fixed_params" in live._study.get_trials()[-1].system_attrs

    assert [from_prior(), from_prior(), from_prior()] == [True, True, True]
    first, second, third = (t.params for t in live._study.get_trials())
    live.tell({"x": first["x"], "y": first["y"]}, 0.5)
    live.tell_stopped({"x": second["x"], "y": second["y"]}, 0.4, 1)
    assert from_prior()  # one completed setting: still the prior
    live.tell({"x": third["x"], "y": third["y"]}, 0.3)
    assert not from_prior()  # two completed: the model's turn


def _told(name: str, settings: dict[str, Any], n_ok: int, stop: bool) -> list[dict[str, Any]]:
    """``n_ok`` settings told, then one stopped early (or failed) and three more, then three
    proposals."""
    sampler = make_sampler(name, SPACE2, minimize=True, seed=3, settings=settings)
    asked = [sampler.ask() for _ in range(n_ok + 4)]
    for i, params in enumerate(asked):
        assert params is not None
        if i != n_ok:
            sampler.tell(params, float(params["x"]))
        elif stop:
            sampler.tell_stopped(params, -1.0, 0)  # the best value so far, but not a final one
        else:
            sampler.tell(params, None)
    return [p for p in (sampler.ask() for _ in range(3)) if p is not None]


@pytest.mark.parametrize(
    ("name", "settings", "n_ok"),
    [
        pytest.param("tpe", {"n_startup_trials": 1}, 2, id="tpe"),
        pytest.param("cmaes", {"n_startup_trials": 1, "popsize": 4}, 2, id="cmaes"),
        pytest.param("tpe_cmaes", {"n_startup_trials": 1}, 2, id="tpe_cmaes-before-switch"),
        pytest.param(
            "tpe_cmaes",
            {"n_startup_trials": 1, "switch_after": 10, "popsize": 4},
            10,
            id="tpe_cmaes-after-switch",
        ),
    ],
)
def test_a_stopped_setting_teaches_the_model_nothing(
    name: str, settings: dict[str, Any], n_ok: int
) -> None:
    pytest.importorskip("optuna")
    stopped = _told(name, settings, n_ok, stop=True)
    assert stopped == _told(name, settings, n_ok, stop=False)


def test_settings_stopped_early_do_not_count_towards_the_switch_to_cmaes() -> None:
    pytest.importorskip("cmaes")
    settings = {"n_startup_trials": 2, "switch_after": 10}
    live = make_sampler("tpe_cmaes", SPACE2, minimize=True, seed=5, settings=settings)
    asked = [live.ask() for _ in range(15)]
    told: list[tuple[int, float]] = []
    stopped: dict[int, int] = {}
    for sid, params in enumerate(asked):
        assert params is not None
        value = float(params["x"]) + float(params["y"])
        if 2 <= sid < 7:  # five stopped among the first ten told
            live.tell_stopped(params, value, 1)
            stopped[sid] = 1
        else:
            live.tell(params, value)
        told.append((sid, value))
        assert (live._cma is not None) == (sid >= 14)  # the tenth completed one switches
    restored = make_sampler("tpe_cmaes", SPACE2, minimize=True, seed=5, settings=settings)
    restored.restore(SamplerHistory(asked=tuple(asked), told=tuple(told), stopped=stopped))
    assert [restored.ask() for _ in range(3)] == [live.ask() for _ in range(3)]


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        pytest.param(
            {"method": "median", "reduction_factor": 2},
            "early_stopping.reduction_factor",
            "applies to method 'successive_halving' and 'hyperband', not to 'median'",
            id="key-of-another-method",
        ),
        pytest.param(
            {"method": "median", "reduction_factor": 3},
            "early_stopping.reduction_factor",
            "applies to method 'successive_halving' and 'hyperband', not to 'median'",
            id="key-of-another-method-at-its-default",
        ),
        pytest.param(
            {"min_iterations": 1},
            "early_stopping.min_iterations",
            "applies to method 'successive_halving' and 'hyperband' and 'median' and "
            "'threshold', not to 'none' (its keys: none)",
            id="key-without-a-method",
        ),
        pytest.param(
            {"method": "threshold"},
            "early_stopping.method",
            "threshold needs lower or upper",
            id="threshold-without-bounds",
        ),
        pytest.param(
            {"method": "threshold", "lower": 2.0, "upper": 1.0},
            "early_stopping.lower",
            "must be <= upper (1), got 2",
            id="threshold-bounds-crossed",
        ),
        pytest.param(
            {"method": "halving"},
            "early_stopping.method",
            "must be 'none', 'successive_halving'",
            id="unknown-method",
        ),
        pytest.param(
            {"method": "median", "percentil": 20},
            "early_stopping.percentil",
            "unknown key; did you mean 'percentile'?",
            id="typo",
        ),
    ],
)
def test_a_bad_section_is_one_line_naming_the_key(
    section: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        early_stopping_settings(section)
    (problem,) = info.value.problems
    assert problem.path == path
    assert problem.message.startswith(message), problem.message


EARLIER_SAVED = {  # how earlier versions saved the section: every method's keys
    "method": "median",
    "min_iterations": 2,
    "reduction_factor": 3,
    "min_early_stopping_rate": 0,
    "n_startup_settings": 5,
    "percentile": 25.0,
    "lower": None,
    "upper": None,
    "target_rank": 5,
    "how_many_stds": 3.0,
}


def test_a_section_saved_by_an_earlier_version_loads_as_its_method() -> None:
    settings = early_stopping_settings(EARLIER_SAVED)
    assert settings.to_dict() == {
        "method": "median",
        "min_iterations": 2,
        "n_startup_settings": 5,
        "percentile": 25.0,
    }


def test_a_section_saved_by_an_earlier_version_keeps_a_changed_foreign_key_an_error() -> None:
    with pytest.raises(ConfigError, match="early_stopping.reduction_factor: applies to method"):
        early_stopping_settings({**EARLIER_SAVED, "reduction_factor": 4})


def _config(tmp_path: Path, **changes: Any) -> Path:
    (tmp_path / "job.py").write_text("")
    data = {
        "optimization_procedure_name": "t",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "number_of_samples": 4,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        **changes,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        pytest.param(
            {"early_stopping": {"method": "median"}},
            "early_stopping.method: needs training_iterations > 1",
            id="no-chained-iterations",
        ),
        pytest.param(
            {"training_iterations": 3, "early_stopping": {"method": "rank", "upper": 2.0}},
            "early_stopping.upper: applies to method 'threshold', not to 'rank'",
            id="key-of-another-method",
        ),
    ],
)
def test_run_refuses_a_bad_early_stopping_config_with_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, Any],
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(_config(tmp_path, **changes))]) == 2
    err = capsys.readouterr().err.splitlines()
    problems = [x.strip() for x in err if x.startswith("  ")]
    assert len(problems) == 1, err
    assert problems[0].startswith(line), err
    assert not (tmp_path / "results").exists()


def test_the_iterations_rule_is_reported_beside_another_keys_problem(tmp_path: Path) -> None:
    from hpoptim.config import load_config

    path = _config(tmp_path, number_of_samples=0, early_stopping={"method": "median"})
    with pytest.raises(ConfigError) as info:
        load_config(path, [])
    assert [p.path for p in info.value.problems] == ["number_of_samples", "early_stopping.method"]


def test_a_saved_config_with_early_stopping_loads_back_equal(tmp_path: Path) -> None:
    from hpoptim.config import load_config, load_config_dict

    cfg = load_config(
        _config(
            tmp_path, training_iterations=3, early_stopping={"method": "threshold", "upper": 1}
        ),
        [],
    )
    assert load_config_dict(cfg.to_dict()) == cfg
    assert cfg.early_stopping.upper == 1.0


# -- cluster_utils ---------------------------------------------------------------------------
def test_cluster_utils_kill_bad_jobs_early_becomes_the_rank_method() -> None:
    data = {
        "optimization_procedure_name": "x",
        "kill_bad_jobs_early": True,
        "early_killing_params": {"target_rank": 3, "how_many_stds": 2.0},
        "fixed_params": {"training_iterations": 4},
    }
    out, notes = translate(data)
    assert out["early_stopping"] == {"method": "rank", "target_rank": 3, "how_many_stds": 2.0}
    assert "kill_bad_jobs_early" not in out
    assert "early_killing_params" not in out
    (note,) = [n for n in notes if n.path == "kill_bad_jobs_early"]
    assert note.kind == "translated"
    assert "judged after each chained training iteration" in note.message
    assert early_stopping_settings(out["early_stopping"]).method == "rank"


@pytest.mark.parametrize(
    ("extra", "kind", "has_section"),
    [
        pytest.param({}, "ignored", False, id="no-chained-iterations"),
        pytest.param({"kill_bad_jobs_early": False}, "translated", False, id="off"),
    ],
)
def test_cluster_utils_kill_bad_jobs_early_without_chain_or_off(
    extra: dict[str, Any], kind: str, has_section: bool
) -> None:
    data = {"optimization_procedure_name": "x", "kill_bad_jobs_early": True, **extra}
    out, notes = translate(data)
    assert ("early_stopping" in out) is has_section
    (note,) = [n for n in notes if n.path == "kill_bad_jobs_early"]
    assert note.kind == kind


def test_cluster_utils_unknown_early_killing_param_is_an_error() -> None:
    data = {
        "optimization_procedure_name": "x",
        "kill_bad_jobs_early": True,
        "early_killing_params": {"target_rnk": 3},
        "fixed_params": {"training_iterations": 4},
    }
    _, notes = translate(data)
    (note,) = [n for n in notes if n.kind == "error"]
    assert note.path == "early_killing_params.target_rnk"
    assert "did you mean 'target_rank'" in note.message


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        pytest.param(
            {"early_killing_params": [3]},
            "early_killing_params",
            "must be a mapping, got [3]",
            id="params-not-a-mapping",
        ),
        pytest.param(
            {"early_stopping": {"method": "median"}},
            "kill_bad_jobs_early",
            "gives method 'rank' but early_stopping is also set; keep one of the two",
            id="early-stopping-also-set",
        ),
    ],
)
def test_cluster_utils_kill_bad_jobs_early_refused(
    extra: dict[str, Any], path: str, message: str
) -> None:
    data = {
        "optimization_procedure_name": "x",
        "kill_bad_jobs_early": True,
        "fixed_params": {"training_iterations": 4},
        **extra,
    }
    _, notes = translate(data)
    (note,) = [n for n in notes if n.kind == "error"]
    assert (note.path, note.message) == (path, message)
