"""Bad configs through the command line: exit 2, one line per problem naming its key,
no traceback, nothing written; and ``check`` and ``run`` always agree."""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pytest

from hpoptim.cli import main
from hpoptim.config import translate_dialect
from hpoptim.config.schema import (
    GitParams,
    JobResources,
    SingularityConfig,
    run_config_model,
)
from hpoptim.launchers.htcondor import HTCondorSettings
from hpoptim.launchers.local import LocalSettings
from hpoptim.launchers.sge import SgeSettings
from hpoptim.launchers.slurm import SlurmSettings
from hpoptim.run.loop import Optimization
from hpoptim.samplers import SAMPLERS
from hpoptim.sections import Section
from hpoptim.state.storage import ResultsLayout
from hpoptim.stopping import settings_models as stopping_models
from tests.config.conftest import minimal
from tests.config.test_schema import _DROP, RULE_CASES, UNKNOWN_CASES, VALID_CASES


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd holding the job script, an image file; ``run`` stops before the first submit."""
    (tmp_path / "job.py").write_text("print('never run here')\n")
    (tmp_path / "img.sif").write_text("")
    monkeypatch.chdir(tmp_path)

    def stop_at_loop(self: Optimization, stop: Any = None) -> Any:
        return self.history  # every part was built from the config: the run would start

    monkeypatch.setattr(Optimization, "run", stop_at_loop)
    return tmp_path


def _config(workdir: Path, changes: dict[str, Any]) -> dict[str, Any]:
    data = {**minimal(), "results_dir": str(workdir / "results")}
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _write(workdir: Path, data: dict[str, Any]) -> Path:
    path = workdir / "config.json"
    path.write_text(json.dumps(data))
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _refused_with_listings(
    workdir: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[list[str], list[str]]:
    """Run and check ``data``; both exit 2 with the same lines.

    Returns the problem lines and the lines listing a section's valid keys after them.
    """
    path = _write(workdir, data)
    run_code, run_err = _cli(["run", str(path)], capsys)
    check_code, check_err = _cli(["check", str(path)], capsys)
    assert (run_code, run_err) == (check_code, check_err)
    assert run_code == 2, run_err
    assert "Traceback" not in run_err
    assert not (workdir / "results").exists(), "a refused config must write nothing"
    head, *lines = run_err.rstrip("\n").splitlines()
    problems = [line for line in lines if line.startswith("  ")]
    listings = lines[len(problems) :]
    assert head.startswith(f"hpoptim: error: invalid configuration in {path} (")
    assert head.endswith(f"({len(problems)} problem(s)):")
    assert all(": " in line for line in problems)
    assert all(line.startswith("valid keys ") for line in listings), listings
    return [line.strip() for line in problems], listings


def _refused(workdir: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run and check ``data``; both exit 2 with the same lines. Returns the problem lines."""
    return _refused_with_listings(workdir, data, capsys)[0]


