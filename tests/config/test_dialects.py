"""cluster_utils / LTTFS configs as they are written, translated to native keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hpoptim.cli import main
from hpoptim.config import load_config
from hpoptim.config.dialects import slurm_minutes, translate
from hpoptim.errors import ConfigError

OPTIMIZED = [
    {"param": "fn_args.u", "distribution": "TruncatedNormal", "bounds": [-3.0, 3.0]},
    {"param": "fn_args.flag", "distribution": "Discrete", "options": [False, True]},
]


def _hp_optimization(tmp_path: Path) -> dict[str, Any]:
    """The shape of cluster_utils' examples/basic/optimization_metaopt.json."""
    return {
        "optimization_procedure_name": "metaopt",
        "results_dir": str(tmp_path / "results"),
        "git_params": {"branch": "main", "commit": None, "remove_local_copy": True},
        "generate_report": "when_finished",
        "script_relative_path": "main.py",
        "num_best_jobs_whose_data_is_kept": 5,
        "remove_working_dirs": False,
        "environment_setup": {
            "pre_job_script": "pre_job_script.sh",
            "variables": {"OMP_NUM_THREADS": 1},
        },
        "cluster_requirements": {
            "request_cpus": 2,
            "request_gpus": 1,
            "cuda_requirement": None,
            "memory_in_mb": 16000,
            "bid": 1000,
            "partition": "gpu-2080ti",
            "request_time": "1-02:30:00",
            "forbidden_hostnames": ["n1", "n2"],
            "signal_seconds_to_timeout": 300,
            "extra_submission_options": ["--gpu-freq=high"],
        },
        "optimizer_str": "cem_metaoptimizer",
        "optimizer_settings": {"with_restarts": False, "num_jobs_in_elite": 10},
        "optimization_setting": {
            "metric_to_optimize": "result",
            "minimize": True,
            "number_of_samples": 20,
            "n_jobs_per_iteration": 5,
            "n_completed_jobs_before_resubmit": 2,
            "run_local": True,
        },
        "fixed_params": {"test_resume": False},
        "optimized_params": OPTIMIZED,
    }


def _lttfs(tmp_path: Path) -> dict[str, Any]:
    """The shape of LTTFS's hp_optim/hp_optim_ppo.json."""
    return {
        "optimization_procedure_name": "lttfs",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "./hp_optim/run_singularity.py",
        "remove_jobs_dir": False,
        "environment_setup": {},
        "cluster_requirements": {
            "request_cpus": 2,
            "request_gpus": 0,
            "cuda_requirement": None,
            "memory_in_mb": 15000,
            "bid": 100,
        },
        "fixed_params": {
            "max_attempts": 2,
            "training_iterations": 2,
            "config.config_templates": "./hp_optim/config_templates_ppo.json",
            "singularity.image": "~/lttfs.sif",
            "singularity.script": "./hp_optim/run_learning.py",
        },
        "optimizer_str": "cem_metaoptimizer",
        "optimizer_settings": {"with_restarts": False, "num_jobs_in_elite": 10},
        "optimization_setting": {
            "metric_to_optimize": "mean_eprewmean",
            "minimize": False,
            "number_of_samples": 100,
            "n_jobs_per_iteration": 10,
        },
        "num_best_jobs_whose_data_is_kept": 10,
        "optimized_params": [
            {
                "param": "config.hysr_config.robot_position:0",
                "distribution": "TruncatedNormal",
                "bounds": [-0.35, 0.35],
            }
        ],
    }


def _grid_search(tmp_path: Path) -> dict[str, Any]:
    """The shape of cluster_utils' examples/basic/grid_search.json."""
    return {
        "optimization_procedure_name": "gs",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "main.py",
        "remove_jobs_dir": False,
        "environment_setup": {"variables": {"A": "value"}},
        "cluster_requirements": {
            "request_cpus": 1,
            "memory_in_mb": 2048,
            "hostname_list": ["g018", "g025"],
        },
        "fixed_params": {"test_resume": False},
        "restarts": 2,
        "samples": None,
        "local_run": True,
        "hyperparam_list": [
            {"param": "fn_args.u", "values": [-0.5, 0.0, 0.5]},
            {"param": "fn_args.w", "values": [1, 2]},
        ],
    }


