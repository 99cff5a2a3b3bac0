"""Validation rules: each with its exact message, all problems at once, unknown keys."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hpoptim.config import RunConfig, load_config_dict
from hpoptim.config.schema import schema_knows
from hpoptim.errors import ConfigError, ConfigProblem
from tests.config.conftest import minimal, problems_of

MUST_BE_INT_1 = "must be an integer >= 1, got "


def _with(**changes: Any) -> dict[str, Any]:
    data = minimal()
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


_DROP = object()


#: One case per rule: changes to the minimal config -> the one key path and its message.
RULE_CASES = [
    pytest.param(
        {"number_of_samples": _DROP},
        "number_of_samples",
        "required key is missing (Settings to evaluate in total)",
        id="required",
    ),
    pytest.param({"number_of_samples": 0}, "number_of_samples", MUST_BE_INT_1 + "0", id="ge1"),
    pytest.param(
        {"n_jobs_per_iteration": 2.5}, "n_jobs_per_iteration", MUST_BE_INT_1 + "2.5", id="int"
    ),
    pytest.param({"n_reruns": True}, "n_reruns", MUST_BE_INT_1 + "True", id="bool-not-int"),
    pytest.param({"max_attempts": "3"}, "max_attempts", MUST_BE_INT_1 + "'3'", id="str-not-int"),
    pytest.param(
        {"n_best_jobs_to_keep": -1},
        "n_best_jobs_to_keep",
        "must be an integer >= 0, got -1",
        id="ge0",
    ),
    pytest.param(
        {"max_failed_fraction": 1.5},
        "max_failed_fraction",
        "must be a number >= 0 and <= 1, got 1.5",
        id="fraction",
    ),
    pytest.param(
        {"job_timeout_min": 0},
        "job_timeout_min",
        "must be a number > 0 and <= 525600 or null, got 0",
        id="gt0",
    ),
    pytest.param(
        {"signal_lead_s": float("nan")},
        "signal_lead_s",
        "must be a number >= 0, got nan",
        id="nan",
    ),
    pytest.param(
        {"minimize": "yes"}, "minimize", "must be a boolean or null, got 'yes'", id="bool"
    ),
    pytest.param({"seed": "1"}, "seed", "must be an integer >= 0 or null, got '1'", id="seed"),
    pytest.param(
        {"launcher": "pbs"},
        "launcher",
        "must be 'htcondor', 'local', 'sge' or 'slurm', got 'pbs'",
        id="literal",
    ),
    pytest.param(
        {"metric_to_optimize": 3}, "metric_to_optimize", "must be a string or null, got 3", id="str"
    ),
    pytest.param({"results_dir": ""}, "results_dir", "must be a path, got ''", id="path"),
    pytest.param(
        {"interpreter": ["python", 3]},
        "interpreter",
        "must be a list of strings or null, got ['python', 3]",
        id="str-list",
    ),
    pytest.param(
        {"environment": {"A": 1}},
        "environment",
        "must be a mapping of strings to strings, got {'A': 1}",
        id="env",
    ),
    pytest.param(
        {"optimizer_settings": [1]},
        "optimizer_settings",
        "must be a mapping, got [1]",
        id="map",
    ),
    pytest.param(
        {"fixed_params": {"when": float("inf")}},
        "fixed_params",
        "must be a mapping, got {'when': inf}",
        id="not-json",
    ),
    pytest.param(
        {"fixed_params": {"model": 1, "model.lr": 2}},
        "fixed_params.model.lr",
        "conflicts with 'model'",
        id="fixed-conflict",
    ),
    pytest.param(
        {"optimization_procedure_name": "a/b"},
        "optimization_procedure_name",
        "must be usable as one directory name (no '/', not '.' or '..'), got 'a/b'",
        id="dir-name",
    ),
    pytest.param(
        {"optimization_procedure_name": ".."},
        "optimization_procedure_name",
        "must be usable as one directory name (no '/', not '.' or '..'), got '..'",
        id="dotdot",
    ),
    pytest.param(
        {"timeout_signal": "SIGTREM"},
        "timeout_signal",
        "must be a signal name such as 'SIGTERM', 'TERM' or 'USR1', got 'SIGTREM'; "
        "did you mean 'SIGTERM'?",
        id="signal",
    ),
    pytest.param(
        {"optimized_params": []},
        "optimized_params",
        "must be a non-empty list, got []",
        id="empty-space",
    ),
    pytest.param(
        {"optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [1, 0]}]},
        "optimized_params[0].bounds",
        "must satisfy low < high, got [1, 0]",
        id="space-entry",
    ),
    pytest.param(
        {"optimized_params": "x"},
        "optimized_params",
        "must be a list of mappings, got 'x'",
        id="space-type",
    ),
    pytest.param(
        {"run_in_working_dir": False},
        "git_params",
        "required when run_in_working_dir is false: give the repository to check out, "
        "or set run_in_working_dir: true",
        id="git-required",
    ),
    pytest.param(
        {"git_params": {"url": "https://example.org/r.git"}},
        "git_params",
        "must be null when run_in_working_dir is true (the script runs from the current "
        "directory); remove one of the two",
        id="git-and-working-dir",
    ),
    pytest.param(
        {"run_in_working_dir": False, "git_params": {"url": "u", "branch": "a", "tag": "b"}},
        "git_params",
        "give at most one of branch, tag, commit; got branch='a', tag='b'",
        id="git-refs",
    ),
    pytest.param(
        {"run_in_working_dir": False, "git_params": {"url": "u", "depth": 0}},
        "git_params.depth",
        "must be an integer >= 1 or null, got 0",
        id="git-depth",
    ),
    pytest.param(
        {"run_in_working_dir": False, "git_params": {"branch": "main"}},
        "git_params.url",
        "required key is missing (Repository URL or local path to clone)",
        id="git-url",
    ),
    pytest.param(
        {"slurm": {"mem_gb": -1}},
        "slurm.mem_gb",
        "must be a number > 0 or null, got -1",
        id="mem",
    ),
    pytest.param(
        {"slurm": {"poll_interval_s": 5, "max_poll_interval_s": 1}},
        "slurm.max_poll_interval_s",
        "must be >= poll_interval_s (5.0), got 1.0",
        id="poll",
    ),
    pytest.param(
        {"slurm": {"n_gpus_per_job": -1}},
        "slurm.n_gpus_per_job",
        "must be an integer >= 0, got -1",
        id="gpus",
    ),
    pytest.param({"slurm": 3}, "slurm", "must be a section (a mapping), got 3", id="section"),
    pytest.param(
        {"signal_lead_s": 10**400},
        "signal_lead_s",
        "must be a number >= 0, got " + repr(10**400)[:77] + "...",
        id="int-too-large-for-float",
    ),
    pytest.param(
        {"environment": {"A=B": "x"}},
        "environment.A=B",
        "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL character, got 'A=B'='x'",
        id="env-name-with-equals",
    ),
    pytest.param(
        {"environment": {"1A": "x"}},
        "environment.1A",
        "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL character, got '1A'='x'",
        id="env-name-digit",
    ),
    pytest.param(
        {"environment": {"A": "x\0"}},
        "environment.A",
        "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL character, "
        "got 'A'='x\\x00'",
        id="env-value-nul",
    ),
    pytest.param(
        {"singularity": {"image": "/dev/null", "env": {"a b": "1"}}},
        "singularity.env.a b",
        "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL character, got 'a b'='1'",
        id="container-env-name",
    ),
    pytest.param(
        {"local": {"n_parallel_jobs": 0}},
        "local.n_parallel_jobs",
        "must be an integer >= 1 or null, got 0",
        id="local",
    ),
    pytest.param(
        {"job_timeout_min": 0.5, "signal_lead_s": 30},
        "signal_lead_s",
        "must be shorter than the time limit (time_limit_min=0.5 min = 30 s), got 30: "
        "the job would be signalled as soon as it starts",
        id="lead-not-below-local-limit",
    ),
    pytest.param(
        {"launcher": "slurm", "slurm": {"time_limit_min": 1}, "signal_lead_s": 90},
        "signal_lead_s",
        "must be shorter than the time limit (time_limit_min=1 min = 60 s), got 90: "
        "the job would be signalled as soon as it starts",
        id="lead-not-below-slurm-limit",
    ),
]


@pytest.mark.parametrize(("changes", "path", "message"), RULE_CASES)
def test_each_rule_has_its_message(changes: dict[str, Any], path: str, message: str) -> None:
    problems = problems_of(_with(**changes))
    assert list(problems) == [path]
    if path.startswith("fixed_params."):  # the wording after this prefix belongs to space.nest
        assert problems[path].startswith(message)
    else:
        assert problems[path] == message


#: Unknown keys -> the key path and the suggestion.
UNKNOWN_CASES = [
    pytest.param({"n_sampels": 3}, "n_sampels", "'number_of_samples'", id="typo"),
    pytest.param({"num_reruns": 2}, "num_reruns", "'n_reruns'", id="synonym"),
    pytest.param({"learning_runs_per_job": 2}, "learning_runs_per_job", "'n_reruns'", id="cu"),
    pytest.param(
        {"num_best_jobs_whose_data_is_kept": 2},
        "num_best_jobs_whose_data_is_kept",
        "'n_best_jobs_to_keep'",
        id="cluster-utils",
    ),
    pytest.param({"slurm": {"partiton": "gpu"}}, "slurm.partiton", "'partition'", id="slurm"),
    pytest.param(
        {"resources": {"request_gpus": 2}},
        "resources.request_gpus",
        "'n_gpus_per_job'",
        id="gpus-in-resources",
    ),
    pytest.param(
        {"slurm": {"request_cpus": 2}},
        "slurm.request_cpus",
        "'resources.n_cpus_per_job'",
        id="cpus",
    ),
    pytest.param(
        {"local": {"n_paralel_jobs": 2}},
        "local.n_paralel_jobs",
        "'n_parallel_jobs'",
        id="local",
    ),
]


@pytest.mark.parametrize(("data", "path", "suggestion"), UNKNOWN_CASES)
def test_unknown_keys_suggest_and_list_the_valid_ones(
    data: dict[str, Any], path: str, suggestion: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_dict({**minimal(), **data})
    (problem,) = info.value.problems
    assert problem.path == path
    assert problem.message == f"unknown key; did you mean {suggestion}?"
    listing = str(info.value).splitlines()[-1]
    if "." not in path:
        assert listing.startswith(
            "valid keys at the top level: optimization_procedure_name, results_dir, "
            "script_relative_path"
        )
    else:
        assert listing.startswith(f"valid keys of {path.rsplit('.', 1)[0]}: ")


def test_unknown_key_far_from_any_lists_the_valid_keys_without_a_guess() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_dict({**minimal(), "local": {"zzz": 1}})
    assert str(info.value).splitlines()[1:] == [
        "  local.zzz: unknown key",
        "valid keys of local: n_parallel_jobs",
    ]


def test_the_valid_keys_are_listed_once_per_section_after_the_problems() -> None:
    data = {
        **minimal(),
        "n_sampels": 3,
        "zzz": 1,
        "local": {"zzz": 1, "n_paralel_jobs": 2},
        "slurm": {"qos": "q", "partion": "p"},
    }
    with pytest.raises(ConfigError) as info:
        load_config_dict(data)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid configuration (5 problem(s)):"
    assert all(line.startswith("  ") for line in lines[1:6])
    listings = lines[6:]
    assert sorted(line.partition(":")[0] for line in listings) == [
        "valid keys at the top level",
        "valid keys of local",
        "valid keys of slurm",
    ]
    assert "valid keys of local: n_parallel_jobs" in listings
    assert any("n_jobs_per_iteration" in line for line in listings)
    assert "valid:" not in "\n".join(lines[1:6])


def test_every_problem_is_reported_at_once() -> None:
    data = {
        **minimal(),
        "number_of_samples": 0,
        "n_sampels": 3,
        "minimize": "yes",
        "slurm": {"mem_gb": 0, "qos": 1},
        "optimized_params": [
            {"param": "x", "distribution": "Uniform", "bounds": [1, 0]},
            {"param": "y", "distribution": "Nope"},
        ],
    }
    del data["metric_to_optimize"]
    with pytest.raises(ConfigError) as info:
        load_config_dict(data)
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == sorted(
        [
            "n_sampels",
            "number_of_samples",
            "minimize",
            "metric_to_optimize",
            "slurm.mem_gb",
            "slurm.qos",
            "optimized_params[0].bounds",
            "optimized_params[1].distribution",
        ]
    )
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid configuration (8 problem(s)):"
    assert len(lines) == 9 + 1  # and the valid top-level keys, for n_sampels
    assert all(any(line.strip().startswith(p) for p in paths) for line in lines[1:9])
    assert lines[9].startswith("valid keys at the top level: ")


def test_check_runs_only_on_a_valid_schema_and_merges_its_problems() -> None:
    seen: list[RunConfig] = []

    def check(cfg: RunConfig) -> list[ConfigProblem]:
        seen.append(cfg)
        return [ConfigProblem("optimizer_str", "unknown"), ConfigProblem("", "also bad")]

    with pytest.raises(ConfigError) as info:
        load_config_dict({**minimal(), "seed": "x"}, check=check)
    assert not seen
    assert [p.path for p in info.value.problems] == ["seed"]
    source = Path("/somewhere/c.json")
    with pytest.raises(ConfigError) as info:
        load_config_dict(minimal(), check=check, source=source)
    assert len(seen) == 1
    assert info.value.source == source
    assert str(info.value).splitlines() == [
        f"invalid configuration in {source} (2 problem(s)):",
        "  optimizer_str: unknown",
        "  also bad",
    ]
    assert load_config_dict(minimal(), check=lambda cfg: []).number_of_samples == 4


def test_defaults_and_conversions() -> None:
    cfg = load_config_dict(
        {**minimal(), "slurm": None, "signal_lead_s": 5, "timeout_signal": "usr1"}
    )
    assert cfg.resources.n_cpus_per_job == 1
    assert cfg.slurm.use_job_arrays is True
    assert cfg.local.n_parallel_jobs is None
    assert cfg.singularity is None
    assert cfg.optimizer_str == "tpe_cmaes"
    assert cfg.n_reruns == 1
    assert cfg.max_attempts == 3
    assert isinstance(cfg.resources.signal_lead_s, float)
    assert cfg.resources.signal_lead_s == 5.0
    assert cfg.resources.timeout_signal == "usr1"
    assert cfg.fixed_params == {}
    assert cfg.environment == {}
    with pytest.raises(AttributeError):
        cfg.number_of_samples = 3  # type: ignore[misc]


def test_fixed_params_flat_nested_and_mixed_are_normalised() -> None:
    flat = load_config_dict({**minimal(), "fixed_params": {"a.b": 1, "a.c": 2, "d:1": 3}})
    nested = load_config_dict({**minimal(), "fixed_params": {"a": {"b": 1, "c": 2}, "d:1": 3}})
    mixed = load_config_dict({**minimal(), "fixed_params": {"a": {"b": 1}, "a.c": 2, "d:1": 3}})
    assert flat.fixed_params == nested.fixed_params == mixed.fixed_params
    assert flat.fixed_params == {"a": {"b": 1, "c": 2}, "d:1": 3}


def test_search_space_is_built_once() -> None:
    cfg = load_config_dict(minimal())
    space = cfg.search_space()
    assert space.names == ("x",)
    assert cfg.search_space() is space


def test_to_dict_is_json_and_round_trips(tmp_path: Path) -> None:
    image = tmp_path / "img.sif"
    image.write_text("")
    data = {
        **minimal(),
        "run_in_working_dir": False,
        "git_params": {"url": "https://example.org/r.git", "tag": "v1", "cache_dir": "~/cache"},
        "fixed_params": {"model.lr": 0.1, "env": {"n": [1, 2]}},
        "interpreter": ["python3"],
        "environment": {"A": "1"},
        "slurm": {"mem_gb": 4, "extra_sbatch_options": ["--exclusive"]},
        "singularity": {"image": str(image), "bind": ["/data"], "env": {"B": "2"}},
        "seed": 5,
    }
    cfg = load_config_dict(data)
    saved = json.loads(json.dumps(cfg.to_dict()))
    assert saved == cfg.to_dict()
    assert load_config_dict(saved) == cfg
    assert saved["git_params"]["cache_dir"] == str(Path.home() / "cache")
    assert saved["results_dir"] == "/tmp/hpoptim-config-tests"
    assert saved["resources"]["mem_gb"] == 4.0
    assert "mem_gb" not in saved["slurm"]
    assert saved["interpreter"] == ["python3"]
    assert set(saved) == set(type(cfg).model_fields)
    assert isinstance(cfg, RunConfig)


@pytest.mark.parametrize(
    ("results_dir", "expected"),
    [
        pytest.param("results", "cwd/results", id="relative"),
        pytest.param("./a/../results/", "cwd/results", id="normalised"),
        pytest.param("~/res", "home/res", id="home"),
        pytest.param("/abs/res", "/abs/res", id="absolute"),
    ],
)
def test_results_dir_is_made_absolute_against_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results_dir: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    cfg = load_config_dict({**minimal(), "results_dir": results_dir})
    want = expected.replace("cwd", str(tmp_path)).replace("home", str(tmp_path / "h"))
    assert cfg.results_dir == Path(want)
    assert cfg.results_dir.is_absolute()
    monkeypatch.chdir("/")
    assert load_config_dict(cfg.to_dict()) == cfg  # the saved form no longer depends on the cwd


def test_singularity_image_expands_home_and_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    data = {**minimal(), "singularity": {"image": "~/images/train.sif", "executable": "docker"}}
    assert problems_of(data) == {
        "singularity.image": f"image file {str(tmp_path / 'images/train.sif')!r} does not exist",
        "singularity.executable": "must be 'apptainer', 'singularity' or null, got 'docker'",
    }
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "train.sif").write_text("")
    data["singularity"] = {"image": "~/images/train.sif", "nv": True}
    cfg = load_config_dict(data)
    assert cfg.singularity is not None
    assert cfg.singularity.image == tmp_path / "images/train.sif"
    assert cfg.singularity.nv
    assert cfg.singularity.executable is None
    assert os.path.isabs(cfg.to_dict()["singularity"]["image"])


@pytest.mark.parametrize(
    ("path", "known"),
    [
        pytest.param(("launcher",), True, id="top"),
        pytest.param(("slurm", "partition"), True, id="section-key"),
        pytest.param(("singularity", "image"), True, id="optional-section-key"),
        pytest.param(("slurm",), True, id="section"),
        pytest.param(("slurm", "nope"), False, id="unknown-in-section"),
        pytest.param(("fixed_params", "lr"), False, id="free-form"),
        pytest.param(("optimized_params", 0, "bounds"), False, id="list-element"),
        pytest.param(("seed", "x"), False, id="below-scalar"),
    ],
)
def test_schema_knows_its_keys(path: tuple[str | int, ...], known: bool) -> None:
    assert schema_knows(path) is known


#: Valid configs near the signal-lead rule.
VALID_CASES = [
    pytest.param({"job_timeout_min": 1, "signal_lead_s": 59.5}, id="local-lead-below-limit"),
    pytest.param({"signal_lead_s": 600}, id="no-limit"),
    # one time limit for every launcher, under its old names too
    pytest.param(
        {"launcher": "slurm", "resources": {"time_limit_min": 5, "signal_lead_s": 200}},
        id="slurm-lead-below-limit",
    ),
    pytest.param({"slurm": {"time_limit_min": 1}, "signal_lead_s": 59}, id="old-names"),
]


@pytest.mark.parametrize("changes", VALID_CASES)
def test_signal_lead_below_the_limit_that_applies_is_valid(changes: dict[str, Any]) -> None:
    load_config_dict(_with(**changes))


def test_rules_over_several_keys_join_the_other_problems() -> None:
    data = {
        **minimal(),
        "number_of_samples": 0,
        "run_in_working_dir": False,
        "fixed_params": {"x": 1},
        "slurm": {"qos": 1},
    }
    assert problems_of(data) == {
        "number_of_samples": MUST_BE_INT_1 + "0",
        "slurm.qos": "must be a string or null, got 1",
        "git_params": "required when run_in_working_dir is false: give the repository to check "
        "out, or set run_in_working_dir: true",
        "fixed_params.x": "overlaps the optimised parameter 'x'; give each parameter in one place",
    }
    # a rule whose keys are themselves wrong waits until they are right
    assert problems_of({**data, "run_in_working_dir": "no"}).keys() == {
        "number_of_samples",
        "slurm.qos",
        "run_in_working_dir",
        "fixed_params.x",
    }


def test_an_old_key_fills_a_resources_section_given_as_null() -> None:
    cfg = load_config_dict(_with(resources=None, slurm={"mem_gb": 2}))
    assert cfg.resources.mem_gb == 2
    assert cfg.notes == ("slurm.mem_gb is now resources.mem_gb; read it as resources.mem_gb: 2",)


def test_an_old_key_beside_a_resources_that_is_not_a_section_leaves_the_error_to_it() -> None:
    problems = problems_of(_with(resources=5, job_timeout_min=5))
    assert problems["resources"] == "must be a section (a mapping), got 5"