# -- check and run agree on every case of the config suite ---------------------------------
@pytest.mark.parametrize(("changes", "path", "message"), RULE_CASES)
def test_check_and_run_refuse_each_rule_alike(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, Any],
    path: str,
    message: str,
) -> None:
    lines = _refused(workdir, _config(workdir, changes), capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: {message}")


@pytest.mark.parametrize(("data", "path", "suggestion"), UNKNOWN_CASES)
def test_check_and_run_refuse_unknown_keys_alike(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    data: dict[str, Any],
    path: str,
    suggestion: str,
) -> None:
    config = _config(workdir, data)
    if translate_dialect(config)[1]:  # a cluster_utils key: a config file may use it
        path_ = _write(workdir, config)
        assert _cli(["check", str(path_)], capsys)[0] == _cli(["run", str(path_)], capsys)[0] == 0
        return
    lines = _refused(workdir, config, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: unknown key; did you mean {suggestion}?")


@pytest.mark.parametrize(
    "changes",
    [
        *VALID_CASES,
        pytest.param({}, id="minimal"),
        pytest.param(
            {"launcher": "slurm", "slurm": {"extra_sbatch_options": ["--constraint=a100"]}},
            id="slurm-option",
        ),
        pytest.param({"resources": {"n_cpus_per_job": 2, "mem_gb": 1}}, id="resources"),
    ],
)
def test_check_and_run_accept_valid_configs_alike(
    workdir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any]
) -> None:
    path = _write(workdir, _config(workdir, changes))
    check_code, check_err = _cli(["check", str(path)], capsys)
    run_code, _ = _cli(["run", str(path)], capsys)
    assert (check_code, run_code) == (0, 0), check_err
    # run built every part (checkout, sampler, launcher) and journaled its start
    assert ResultsLayout(workdir / "results" / "t").journal.exists()


def test_a_slurm_option_check_accepts_is_one_run_accepts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported bug: check said OK, run refused it at the launcher."""
    bad = {"launcher": "slurm", "slurm": {"extra_sbatch_options": ["constraint=a100"]}}
    assert _refused(workdir, _config(workdir, bad), capsys) == [
        "slurm.extra_sbatch_options[0]: must be one option such as '--constraint=a100', "
        "got 'constraint=a100'"
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"slurm": {"poll_interval_s": 5.0, "max_poll_interval_s": 1.0, "partiton": "gpu"}},
            [
                "slurm.partiton: unknown key; did you mean 'partition'?",
                "slurm.max_poll_interval_s: must be >= poll_interval_s (5.0), got 1.0",
            ],
            id="slurm",
        ),
        pytest.param(
            {"resources": {"time_limit_min": 1, "signal_lead_s": 90, "n_cpus_per_job": 0}},
            [
                "resources.n_cpus_per_job: must be an integer >= 1, got 0",
                "resources.signal_lead_s: must be shorter than the time limit (time_limit_min=1 "
                "min = 60 s), got 90: the job would be signalled as soon as it starts",
            ],
            id="resources",
        ),
        pytest.param(
            {
                "run_in_working_dir": False,
                "git_params": {"url": "u", "branch": "a", "tag": "b", "zzz": 1},
            },
            [
                "git_params.zzz: unknown key",
                "git_params: give at most one of branch, tag, commit; got branch='a', tag='b'",
            ],
            id="git_params",
        ),
        pytest.param(
            {"run_in_working_dir": False, "zzz": 1},
            [
                "zzz: unknown key",
                "git_params: required when run_in_working_dir is false: give the repository to "
                "check out, or set run_in_working_dir: true",
            ],
            id="top-level",
        ),
        pytest.param(
            {"optimizer_str": "tpe", "optimizer_settings": {"zzz": 1}, "seed": -1},
            [
                "seed: must be an integer >= 0 or null, got -1",
                "optimizer_settings.zzz: unknown key 'zzz' for 'tpe'",
            ],
            id="sampler-settings",
        ),
        pytest.param(
            {"optimizer_str": "tpee", "seed": -1},
            [
                "seed: must be an integer >= 0 or null, got -1",
                "optimizer_str: unknown optimizer 'tpee'; valid: "
                + ", ".join(SAMPLERS)
                + "; did you mean 'tpe'?",
            ],
            id="sampler-name",
        ),
        pytest.param(  # a rule reading an invalid key is not applied: its value is unknown
            {"slurm": {"poll_interval_s": "x", "max_poll_interval_s": 1.0, "zzz": 1}},
            ["slurm.poll_interval_s: must be a number > 0, got 'x'", "slurm.zzz: unknown key"],
            id="rule-on-an-invalid-key",
        ),
    ],
)
def test_rules_over_several_keys_are_reported_with_the_other_problems(
    workdir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], expected: list[str]
) -> None:
    assert sorted(_refused(workdir, _config(workdir, changes), capsys)) == sorted(expected)


@pytest.mark.parametrize(
    ("changes", "listing"),
    [
        pytest.param(
            {"optimizer_str": "cem_metaoptimizer", "optimizer_settings": {"zzz": 1, "yyy": 2}},
            "valid keys of optimizer_settings: min_spread, momentum, num_jobs_in_elite, "
            "restart_probability, with_restarts",
            id="sampler",
        ),
        pytest.param(
            {"local": {"zzz": 1, "yyy": 2}},
            "valid keys of local: n_parallel_jobs",
            id="launcher",
        ),
        pytest.param(
            {"zzz": 1, "yyy": 2},
            "valid keys at the top level: optimization_procedure_name, results_dir, ",
            id="top-level",
        ),
        pytest.param(
            {
                "optimized_params": [
                    {"param": "x", "distribution": "Uniform", "bounds": [0, 1], "zzz": 1, "yyy": 2}
                ]
            },
            "valid keys of optimized_params[0]: bounds, distribution, param",
            id="search-space",
        ),
        pytest.param(
            {"optimization_setting": {"zzz": 1, "yyy": 2}},
            "valid keys of optimization_setting: metric_to_optimize, minimize, number_of_samples",
            id="cluster_utils",
        ),
    ],
)
def test_two_unknown_keys_of_one_section_list_its_valid_keys_once(
    workdir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], listing: str
) -> None:
    problems, listings = _refused_with_listings(workdir, _config(workdir, changes), capsys)
    assert [line.split(":")[0].rsplit(".", 1)[-1] for line in problems] == ["zzz", "yyy"]
    assert not any("valid" in line for line in problems)
    assert len(listings) == 1
    assert listings[0].startswith(listing)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        pytest.param(
            {"optimizer_str": "randm"},
            f"optimizer_str: unknown optimizer 'randm'; valid: {', '.join(SAMPLERS)}; "
            "did you mean 'random'?",
            id="unknown-sampler",
        ),
        pytest.param(
            {"optimizer_str": "random", "optimizer_settings": {"shuffle": True}},
            "optimizer_settings.shuffle: unknown key 'shuffle' for 'random'",
            id="sampler-setting",
        ),
    ],
)
def test_check_and_run_apply_the_samplers_rules_alike(
    workdir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], line: str
) -> None:
    lines = _refused(workdir, _config(workdir, changes), capsys)
    assert len(lines) == 1
    assert lines[0].startswith(line)


# -- validation gaps -----------------------------------------------------------------------
UNIFORM = {"param": "x", "distribution": "Uniform"}


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        pytest.param({"seed": -1}, "seed: must be an integer >= 0 or null, got -1", id="seed"),
        pytest.param(
            {"fixed_params": {"x": 1}},
            "fixed_params.x: overlaps the optimised parameter 'x'",
            id="fixed-overlaps-optimised",
        ),
        pytest.param(
            {"fixed_params": {"x": {"y": 1}}},
            "fixed_params.x.y: overlaps the optimised parameter 'x'",
            id="fixed-inside-optimised",
        ),
        pytest.param(
            {"fixed_params": {"a..b": 1}},
            "fixed_params.a..b: must be a dotted name without empty parts",
            id="empty-part",
        ),
        pytest.param(
            {"metric_to_optimize": ""},
            "metric_to_optimize: must be a non-empty string or null, got ''",
            id="empty-metric",
        ),
        pytest.param(
            {"interpreter": []},
            "interpreter: must be a non-empty list of strings or null, got []",
            id="empty-interpreter",
        ),
        pytest.param(
            {"job_timeout_min": 1e12},
            "job_timeout_min: must be a number > 0 and <= 525600 or null, got 1000000000000.0",
            id="huge-timeout-old-key",
        ),
        pytest.param(
            {"resources": {"time_limit_min": 10**9}},
            "resources.time_limit_min: must be a number > 0 and <= 525600 or null, got 1000000000",
            id="huge-time-limit",
        ),
        pytest.param(
            {"optimized_params": [{**UNIFORM, "bounds": [-1e308, 1e308]}]},
            "optimized_params[0].bounds: must be less than 1e308 apart, got [-1e+308, 1e+308]",
            id="width-overflow",
        ),
        pytest.param(
            {"optimized_params": [{**UNIFORM, "bounds": [0, math.inf]}]},
            "optimized_params[0].bounds: must be two finite numbers [low, high], got [0, inf]",
            id="inf-bound",
        ),
        pytest.param(
            {"optimized_params": [{**UNIFORM, "bounds": [math.nan, 1]}]},
            "optimized_params[0].bounds: must be two finite numbers [low, high], got [nan, 1]",
            id="nan-bound",
        ),
        pytest.param(
            {"job_timeout_min": 5, "resources": {"time_limit_min": 6}},
            "job_timeout_min: is the old name of resources.time_limit_min, which is also given "
            "(as resources.time_limit_min) with a different value: 5 here, 6 there; remove one",
            id="old-and-new-key-differ",
        ),
    ],
)
def test_each_gap_is_refused_with_one_line_naming_the_key(
    workdir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], line: str
) -> None:
    lines = _refused(workdir, _config(workdir, changes), capsys)
    assert len(lines) == 1
    assert lines[0].startswith(line)


def test_a_key_given_twice_in_a_json_config_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(_config(workdir, {"slurm": {"qos": "a"}}))
    text = text.replace('"qos": "a"', '"qos": "a", "qos": "b"')
    text = text.replace('"minimize": true', '"minimize": true, "minimize": false')
    (workdir / "config.json").write_text(text)
    path = workdir / "config.json"
    for command in ("run", "check"):
        code, err = _cli([command, str(path)], capsys)
        assert code == 2
        assert err.splitlines()[1:] == [
            "  minimize: duplicate key: a key may appear once in a mapping",
            "  slurm.qos: duplicate key: a key may appear once in a mapping",
        ]
    assert not (workdir / "results").exists()


def test_an_old_key_is_read_as_its_new_name_with_a_note(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(workdir, _config(workdir, {"slurm": {"mem_gb": 2}}))
    code, err = _cli(["check", str(path)], capsys)
    assert code == 0
    assert err.splitlines() == [
        "hpoptim: note: slurm.mem_gb is now resources.mem_gb; read it as resources.mem_gb: 2"
    ]


def test_a_run_saves_the_old_keys_under_their_new_names(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = {"job_timeout_min": 5, "slurm": {"n_cpus_per_job": 2, "partition": "gpu"}}
    path = _write(workdir, _config(workdir, old))
    code, err = _cli(["run", str(path)], capsys)
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith("hpoptim: note:")] == [
        "hpoptim: note: job_timeout_min is now resources.time_limit_min; read it as "
        "resources.time_limit_min: 5",
        "hpoptim: note: slurm.n_cpus_per_job is now resources.n_cpus_per_job; read it as "
        "resources.n_cpus_per_job: 2",
    ]
    saved = json.loads(ResultsLayout(workdir / "results" / "t").config_file.read_text())
    assert "job_timeout_min" not in saved
    assert saved["resources"]["time_limit_min"] == 5.0
    assert saved["resources"]["n_cpus_per_job"] == 2
    assert saved["slurm"]["partition"] == "gpu"
    assert "n_cpus_per_job" not in saved["slurm"]


# -- a generated suite of bad configs --------------------------------------------------------
#: Each section: where it sits and what it needs around it to be checked on its own.
SECTIONS: list[tuple[str, type[Section], dict[str, Any]]] = [
    ("", run_config_model(), {}),
    ("resources", JobResources, {}),
    ("local", LocalSettings, {}),
    ("slurm", SlurmSettings, {"launcher": "slurm"}),
    ("htcondor", HTCondorSettings, {"launcher": "htcondor"}),
    ("sge", SgeSettings, {"launcher": "sge"}),
    ("git_params", GitParams, {"run_in_working_dir": False, "git_params": {"url": "u"}}),
    ("singularity", SingularityConfig, {"singularity": {"image": "img.sif"}}),
    *(
        (
            "early_stopping",
            model,
            {
                "training_iterations": 4,
                "early_stopping": {
                    "method": method,
                    **({"lower": 0.0} if method == "threshold" else {}),
                },
            },
        )
        for method, model in stopping_models().items()
    ),
]


#: Keys that take a number or a string alike (a number is written as a string).
TAKES_ANY_SCALAR = {"htcondor.cuda_requirement"}


def _wrong_value(annotation: Any) -> Any:
    """A value of the wrong type for a key declared as ``annotation``."""
    words = str(annotation)
    if annotation is bool:
        return "yes"
    if annotation is str or "str |" in words or words.startswith("typing.Annotated[str"):
        return 3
    if annotation in (int, float) or "int |" in words or "float |" in words:
        return "12"
    if "tuple" in words or "list" in words:
        return 5
    if "dict" in words or "Mapping" in words:
        return [1]
    return 3  # a section, a path, a literal


def _out_of_bounds(field: Any) -> Iterator[tuple[str, Any]]:
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            yield "below", m.ge - 1
        elif isinstance(m, annotated_types.Gt):
            yield "at", m.gt
        elif isinstance(m, annotated_types.Le):
            yield "above", m.le + 1


def _generated() -> Iterator[Any]:
    for section, model, around in SECTIONS:
        for name, field in model.model_fields.items():
            where = f"{section}.{name}" if section else name
            wrong = [1] if where in TAKES_ANY_SCALAR else _wrong_value(field.annotation)
            cases = [("type", wrong, where)]
            cases += [(why, value, where) for why, value in _out_of_bounds(field)]
            cases.append(("typo", 1, f"{where}x"))
            for why, value, path in cases:
                key = path.rpartition(".")[2]
                if section:
                    changes = {**around, section: {**around.get(section, {}), key: value}}
                else:
                    changes = {**around, key: value}
                method = around.get(section, {}).get("method")  # early_stopping: one per method
                tag = f"[{method}]" if method else ""
                yield pytest.param(changes, path, id=f"{where}{tag}-{why}")


GENERATED = list(_generated())


def test_the_generated_suite_is_large() -> None:
    assert len(GENERATED) >= 100


@pytest.mark.parametrize(("changes", "path"), GENERATED)
def test_generated_bad_config_is_refused_with_one_line_naming_the_key(
    workdir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], path: str
) -> None:
    lines = _refused(workdir, _config(workdir, changes), capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: "), lines
    _, _, message = lines[0].partition(": ")
    assert message.startswith(("must be", "unknown key", "image file")), message


def test_every_section_of_the_config_is_in_the_generated_suite() -> None:
    sections = {name for name, _, _ in SECTIONS if name}
    model = run_config_model()
    nested = {
        name
        for name, field in model.model_fields.items()
        if any(
            isinstance(a, type) and issubclass(a, Section)
            for a in (field.annotation, *typing.get_args(field.annotation))
        )
    }
    assert nested == sections