def _zipped_grid_search(tmp_path: Path) -> dict[str, Any]:
    """grid_search with a zipped entry: ``param`` lists names, each value is one row."""
    data = _grid_search(tmp_path)
    data["restarts"] = 1
    data["hyperparam_list"] = [
        {"param": "fn_args.u", "values": [-0.5, 0.5]},
        {"param": ["fn_args.w", "opt.name"], "values": [[1, "adam"], [2, "adam"], [2, "sgd"]]},
    ]
    return data


def _repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


PRE_JOB = './pre_job_script.sh || exit $?; exec python3 "$@"'
CASES = [
    pytest.param(
        _hp_optimization,
        [],
        {
            "git_params": {"url": "<REPO>", "branch": "main"},
            "metric_to_optimize": "result",
            "minimize": True,
            "number_of_samples": 20,
            "n_jobs_per_iteration": 5,
            "n_completed_jobs_before_resubmit": 2,
            "launcher": "local",
            "n_best_jobs_to_keep": 5,
            "environment": {"OMP_NUM_THREADS": "1"},
            "interpreter": ["/bin/sh", "-c", PRE_JOB, "job"],
            "resources.n_cpus_per_job": 2,
            "resources.n_gpus_per_job": 1,
            "resources.mem_gb": 16000 / 1024,
            "slurm.partition": "gpu-2080ti",
            "resources.time_limit_min": 26 * 60 + 30,
            "slurm.extra_sbatch_options": ["--exclude=n1,n2", "--gpu-freq=high"],
            "resources.signal_lead_s": 300,
            "resources.timeout_signal": "USR1",
            "fixed_params": {"test_resume": False},
            "htcondor": {"bid": 1000},
        },
        id="hp_optimization",
    ),
    pytest.param(
        _lttfs,
        [],
        {
            "n_reruns": 3,  # learning_runs_per_job not given: run_learning's default
            "max_attempts": 2,
            "training_iterations": 2,
            "resources.n_cpus_per_job": 2,
            "resources.mem_gb": 15000 / 1024,
            "n_best_jobs_to_keep": 10,
            "htcondor": {"bid": 100},
            "metric_to_optimize": "mean_eprewmean",
            "minimize": False,
            "fixed_params": {
                "max_attempts": 2,
                "training_iterations": 2,
                "config": {"config_templates": "./hp_optim/config_templates_ppo.json"},
                "singularity": {
                    "image": "~/lttfs.sif",
                    "script": "./hp_optim/run_learning.py",
                },
            },
        },
        id="lttfs",
    ),
    pytest.param(
        _grid_search,
        ["+metric_to_optimize='loss'", "+minimize=True"],
        {
            "optimizer_str": "gridsearch",
            "number_of_samples": 6,
            "n_jobs_per_iteration": 6,
            "n_reruns": 2,
            "launcher": "local",
            "environment": {"A": "value"},
            "resources.mem_gb": 2.0,
            "htcondor.hostname_list": ["g018", "g025"],  # any one of them, not all at once
            "optimized_params": [
                {"param": "fn_args.u", "distribution": "Discrete", "options": [-0.5, 0.0, 0.5]},
                {"param": "fn_args.w", "distribution": "Discrete", "options": [1, 2]},
            ],
        },
        id="grid_search",
    ),
    pytest.param(
        _zipped_grid_search,
        ["+metric_to_optimize='loss'", "+minimize=True"],
        {
            "optimizer_str": "gridsearch",
            "number_of_samples": 6,  # 2 x 3 rows
            "n_jobs_per_iteration": 6,
            "n_reruns": 1,
            "optimized_params": [
                {"param": "fn_args.u", "distribution": "Discrete", "options": [-0.5, 0.5]},
                {
                    "param": ["fn_args.w", "opt.name"],
                    "distribution": "Discrete",
                    "options": [[1, "adam"], [2, "adam"], [2, "sgd"]],
                },
            ],
        },
        id="grid_search-zipped",
    ),
]


def _resolved(cfg: Any, dotted: str) -> Any:
    value = cfg.to_dict()
    for part in dotted.split("."):
        value = value[part]
    return json.loads(json.dumps(value, default=str))


@pytest.mark.parametrize(("make", "overrides", "expected"), CASES)
def test_cluster_utils_configs_translate_key_by_key(
    make: Any,
    overrides: list[str],
    expected: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(make(tmp_path)), encoding="utf-8")
    cfg = load_config(path, overrides)
    for key, value in expected.items():
        if key == "git_params":
            value = {**value, "url": str(repo)}
        got = _resolved(cfg, key)
        if isinstance(value, dict) and isinstance(got, dict):
            got = {k: v for k, v in got.items() if k in value}
        assert got == value, key


