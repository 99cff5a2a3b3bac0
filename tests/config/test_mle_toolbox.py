"""mle-toolbox experiment YAMLs as they are written, translated to native keys."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpoptim.cli import main
from hpoptim.config import load_config
from hpoptim.config.dialects import translate

CWD = Path("/exp")


def _search(search_config: dict[str, Any], **logging: Any) -> dict[str, Any]:
    """The current layout (mle-toolbox's examples/toy_single_objective)."""
    return {
        "meta_job_args": {
            "project_name": "toy",
            "job_type": "hyperparameter-search",
            "base_train_fname": "train.py",
            "base_train_config": "base_config.json",
            "experiment_dir": "experiments/toy",
        },
        "param_search_args": {
            "search_logging": {
                "reload_log": False,
                "max_objective": True,
                "eval_metrics": ["test_loss", "train_loss"],
                **logging,
            },
            "search_resources": {
                "num_search_batches": 2,
                "num_iter_per_batch": 4,
                "num_evals_per_iter": 3,
            },
            "search_config": {"search_schedule": "sync", **search_config},
        },
        "single_job_args": {"job_name": "toy", "num_logical_cores": 2, "num_gpus": 1},
    }


REAL = {"lrate": {"begin": 0.1, "end": 0.5, "prior": "uniform", "bins": 3}}
INTEGER = {"batch_size": {"begin": 1, "end": 5, "prior": "uniform", "spacing": 2}}
CATEGORICAL = {"arch": ["mlp", "cnn"]}
SPACE = {"real": REAL, "integer": INTEGER, "categorical": CATEGORICAL}


def _p(name: str, distribution: str, **values: Any) -> dict[str, Any]:
    return {"param": f"train_config.{name}", "distribution": distribution, **values}


@pytest.mark.parametrize(
    ("search_type", "optimizer", "params"),
    [
        pytest.param(
            "random",
            "random",
            [
                _p("lrate", "Uniform", bounds=[0.1, 0.5]),
                # mle-toolbox's random integer range is begin..end-1 (np.arange)
                _p("batch_size", "IntUniform", bounds=[1, 4]),
                _p("arch", "Discrete", options=["mlp", "cnn"]),
            ],
            id="random",
        ),
        pytest.param(
            "grid",
            "gridsearch",
            [
                _p("lrate", "Discrete", options=[0.1, 0.3, 0.5]),
                _p("batch_size", "Discrete", options=[1, 3]),
                _p("arch", "Discrete", options=["mlp", "cnn"]),
            ],
            id="grid-bins-and-spacing",
        ),
        pytest.param(
            "smbo",
            "tpe",
            [
                _p("lrate", "Uniform", bounds=[0.1, 0.5]),
                _p("batch_size", "IntUniform", bounds=[1, 5]),
                _p("arch", "Discrete", options=["mlp", "cnn"]),
            ],
            id="smbo",
        ),
    ],
)  # fmt: skip
def test_a_hyperparameter_search_becomes_a_native_search(
    search_type: str, optimizer: str, params: list[dict[str, Any]]
) -> None:
    native, notes = translate(
        _search({"search_type": search_type, "search_params": SPACE}), cwd=CWD
    )
    assert not [n for n in notes if n.kind == "error"]
    got = native["optimized_params"]
    if search_type == "grid":
        got[0]["options"] = [round(v, 12) for v in got[0]["options"]]
    assert got == params
    assert {k: native[k] for k in ("optimizer_str", "metric_to_optimize", "minimize")} == {
        "optimizer_str": optimizer,
        "metric_to_optimize": "test_loss",
        "minimize": False,
    }
    assert (native["number_of_samples"], native["n_jobs_per_iteration"], native["n_reruns"]) == (
        8,
        4,
        3,
    )
    assert native["resources"] == {"n_cpus_per_job": 2, "n_gpus_per_job": 1}
    assert native["script_relative_path"] == "wrappers/run_mle.py"
    assert native["fixed_params"] == {
        "mle_toolbox": {"train_script": "/exp/train.py", "base_config": "/exp/base_config.json"}
    }
    assert native["results_dir"] == "experiments/toy"


def test_the_newest_layout_means_the_same() -> None:
    """The shape of mle-toolbox's examples/toy_single_objective/mle_search_grid.yaml."""
    current = _search({"search_type": "random", "search_params": SPACE})
    newest = copy.deepcopy(current)
    meta = newest["meta_job_args"]
    meta["experiment_type"] = meta.pop("job_type")
    meta["report_generation"] = True
    newest["param_search_args"]["search_logging"]["aggregate_seeds"] = "mean"
    newest["param_search_args"]["search_resources"] = {
        "num_total_evals": 8,
        "max_running_jobs": 4,
        "num_seeds_per_eval": 3,
    }
    newest["single_job_args"]["use_conda_venv"] = True
    native, notes = translate(newest, cwd=CWD)
    assert native == translate(current, cwd=CWD)[0]
    assert "meta_job_args.report_generation" in {n.path for n in notes}


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        pytest.param({"begin": 1, "end": 5, "bins": 4}, [1, 2, 3, 5], id="bins-linspace-truncated"),
        pytest.param({"begin": 0, "end": 2, "bins": 5}, [0, 1, 2], id="bins-duplicates-once"),
        pytest.param({"begin": 1, "end": 6, "spacing": 2}, [1, 3, 5], id="spacing-range"),
    ],
)
def test_an_integer_grid_is_mle_toolboxs(spec: dict[str, int], options: list[int]) -> None:
    data = _search({"search_type": "grid", "search_params": {"integer": {"n": spec}}})
    assert translate(data, cwd=CWD)[0]["optimized_params"] == [_p("n", "Discrete", options=options)]