@pytest.mark.parametrize(("make", "overrides", "expected"), CASES)
def test_migrate_output_reloads_to_the_same_resolved_config(
    make: Any,
    overrides: list[str],
    expected: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    del expected
    monkeypatch.chdir(_repo(tmp_path / "repo"))
    old = tmp_path / "old.json"
    old.write_text(json.dumps(make(tmp_path)), encoding="utf-8")
    assert main(["migrate", str(old), *overrides]) == 0
    text = capsys.readouterr().out
    assert "# from optimization_setting.metric_to_optimize" in text or "hyperparam_list" in text
    assert "# from cluster_requirements.memory_in_mb (" in text
    new = tmp_path / "new.yaml"
    new.write_text(text, encoding="utf-8")
    assert load_config(new, []).to_dict() == load_config(old, overrides).to_dict()


def test_overrides_address_keys_as_the_file_writes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(_repo(tmp_path / "repo"))
    path = tmp_path / "old.json"
    data = _hp_optimization(tmp_path)
    del data["optimization_setting"]["run_local"]
    path.write_text(json.dumps(data), encoding="utf-8")
    overrides = [
        "optimization_setting.number_of_samples=16",
        "optimization_setting.run_local=False",
        "cluster_requirements.memory_in_mb=4096",
    ]
    cfg = load_config(path, overrides)
    assert (cfg.number_of_samples, cfg.launcher, cfg.resources.mem_gb) == (16, "slurm", 4.0)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        pytest.param(
            {"optimization_settings": {}},
            "optimization_settings",
            "did you mean 'optimization_setting'?",
            id="typo-of-a-cluster_utils-key",
        ),
        pytest.param(
            {"cluster_requirements": {"memory_in_gb": 4}},
            "cluster_requirements.memory_in_gb",
            "did you mean 'memory_in_mb'?",
            id="typo-in-a-section",
        ),
        pytest.param(
            {"fixed_params": {"max_attempts": 2}, "max_attempts": 5},
            "fixed_params.max_attempts",
            "is 2 but max_attempts is 5; give one value",
            id="lifecycle-key-twice",
        ),
        pytest.param(
            {"cluster_requirements": {"request_time": "soon"}},
            "cluster_requirements.request_time",
            "not a Slurm time limit: 'soon'",
            id="bad-time",
        ),
        pytest.param(
            {"hyperparam_list": [{"param": "w", "values": "{no_such_list}"}]},
            "hyperparam_list[0].values",
            "values must be a list, got '{no_such_list}'",
            id="grid-values-expression",
        ),
        pytest.param(
            {"hyperparam_list": [{"param": ["u", "w"], "values": [[1, 2], [3]]}]},
            "hyperparam_list[0].values[1]",
            "a zipped entry needs 2 values per element, one for each of u, w; got [3]",
            id="zipped-values-of-wrong-arity",
        ),
        pytest.param(
            {"hyperparam_list": [{"param": ["u", 3], "values": [[1, 2]]}]},
            "hyperparam_list[0].param",
            "param must be a parameter name or a list of names, got ['u', 3]",
            id="zipped-param-not-names",
        ),
        pytest.param(
            {"slurm": {"memory_in_mb": 2048}},
            "slurm.memory_in_mb",
            "in MB (under cluster_requirements); hpoptim's is slurm.mem_gb, in GB: mem_gb: 2",
            id="memory-in-mb-misplaced",
        ),
        pytest.param(
            {"environment_setup": {"run_as_module": True}},
            "environment_setup.run_as_module",
            "python -m",
            id="run-as-module",
        ),
    ],
)
def test_problems_name_the_key_as_written(
    change: dict[str, Any], path: str, message: str, tmp_path: Path
) -> None:
    data = _grid_search(tmp_path)
    data.update(change)
    file = tmp_path / "old.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file, ["+metric_to_optimize='loss'", "+minimize=True"])
    problems = {p.path: p.message for p in info.value.problems}
    assert message in problems[path]
    assert "optimizer_settings" not in problems[path]


def test_check_shows_one_warning_line_per_ignored_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text("", encoding="utf-8")
    data = _grid_search(tmp_path)
    data["cluster_requirements"].update({"bid": 800, "concurrency_limit": 10})
    data["kill_bad_jobs_early"] = True
    file = tmp_path / "old.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    assert main(["check", str(file), "+metric_to_optimize='loss'", "+minimize=True"]) == 0
    err = capfd.readouterr().err
    for key in ("bid", "concurrency_limit"):  # they mean something: no warning
        assert [x for x in err.splitlines() if f"cluster_requirements.{key}" in x] == []
    assert (
        "kill_bad_jobs_early: ignored: hpoptim stops settings early between chained training "
        "iterations only; set training_iterations"
    ) in err


def test_check_states_where_lifecycle_values_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text("", encoding="utf-8")
    data = _grid_search(tmp_path)
    del data["restarts"]
    data["fixed_params"] = {"learning_runs_per_job": 4, "training_iterations": 2}
    file = tmp_path / "old.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    assert main(["check", str(file), "+metric_to_optimize='loss'", "+minimize=True"]) == 0
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "fixed_params.learning_runs_per_job: -> n_reruns (also passed to the job)" in text
    assert "fixed_params.training_iterations: -> training_iterations" in text


def test_smart_settings_references_are_named_not_dropped(tmp_path: Path) -> None:
    data = _grid_search(tmp_path)
    data["fixed_params"] = {"fn_args.u": "{pairs[0]}", "name": "plain {text"}
    _, notes = translate(data, cwd=tmp_path)
    (note,) = [n for n in notes if n.path.startswith("fixed_params")]
    assert (note.path, note.kind) == ("fixed_params.fn_args.u", "translated")
    assert "evaluated in the job over its parameters by hpoptim.compat" in note.message


def test_smart_settings_expressions_of_the_config_are_evaluated(tmp_path: Path) -> None:
    data = _grid_search(tmp_path)
    data["hyperparam_list"] = [{"param": "w", "values": "{list(range(1, 4))}"}]
    data["optimization_procedure_name"] = "{results_dir.__class__.__name__}_gs"
    out, notes = translate(data, cwd=tmp_path)
    assert out["optimized_params"][0]["options"] == [1, 2, 3]
    assert out["optimization_procedure_name"] == "str_gs"
    evaluated = {n.path for n in notes if "evaluated as smart_settings does" in n.message}
    assert evaluated == {"hyperparam_list[0].values", "optimization_procedure_name"}


def test_smart_settings_imports_are_merged_under_the_importing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = _grid_search(tmp_path)
    base["git_params"] = {"branch": "master"}  # ignored: run_in_working_dir is true
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "grid_search.json").write_text(json.dumps(base), encoding="utf-8")
    child = {
        "__import__": "configs/grid_search.json",
        "optimization_procedure_name": "decorated",
        "cluster_requirements": {"memory_in_mb": 4096},
    }
    path = tmp_path / "configs" / "child.json"
    path.write_text(json.dumps(child), encoding="utf-8")
    cfg = load_config(path, ["+metric_to_optimize='loss'", "+minimize=True"])
    assert cfg.optimization_procedure_name == "decorated"
    assert cfg.resources.mem_gb == 4.0  # the importing file wins, key by key
    assert cfg.htcondor.hostname_list == ("g018", "g025")  # the imported rest
    assert cfg.git_params is None
    child["__import__"] = "configs/missing.json"
    path.write_text(json.dumps(child), encoding="utf-8")
    with pytest.raises(ConfigError, match="__import__: __import__ in .* 'configs/missing.json'"):
        load_config(path, [])


def test_untouched_native_configs_pass_through() -> None:
    data = {"optimization_procedure_name": "x", "n_reruns": 2, "fixed_params": {"a": 1}}
    assert translate(data) == (data, [])


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        pytest.param("90", 90, id="minutes"),
        pytest.param("10:30", 10.5, id="m:s"),
        pytest.param("1:00:00", 60, id="h:m:s"),
        pytest.param("2-3", 51 * 60, id="d-h"),
        pytest.param("1-0:30", 24 * 60 + 30, id="d-h:m"),
        pytest.param("1-0:0:30", 24 * 60 + 0.5, id="d-h:m:s"),
    ],
)
def test_slurm_time_formats(text: str, minutes: float) -> None:
    assert slurm_minutes(text) == minutes


JOB_IN_ENV = """\
import json, os, sys
from pathlib import Path
run_dir = Path(os.environ["HPOPTIM_RUN_DIR"])
seen = {
    "prefix": sys.prefix,
    "virtual_env": os.environ.get("VIRTUAL_ENV"),
    "variable": os.environ.get("MY_SETTING"),
    "pre_job": Path("pre_job_ran").read_text() if Path("pre_job_ran").exists() else None,
}
(run_dir / "seen.json").write_text(json.dumps(seen))
Path(os.environ["HPOPTIM_METRICS_FILE"]).write_text(json.dumps({"loss": 1.0}))
"""