@pytest.mark.parametrize(
    ("key", "value", "warning"),
    [
        pytest.param("random_seeds", [2, 4], "the run's seed", id="random-seeds"),
        pytest.param("aggregate_seeds", "p50", "the mean", id="aggregate-median"),
    ],
)
def test_what_hpoptim_does_otherwise_is_one_warning(key: str, value: Any, warning: str) -> None:
    data = _search({"search_type": "random", "search_params": SPACE})
    data["param_search_args"]["search_resources"][key] = value
    ignored = [str(n) for n in translate(data, cwd=CWD)[1] if n.kind == "ignored"]
    assert len(ignored) == 1
    assert ignored[0].startswith(f"param_search_args.{key}: ignored:")
    assert warning in ignored[0]


def test_the_older_flat_layout_means_the_same() -> None:
    current = _search({"search_type": "random", "search_params": SPACE})
    older = copy.deepcopy(current)
    older["param_search_args"] = {
        "search_type": "random",
        "maximize_objective": True,
        "eval_score_type": "test_loss",
        "num_search_batches": 2,
        "num_iter_per_batch": 4,
        "num_evals_per_iter": 3,
        "params_to_search": SPACE,
    }
    assert translate(older, cwd=CWD)[0] == translate(current, cwd=CWD)[0]


@pytest.mark.parametrize(
    ("prior", "kind", "distribution"),
    [
        pytest.param("log-uniform", "real", "LogUniform", id="real-log"),
        pytest.param("log-uniform", "integer", "IntLogUniform", id="integer-log"),
        pytest.param("uniform", "real", "Uniform", id="real-uniform"),
    ],
)
def test_a_prior_picks_the_distribution(prior: str, kind: str, distribution: str) -> None:
    space = {kind: {"x": {"begin": 1, "end": 8, "prior": prior}}}
    native, _ = translate(_search({"search_type": "smbo", "search_params": space}), cwd=CWD)
    assert native["optimized_params"][0]["distribution"] == distribution