@pytest.mark.integration
def test_jobs_run_in_the_virtualenv_after_the_pre_job_script_with_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import venv

    env_dir = tmp_path / "my venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "job.py").write_text(JOB_IN_ENV, encoding="utf-8")
    pre = work / "pre_job.sh"
    pre.write_text('#!/bin/sh\nprintf "%s" "$MY_SETTING" > pre_job_ran\n', encoding="utf-8")
    pre.chmod(0o755)
    data = {
        "optimization_procedure_name": "venv",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "environment_setup": {
            "virtual_env_path": str(env_dir),
            "pre_job_script": "pre_job.sh",
            "variables": {"MY_SETTING": "from cluster_utils"},
        },
        "cluster_requirements": {"request_cpus": 1},
        "optimizer_str": "random",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimization_setting": {
            "metric_to_optimize": "loss",
            "minimize": True,
            "number_of_samples": 1,
            "n_jobs_per_iteration": 1,
            "run_local": True,
        },
    }
    path = work / "cluster_utils.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main([str(path)]) == 0
    (seen_file,) = (tmp_path / "results" / "venv" / "jobs").rglob("seen.json")
    seen = json.loads(seen_file.read_text(encoding="utf-8"))
    assert Path(seen["prefix"]) == env_dir
    assert seen["virtual_env"] == str(env_dir)
    assert seen["variable"] == "from cluster_utils"
    assert seen["pre_job"] == "from cluster_utils"  # the variables are set before the script


CONDA_STEPS = 'export PATH=/envs/rl/bin:"$PATH"; exec python3 "$@"'


@pytest.mark.parametrize(
    ("setup", "interpreter"),
    [
        pytest.param({}, None, id="nothing-to-do"),
        pytest.param({"custom_python_executable_path": "/opt/py/bin/python"},
                     ["/opt/py/bin/python"], id="custom-python"),
        pytest.param({"is_python_script": False}, [], id="run-the-script-itself"),
        pytest.param({"conda_env_path": "/envs/rl"},
                     ["/bin/sh", "-c", CONDA_STEPS, "job"], id="conda"),
        pytest.param({"pre_job_script": "setup env.sh", "is_python_script": False},
                     ["/bin/sh", "-c", "./'setup env.sh' || exit $?; exec \"$@\"", "job"],
                     id="pre-job-then-executable"),
    ],
)  # fmt: skip
def test_environment_setup_becomes_the_job_command(
    setup: dict[str, Any], interpreter: list[str] | None, tmp_path: Path
) -> None:
    data = _grid_search(tmp_path)
    data["environment_setup"] = setup
    out, notes = translate(data, cwd=tmp_path)
    assert out.get("interpreter") == interpreter
    assert not [n for n in notes if n.kind == "error"]