def test_multiple_experiments_is_a_metricless_grid_over_configs_and_seeds() -> None:
    data = {
        "meta_job_args": {
            "job_type": "multiple-experiments",
            "base_train_fname": "train.py",
            "experiment_dir": "experiments",
        },
        "multi_experiment_args": {"config_fnames": ["a.json", "b.json"], "num_seeds": 3},
    }
    native, notes = translate(data, cwd=CWD)
    assert not [n for n in notes if n.kind == "error"]
    assert native["optimized_params"] == [
        {
            "param": "mle_toolbox.base_config",
            "distribution": "Discrete",
            "options": ["/exp/a.json", "/exp/b.json"],
        },
        {"param": "mle_toolbox.seed_id", "distribution": "Discrete", "options": [0, 1, 2]},
    ]
    assert (native["optimizer_str"], native["metric_to_optimize"]) == ("gridsearch", None)
    assert native["number_of_samples"] == native["n_jobs_per_iteration"] == 6


def _errors(data: dict[str, Any]) -> list[str]:
    return [str(n) for n in translate(data, cwd=CWD)[1] if n.kind == "error"]


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = _search({"search_type": "random", "search_params": SPACE})
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            _with(("meta_job_args", "job_type"), "population-based-training"),
            "meta_job_args.job_type: job_type 'population-based-training' is not supported; "
            "hpoptim runs hyperparameter-search and multiple-experiments",
            id="job-type",
        ),
        pytest.param(
            _with(("param_search_args", "search_config", "search_type"), "nevergrad"),
            "param_search_args.search_type: 'nevergrad' is not one of grid, random, smbo",
            id="search-type",
        ),
        pytest.param(
            _search(
                {"search_type": "grid", "search_params": {"integer": {"n": {"begin": 1, "end": 4}}}}
            ),
            "param_search_args.search_params.integer.n: a grid needs a whole number "
            "bins >= 1, got None",
            id="grid-without-spacing",
        ),
        pytest.param(
            _with(("param_search_args", "search_logging", "eval_metrics"), []),
            "param_search_args.eval_metrics: a metric name is required, got None",
            id="no-metric",
        ),
        pytest.param(
            _with(("param_search_args", "search_resources", "num_iter_per_batch"), 0),
            "param_search_args.num_iter_per_batch: must be a whole number >= 1, got 0",
            id="batch-size",
        ),
        pytest.param(
            _with(("param_search_args", "search_logging", "max_objectve"), True),
            "param_search_args.max_objectve: unknown param_search_args key; did you mean "
            "'max_objective'?",
            id="typo",
        ),
        pytest.param(
            _with(("single_job_args", "num_logical_core"), 2),
            "single_job_args.num_logical_core: unknown single_job_args key; did you mean "
            "'num_logical_cores'?",
            id="single-job-typo",
        ),
        pytest.param(
            _with(("single_job_args", "extra_cmd_line_input"), {"x": 1}),
            "single_job_args.extra_cmd_line_input: extra script arguments are not supported; "
            "put the values in the base config",
            id="extra-arguments",
        ),
        pytest.param(
            _with(("meta_job_args", "base_train_config"), None),
            "meta_job_args.base_train_config: required: a file name, got None",
            id="no-base-config",
        ),
    ],
)
def test_what_cannot_be_translated_is_refused_with_one_line(
    data: dict[str, Any], message: str
) -> None:
    assert message in _errors(data)


def test_check_on_an_unsupported_job_type_exits_2_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(_with(("meta_job_args", "job_type"), "pbt")), encoding="utf-8")
    assert main(["check", str(path)]) == 2
    assert "job_type 'pbt' is not supported" in capsys.readouterr().err


def test_the_example_checks_and_migrates_to_the_same_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "mle_toolbox"
    monkeypatch.chdir(example)
    assert main(["check", "experiment.yaml"]) == 0
    assert "config OK: 6 setting(s) x 2 rerun(s) of wrappers/run_mle.py" in capsys.readouterr().out
    assert main(["migrate", "experiment.yaml"]) == 0
    text = capsys.readouterr().out
    assert "# param_search_args.reload_log: dropped" in text
    assert "n_reruns: 2  # from param_search_args.num_evals_per_iter" in text
    migrated = tmp_path / "native.yaml"
    migrated.write_text(text, encoding="utf-8")
    assert load_config(migrated, ()) == load_config(example / "experiment.yaml", ())