def test_zipped_grid_settings_vary_together_in_the_product(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text("", encoding="utf-8")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_zipped_grid_search(tmp_path)), encoding="utf-8")
    overrides = ["+metric_to_optimize='loss'", "+minimize=True", "+seed=1"]
    assert main(["check", str(path), *overrides, "--show", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "grid: 6 setting(s); number_of_samples=6 runs all of them" in out
    shown = [line.strip().split(": ", 1)[1] for line in out if line.startswith("  ") and
             line.strip()[:1].isdigit()]  # fmt: skip
    assert shown == [
        f"fn_args.u={u}, fn_args.w={w}, opt.name={name!r}"
        for u in (-0.5, 0.5)
        for w, name in ((1, "adam"), (2, "adam"), (2, "sgd"))
    ]


METRIC_JOB = """\
import json, os
json.dump({"loss": 1.0}, open(os.environ["HPOPTIM_METRICS_FILE"], "w"))
"""


def test_htcondor_keys_go_to_the_htcondor_section_without_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text(METRIC_JOB, encoding="utf-8")
    data = _grid_search(tmp_path)
    data["restarts"] = 1
    data["hyperparam_list"] = [{"param": "fn_args.u", "values": [0.5]}]
    given = {
        "bid": 800,
        "cuda_requirement": "TARGET.CUDACapability >= 5.0",
        "gpu_memory_mb": 0,
        "concurrency_limit": 10,
        "concurrency_limit_tag": "gpu",
        "hostname_list": ["g018", "g025"],
        "extra_submission_options": {"+MaxRunningPrice": 100},
    }
    data["cluster_requirements"].update({**given, "max_cpus": 4})
    file = tmp_path / "old.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    overrides = ["+metric_to_optimize='loss'", "+minimize=True"]
    assert main([str(file), *overrides]) == 0
    recorded = json.loads((tmp_path / "results" / "gs" / "config.json").read_text())
    assert {k: recorded["htcondor"][k] for k in given} == {
        **given,
        "extra_submission_options": ["+MaxRunningPrice = 100"],
    }
    err = capfd.readouterr().err
    ignored = [x for x in err.splitlines() if "ignored" in x]
    assert ignored == [
        "[hpoptim] cluster_requirements.max_cpus: ignored: hpoptim has no use for it"
    ]
    cfg = load_config(file, overrides)
    assert cfg.htcondor.requirements() == (
        '(TARGET.CUDACapability >= 5.0) && (Machine == "g018" || Machine == "g025")'
    )
    assert cfg.htcondor.concurrency_limits() == "user.gpu:1000"


def test_hostname_list_is_refused_on_slurm_with_the_alternative(tmp_path: Path) -> None:
    file = tmp_path / "old.json"
    file.write_text(json.dumps(_grid_search(tmp_path)), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file, ["+metric_to_optimize='loss'", "+minimize=True", "launcher='slurm'"])
    problems = info.value.problems
    (problem,) = [p for p in problems if p.path == "htcondor.hostname_list"]
    assert "--nodelist asks for all of them" in problem.message
    assert "--launcher htcondor" in problem.message


def test_an_htcondor_key_is_dropped_when_null() -> None:
    data = {
        "optimization_procedure_name": "x",
        "cluster_requirements": {"bid": None, "max_cpus": 4},
    }
    out, notes = translate(data)
    assert "htcondor" not in out
    assert [(n.path, n.kind, n.message) for n in notes] == [
        ("cluster_requirements.bid", "translated", "dropped: not set"),
        ("cluster_requirements.max_cpus", "ignored", "ignored: hpoptim has no use for it"),
    ]


@pytest.mark.parametrize(
    ("on_path", "launcher"),
    [
        pytest.param(True, "htcondor", id="condor_submit-on-path"),
        pytest.param(False, "slurm", id="not"),
    ],
)
def test_run_local_false_picks_htcondor_where_condor_submit_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_path: bool, launcher: str
) -> None:
    if on_path:
        (tmp_path / "condor_submit").write_text("#!/bin/sh\n")
        (tmp_path / "condor_submit").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    out, _ = translate(
        {"optimization_procedure_name": "x", "optimization_setting": {"run_local": False}}
    )
    assert out["launcher"] == launcher


@pytest.mark.integration
def test_a_zipped_grid_search_runs_each_row_together_with_each_other_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text(METRIC_JOB, encoding="utf-8")
    file = tmp_path / "old.json"
    file.write_text(json.dumps(_zipped_grid_search(tmp_path)), encoding="utf-8")
    assert main([str(file), "+metric_to_optimize='loss'", "+minimize=True", "-q"]) == 0
    seen = []
    for params_file in (tmp_path / "results" / "gs" / "jobs").rglob("params.json"):
        params = json.loads(params_file.read_text(encoding="utf-8"))["params"]
        seen.append((params["fn_args"]["u"], params["fn_args"]["w"], params["opt"]["name"]))
    assert sorted(seen) == sorted(
        (u, w, name) for u in (-0.5, 0.5) for w, name in ((1, "adam"), (2, "adam"), (2, "sgd"))
    )


def test_a_zipped_value_of_the_wrong_length_fails_check_with_exit_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text("", encoding="utf-8")
    data = _zipped_grid_search(tmp_path)
    data["hyperparam_list"][1]["values"][2] = [2, "sgd", 0.1]
    file = tmp_path / "old.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    assert main(["check", str(file), "+metric_to_optimize='loss'", "+minimize=True"]) == 2
    problems = [x for x in capfd.readouterr().err.splitlines() if x.startswith("  ")]
    assert problems == [
        "  hyperparam_list[1].values[2]: a zipped entry needs 2 values per element, one for "
        "each of fn_args.w, opt.name; got [2, 'sgd', 0.1]"
    ]
    assert not (tmp_path / "results").exists()
