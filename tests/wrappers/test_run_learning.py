"""wrappers/run_learning.py, run as a real subprocess on generated params files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import ConfigProblem
from hpoptim.results.failure import failure_cause
from hpoptim.run.learning import template_problems, uses_templates
from hpoptim.space import flatten, nest

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "wrappers" / "run_learning.py"

FAKE_LEARNER = """\
import json, os, signal, sys, time
from pathlib import Path

assert Path(sys.argv[-1]).parent == Path.cwd()  # the learner runs in its run directory
text = Path(sys.argv[-1]).read_text(encoding="utf-8")
yaml_main = sys.argv[-1].endswith(".yaml")
main = __import__("yaml").safe_load(text) if yaml_main else json.loads(text)
assert all(isinstance(v, str) for v in main.values())  # the index's flat shape
main.update(json.loads(Path("run_info.json").read_text(encoding="utf-8")))
assert main["output_dir"] == os.environ["HPOPTIM_OUTPUT_DIR"]
run_dir = Path(main["run_dir"])
argv = [sys.executable, *sys.argv]
(run_dir / "learner_started.json").write_text(json.dumps(argv), encoding="utf-8")
plan = json.loads(os.environ.get("FAKE_LEARNER", "{}"))
out = Path(main["output_dir"])
out.mkdir(parents=True, exist_ok=True)
for name, text in plan.get("files", {}).items():
    (out / name).write_text(text, encoding="utf-8")
if plan.get("wait_for_signal"):
    def on_signal(signum, frame):
        (run_dir / "got_signal").write_text(str(signum), encoding="utf-8")
        sys.exit(3)
    signal.signal(signal.SIGTERM, on_signal)
    (run_dir / "ready").write_text("", encoding="utf-8")
    time.sleep(60)
sys.stderr.write(plan.get("stderr", ""))
sys.exit(plan.get("exit", 0))
"""

RL_TEMPLATE: dict[str, Any] = {
    "train_steps": 100,
    "policy": {"net_arch": list(range(12)), "activation": "tanh", "head": {"size": 4}},
    "optimizer": {"lr": 0.01, "betas": [0.9, 0.999]},
    "extra": {"__extensible__": True, "tag": "x"},
}
ENV_TEMPLATE: dict[str, Any] = {"name": "reach", "obs_dim": 4}
GOOD_CSV = "step,reward\n1,0.5\n2,0.75\n"


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout root holding templates (index in idx/, templates in tpl/) and a learner."""
    root = tmp_path / "checkout"
    _write_json(root / "tpl" / "rl.json", RL_TEMPLATE)
    _write_json(root / "tpl" / "env.json", ENV_TEMPLATE)
    _write_json(
        root / "idx" / "index.json", {"rl_config": "../tpl/rl.json", "env": "../tpl/env.json"}
    )
    (root / "learner.py").write_text(FAKE_LEARNER, encoding="utf-8")
    return root


def _fixed(**extra: Any) -> dict[str, Any]:
    return {
        "config.config_templates": "idx/index.json",
        "learner.command": ["{python}", "learner.py"],
        "learner.metric_file": "progress.csv",
        "learner.metric_key": "reward",
        **extra,
    }


def _run(
    root: Path,
    fixed: dict[str, Any],
    sampled: dict[str, Any] | None = None,
    *,
    plan: dict[str, Any] | None = None,
    job: dict[str, Any] | None = None,
    run_name: str = "run_0.0-0",
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    run_dir = root.parent / "jobs" / run_name
    run_dir.mkdir(parents=True)
    sampled = sampled or {}
    context = {
        "job_id": "0-0-0-0", "setting_id": 0, "rerun": 0, "iteration": 0, "attempt": 0,
        "n_iterations": 1, "seed": 42, "run_dir": str(run_dir), "setting_dir": str(run_dir.parent),
        "previous_run_dir": None, "metrics_file": str(run_dir / "metrics.json"), **(job or {}),
    }  # fmt: skip
    document = {
        "params": nest({**flatten(nest(fixed)), **sampled}),
        "flat_params": {**flatten(nest(fixed)), **sampled},
        "job": context,
    }
    params = _write_json(run_dir / "params.json", document)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HPOPTIM_")}
    full_env["FAKE_LEARNER"] = json.dumps({"files": {"progress.csv": GOOD_CSV}} | (plan or {}))
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(WRAPPER), str(params)],
        cwd=root, env=full_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return proc, run_dir


def _config(run_dir: Path, name: str) -> Any:
    return json.loads((run_dir / "config" / f"{name}.json").read_text(encoding="utf-8"))


def _metrics(run_dir: Path) -> Any:
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


# -- template index ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        pytest.param("../tpl/rl.json", "checkout", id="relative-to-index-dir"),
        pytest.param("~/home_tpl/rl.json", "home", id="tilde"),
        pytest.param("ABS", "abs", id="absolute"),
    ],
)
def test_index_paths_resolve(checkout: Path, tmp_path: Path, entry: str, where: str) -> None:
    home = tmp_path / "home"
    distinct = {"checkout": 1, "home": 2, "abs": 3}[where]
    template = {**RL_TEMPLATE, "train_steps": distinct}
    _write_json(home / "home_tpl" / "rl.json", template)
    absolute = _write_json(tmp_path / "elsewhere" / "rl.json", template)
    if where == "checkout":
        _write_json(checkout / "tpl" / "rl.json", template)
    entry = str(absolute) if entry == "ABS" else entry
    _write_json(checkout / "idx" / "index.json", {"rl_config": entry})
    proc, run_dir = _run(checkout, _fixed(), env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert _config(run_dir, "rl_config")["train_steps"] == distinct


def test_index_path_relative_to_working_dir_or_absolute(checkout: Path) -> None:
    absolute = str(checkout / "idx" / "index.json")
    proc, run_dir = _run(checkout, _fixed(**{"config.config_templates": absolute}))
    assert proc.returncode == 0, proc.stderr
    main = json.loads((run_dir / "main_config.json").read_text(encoding="utf-8"))
    assert sorted(main) == ["env", "rl_config"]
    assert _config(run_dir, "env") == ENV_TEMPLATE


# -- patching ------------------------------------------------------------------------------


def test_nested_keys_and_multi_digit_indexes_patch_only_their_leaf(checkout: Path) -> None:
    sampled = {
        "config.rl_config.policy.net_arch:11": 512,
        "config.rl_config.policy.net_arch:10": 256,
        "config.rl_config.policy.head.size": 9,
        "config.rl_config.optimizer.betas:1": 0.99,
        "config.env.obs_dim": 7,
    }
    proc, run_dir = _run(checkout, _fixed(**{"config.rl_config.optimizer.lr": 0.5}), sampled)
    assert proc.returncode == 0, proc.stderr
    rl = _config(run_dir, "rl_config")
    assert rl["policy"]["net_arch"] == [*range(10), 256, 512]
    assert rl["policy"]["head"] == {"size": 9}
    assert rl["policy"]["activation"] == "tanh"
    assert rl["optimizer"] == {"lr": 0.5, "betas": [0.9, 0.99]}
    assert rl["train_steps"] == 100
    assert _config(run_dir, "env") == {**ENV_TEMPLATE, "obs_dim": 7}
    written = (run_dir / "config" / "rl_config.json").read_text(encoding="utf-8")
    assert ":1" not in written
    assert "__extensible__" not in written


def test_whole_list_then_element(checkout: Path) -> None:
    fixed = _fixed(**{"config.rl_config.policy.net_arch": [1, 2, 3]})
    proc, run_dir = _run(checkout, fixed, {"config.rl_config.policy.net_arch:2": 30})
    assert proc.returncode == 0, proc.stderr
    assert _config(run_dir, "rl_config")["policy"]["net_arch"] == [1, 2, 30]


def test_extensible_object_accepts_new_keys(checkout: Path) -> None:
    sampled = {"config.rl_config.extra.new_key": 1, "config.rl_config.extra.deep.er": "v"}
    proc, run_dir = _run(checkout, _fixed(), sampled)
    assert proc.returncode == 0, proc.stderr
    assert _config(run_dir, "rl_config")["extra"] == {"tag": "x", "new_key": 1, "deep": {"er": "v"}}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("say \"hi\" and 'bye'", id="quotes"),
        pytest.param("  two  spaces \t tab\nnewline ", id="whitespace"),
        pytest.param("Grüße, 東京, 🚀, \\backslash", id="unicode"),
        pytest.param(["a b", {"k": 'v "q"'}], id="structure"),
    ],
)
def test_values_survive_patching_unchanged(checkout: Path, value: Any) -> None:
    proc, run_dir = _run(checkout, _fixed(), {"config.env.name": value})
    assert proc.returncode == 0, proc.stderr
    assert _config(run_dir, "env")["name"] == value


@pytest.mark.parametrize(
    ("fixed", "sampled", "message"),
    [
        pytest.param(
            {}, {"config.rl_cfg.lr": 1},
            "config.rl_cfg.lr: unknown config 'rl_cfg'; did you mean 'rl_config'? "
            "(known: env, rl_config)",
            id="unknown-config",
        ),
        pytest.param(
            {}, {"config.rl_config.optimizer.lrr": 1},
            "config.rl_config.optimizer.lrr: unknown key 'lrr' at 'optimizer' of config "
            "'rl_config'; did you mean 'lr'? (valid: betas, lr)",
            id="unknown-nested-key",
        ),
        pytest.param(
            {}, {"config.env.size": 1},
            "config.env.size: unknown key 'size' at the top level of config 'env' "
            "(valid: name, obs_dim)",
            id="unknown-top-key",
        ),
        pytest.param(
            {}, {"config.rl_config.policy.net_arch:12": 1},
            "config.rl_config.policy.net_arch:12: index :12 out of range for 'policy.net_arch' "
            "(a list of 12 element(s): valid indexes 0..11)",
            id="index-out-of-range",
        ),
        pytest.param(
            {}, {"config.rl_config.optimizer.lr:0": 1},
            "config.rl_config.optimizer.lr:0: index :0 used on 'optimizer.lr', which is a "
            "number, not a list",
            id="index-on-non-list",
        ),
        pytest.param(
            {}, {"config.rl_config.extra.new:0": 1},
            "config.rl_config.extra.new:0: unknown key 'new' at 'extra' of config 'rl_config' "
            "(valid: tag)",
            id="index-on-new-key",
        ),
        pytest.param(
            {}, {"config.rl_config.optimizer.lr.x": 1},
            "config.rl_config.optimizer.lr.x: 'optimizer.lr' in config 'rl_config' is a "
            "number, not an object",
            id="key-below-a-leaf",
        ),
        pytest.param(
            {"config.rl_config": 1}, {},
            "config.rl_config: must have the form config.<name>.<key>[:<index>]",
            id="no-key",
        ),
        pytest.param(
            {"config.config_templates": "idx/missing.json"}, {},
            "config.config_templates: cannot read the template index",
            id="missing-index",
        ),
        pytest.param(
            {"learner.command": "python learner.py"}, {},
            "learner.command: must be a non-empty list of strings, got 'python learner.py'",
            id="command-as-string",
        ),
        pytest.param(
            {"learner.command": ["no-such-learner-program"]}, {},
            "learner.command: cannot start ['no-such-learner-program', ",
            id="command-not-found",
        ),
        pytest.param(
            {"learner.metric_colum": "x"}, {},
            "learner.metric_colum: unknown setting; did you mean 'metric_name'?",
            id="unknown-learner-setting",
        ),
    ],
)  # fmt: skip
def test_bad_parameters_fail_before_the_learner_starts(
    checkout: Path, fixed: dict[str, Any], sampled: dict[str, Any], message: str
) -> None:
    proc, run_dir = _run(checkout, _fixed(**fixed), sampled)
    assert proc.returncode == 78
    assert message in proc.stderr
    assert not (run_dir / "learner_started.json").exists()
    assert not (run_dir / "metrics.json").exists()


def test_all_problems_are_reported_at_once(checkout: Path) -> None:
    sampled = {"config.nope.a": 1, "config.rl_config.policy.net_arch:99": 2}
    proc, _ = _run(checkout, _fixed(), sampled)
    assert proc.returncode == 78
    assert "config.nope.a: unknown config" in proc.stderr
    assert "config.rl_config.policy.net_arch:99: index :99 out of range" in proc.stderr


# -- metric --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "text", "key", "expected"),
    [
        pytest.param("progress.csv", "step,reward,x\n1,0.5,a\n2,0.75,b\n3,,c\n\n", "reward", 0.75,
                     id="csv-last-non-empty"),
        pytest.param("progress.csv", "a,rollout/ep_rew_mean\n1, -2.5e3 \n", "rollout/ep_rew_mean",
                     -2500.0, id="csv-slash-column"),
        pytest.param("result.json", '{"eval": {"return": 12}}', "eval.return", 12.0,
                     id="json-nested"),
        pytest.param("result.json", '{"eval/return": 1.5}', "eval/return", 1.5, id="json-flat"),
        pytest.param("log.jsonl", '{"r": 1}\n{"r": 2}\n{"other": 3}\n', "r", 2.0, id="jsonl"),
    ],
)  # fmt: skip
def test_metric_is_read_from_the_learner_output(
    checkout: Path, file: str, text: str, key: str, expected: float
) -> None:
    fixed = _fixed(**{"learner.metric_file": file, "learner.metric_key": key})
    proc, run_dir = _run(checkout, fixed, plan={"files": {file: text}})
    assert proc.returncode == 0, proc.stderr
    assert _metrics(run_dir) == {key: expected}


def test_metric_name_renames_the_reported_metric(checkout: Path) -> None:
    proc, run_dir = _run(checkout, _fixed(**{"learner.metric_name": "score"}))
    assert proc.returncode == 0, proc.stderr
    assert _metrics(run_dir) == {"score": 0.75}


@pytest.mark.parametrize(
    ("files", "key", "reason"),
    [
        pytest.param({}, "reward", "metric file", id="no-file"),
        pytest.param({"progress.csv": "step,loss\n1,2\n"}, "reward",
                     "column 'reward' missing from", id="no-column"),
        pytest.param({"progress.csv": "step,reward\n1,\n2, \n"}, "reward",
                     "column 'reward' of", id="empty-column"),
        pytest.param({"progress.csv": ""}, "reward", "column 'reward' missing", id="empty-file"),
        pytest.param({"progress.csv": "reward\nnan\n"}, "reward", "is not a finite number",
                     id="nan"),
        pytest.param({"progress.csv": "reward\nhigh\n"}, "reward", "is not a finite number",
                     id="not-a-number"),
    ],
)  # fmt: skip
def test_missing_metric_fails_with_a_reason(
    checkout: Path, files: dict[str, str], key: str, reason: str
) -> None:
    proc, run_dir = _run(checkout, _fixed(**{"learner.metric_key": key}), plan={"files": files})
    assert proc.returncode == 1
    assert "run_learning.py: error: no metric:" in proc.stderr
    assert reason in proc.stderr
    assert not (run_dir / "metrics.json").exists()


def test_missing_json_key_fails(checkout: Path) -> None:
    fixed = _fixed(**{"learner.metric_file": "r.json", "learner.metric_key": "eval.ret"})
    proc, _ = _run(checkout, fixed, plan={"files": {"r.json": '{"eval": {}}'}})
    assert proc.returncode == 1
    assert "key 'eval.ret' missing or empty" in proc.stderr


# -- exit codes and chaining ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("learner_exit", "iteration", "n_iterations", "expected", "has_metric"),
    [
        pytest.param(0, 0, 1, 0, True, id="single-iteration-done"),
        pytest.param(0, 0, 3, 3, True, id="more-iterations-follow"),
        pytest.param(0, 2, 3, 0, True, id="last-iteration-done"),
        pytest.param(3, 2, 3, 3, True, id="learner-asks-resume"),
        pytest.param(5, 0, 3, 5, False, id="failure-passed-through"),
        pytest.param(1, 0, 1, 1, False, id="plain-failure"),
    ],
)  # fmt: skip
def test_exit_codes(
    checkout: Path,
    learner_exit: int,
    iteration: int,
    n_iterations: int,
    expected: int,
    has_metric: bool,
) -> None:
    job = {"iteration": iteration, "n_iterations": n_iterations}
    own = "learner: config robot_x out of range\n"
    plan = {"exit": learner_exit, "stderr": own}
    proc, run_dir = _run(checkout, _fixed(), plan=plan, job=job)
    assert proc.returncode == expected, proc.stderr
    assert (run_dir / "metrics.json").exists() == has_metric
    if expected not in (0, 3):
        assert f"exited with code {learner_exit}" in proc.stderr
        # the failure's reason is the learner's own line, not the wrapper's
        assert failure_cause(proc.stderr) == own.strip()


def test_learner_exit_for_resume_without_metric_is_not_a_failure(checkout: Path) -> None:
    proc, run_dir = _run(checkout, _fixed(), plan={"exit": 3, "files": {}})
    assert proc.returncode == 3, proc.stderr
    assert not (run_dir / "metrics.json").exists()


def test_signal_is_forwarded_to_the_learner(checkout: Path) -> None:
    run_dir = checkout.parent / "jobs" / "run_0.0-0"
    document = {
        "params": nest(_fixed()),
        "flat_params": _fixed(),
        "job": {"iteration": 0, "n_iterations": 1, "seed": 1, "run_dir": str(run_dir),
                "previous_run_dir": None, "metrics_file": str(run_dir / "metrics.json")},
    }  # fmt: skip
    params = _write_json(run_dir / "params.json", document)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPOPTIM_")}
    env["FAKE_LEARNER"] = json.dumps({"wait_for_signal": True, "files": {}})
    proc = subprocess.Popen(
        [sys.executable, str(WRAPPER), str(params)], cwd=checkout, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (run_dir / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3, stderr
    assert (run_dir / "got_signal").read_text(encoding="utf-8") == str(int(signal.SIGTERM))


# -- main config: paths and chaining -------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param({}, {"output_dir": "RUN", "log_dir": "RUN", "checkpoint_dir": "RUN"},
                     id="defaults-to-run-dir"),
        pytest.param({"learner.log_dir": "/var/tmp/my logs", "learner.checkpoint_dir": "ckpt"},
                     {"output_dir": "RUN", "log_dir": "/var/tmp/my logs", "checkpoint_dir": "ckpt"},
                     id="user-values-kept"),
    ],
)  # fmt: skip
def test_output_paths(checkout: Path, user: dict[str, str], expected: dict[str, str]) -> None:
    proc, run_dir = _run(checkout, _fixed(**user))
    assert proc.returncode == 0, proc.stderr
    main = json.loads((run_dir / "main_config.json").read_text(encoding="utf-8"))
    info = json.loads((run_dir / "run_info.json").read_text(encoding="utf-8"))
    assert {k: info[k] for k in expected} == {
        k: str(run_dir) if v == "RUN" else v for k, v in expected.items()
    }
    argv = json.loads((run_dir / "learner_started.json").read_text(encoding="utf-8"))
    learner = str(checkout / "learner.py")  # absolute: the learner runs in its run directory
    assert argv == [sys.executable, learner, str(run_dir / "main_config.json")]
    assert main == {  # the template index's flat shape
        "rl_config": str(run_dir / "config" / "rl_config.json"),
        "env": str(run_dir / "config" / "env.json"),
    }
    assert info["resume_from"] is None
    assert (info["seed"], info["iteration"]) == (42, 0)


@pytest.mark.parametrize(
    "checkpoint_dir",
    [pytest.param(None, id="default"), pytest.param("CUSTOM", id="user-checkpoint-dir")],
)
def test_next_iteration_resumes_from_the_previous_checkpoint(
    checkout: Path, tmp_path: Path, checkpoint_dir: str | None
) -> None:
    extra = {} if checkpoint_dir is None else {"learner.checkpoint_dir": str(tmp_path / "ck")}
    first, first_dir = _run(checkout, _fixed(**extra), job={"n_iterations": 2})
    assert first.returncode == 3, first.stderr
    job = {"iteration": 1, "n_iterations": 2, "previous_run_dir": str(first_dir)}
    second, second_dir = _run(checkout, _fixed(**extra), job=job, run_name="run_0.1-0")
    assert second.returncode == 0, second.stderr
    main = json.loads((second_dir / "run_info.json").read_text(encoding="utf-8"))
    assert main["resume_from"] == (
        str(first_dir) if checkpoint_dir is None else extra["learner.checkpoint_dir"]
    )
    assert main["iteration"] == 1


def test_previous_iteration_without_main_config_fails(checkout: Path, tmp_path: Path) -> None:
    job = {"iteration": 1, "n_iterations": 2, "previous_run_dir": str(tmp_path / "gone")}
    proc, run_dir = _run(checkout, _fixed(), job=job)
    assert proc.returncode == 1
    assert "cannot resume" in proc.stderr
    assert not (run_dir / "learner_started.json").exists()


# -- driver-side check ---------------------------------------------------------------------


def _nested_fixed(**extra: Any) -> dict[str, Any]:
    return nest(_fixed(**extra))


@pytest.mark.parametrize(
    ("fixed", "optimized", "metric", "expected"),
    [
        pytest.param({}, ["config.rl_config.optimizer.lr", "config.rl_config.policy.net_arch:11"],
                     "reward", [], id="clean"),
        pytest.param(
            {"config.rl_config.optimizer.lrr": 0.1},
            ["config.env.obs_dim", "config.rl_config.policy.net_arch:12"],
            None,
            [
                ("fixed_params.config.rl_config.optimizer.lrr", "unknown key 'lrr'"),
                ("optimized_params[1].param", "'config.rl_config.policy.net_arch:12': index :12"),
            ],
            id="typos",
        ),
        pytest.param({}, ["config.envv.obs_dim"], None,
                     [("optimized_params[0].param", "unknown config 'envv'")], id="config-name"),
        pytest.param({"learner.metric_name": "reward"}, [], "loss",
                     [("fixed_params.learner.metric_name", "metric_to_optimize is 'loss'")],
                     id="metric-mismatch"),
        pytest.param({"config.config_templates": "nowhere.json"}, [], None,
                     [("fixed_params.config.config_templates", "cannot read the template index")],
                     id="missing-index"),
        pytest.param({"learner.command": []}, [], None,
                     [("fixed_params.learner.command", "must be a non-empty list")],
                     id="empty-command"),
    ],
)  # fmt: skip
def test_driver_check_names_the_offending_config_path(
    checkout: Path,
    fixed: dict[str, Any],
    optimized: list[str],
    metric: str | None,
    expected: list[tuple[str, str]],
) -> None:
    problems = template_problems(_nested_fixed(**fixed), optimized, checkout, metric)
    assert all(isinstance(p, ConfigProblem) for p in problems)
    assert [p.path for p in problems] == [path for path, _ in expected]
    for problem, (_, text) in zip(problems, expected, strict=True):
        assert text in problem.message


@pytest.mark.parametrize(
    ("script", "fixed", "expected"),
    [
        pytest.param("wrappers/run_learning.py", {}, True, id="wrapper-script"),
        pytest.param("train.py", {"config": {"config_templates": "i.json"}}, True, id="index"),
        pytest.param("train.py", {"config": {"lr": 1}}, False, id="neither"),
    ],
)
def test_uses_templates(script: str, fixed: dict[str, Any], expected: bool) -> None:
    assert uses_templates(script, fixed) is expected


def test_cli_check_reports_template_typos(checkout: Path) -> None:
    config = {
        "optimization_procedure_name": "t",
        "results_dir": str(checkout.parent / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "wrappers/run_learning.py",
        "fixed_params": {**_fixed(), "config.rl_config.optimizer.lrr": 0.1},
        "optimized_params": [
            {"param": "config.rl_config.policy.net_arch:12", "distribution": "IntUniform",
             "bounds": [1, 8]},
        ],
        "optimizer_str": "random",
        "number_of_samples": 1,
        "n_jobs_per_iteration": 1,
        "metric_to_optimize": "reward",
        "minimize": False,
    }  # fmt: skip
    path = _write_json(checkout / "hp.json", config)
    proc = subprocess.run(
        [sys.executable, "-m", "hpoptim", "check", str(path)],
        cwd=checkout, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "fixed_params.config.rl_config.optimizer.lrr: unknown key 'lrr'" in proc.stderr
    assert "optimized_params[0].param: 'config.rl_config.policy.net_arch:12'" in proc.stderr


# -- formats, the default learner, templates inside the image ---------------------------------


def test_yaml_templates_are_written_back_as_yaml(checkout: Path) -> None:
    yaml = pytest.importorskip("yaml")
    (checkout / "tpl" / "env.yaml").write_text(yaml.safe_dump(ENV_TEMPLATE), encoding="utf-8")
    (checkout / "idx" / "index.yaml").write_text(
        yaml.safe_dump({"rl_config": "../tpl/rl.json", "env": "../tpl/env.yaml"}), "utf-8"
    )
    fixed = _fixed(**{"config.config_templates": "idx/index.yaml"})
    proc, run_dir = _run(checkout, fixed, {"config.env.obs_dim": 9})
    assert proc.returncode == 0, proc.stderr
    main = yaml.safe_load((run_dir / "main_config.yaml").read_text(encoding="utf-8"))
    assert main == {
        "rl_config": str(run_dir / "config" / "rl_config.json"),
        "env": str(run_dir / "config" / "env.yaml"),
    }
    assert yaml.safe_load(Path(main["env"]).read_text(encoding="utf-8"))["obs_dim"] == 9
    assert json.loads(Path(main["rl_config"]).read_text(encoding="utf-8"))["optimizer"] == {
        "lr": 0.01,
        "betas": [0.9, 0.999],
    }


def test_without_a_learner_command_hysr_one_ball_rl_runs_from_path(
    checkout: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "image_bin"
    bin_dir.mkdir()
    hysr = bin_dir / "hysr_one_ball_rl"
    hysr.write_text(f"#!{sys.executable}\n{FAKE_LEARNER}", encoding="utf-8")
    hysr.chmod(0o755)
    fixed = _fixed()
    del fixed["learner.command"]
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    proc, run_dir = _run(checkout, fixed, env={"PATH": path})
    assert proc.returncode == 0, proc.stderr
    argv = json.loads((run_dir / "learner_started.json").read_text(encoding="utf-8"))
    assert argv[1:] == [str(hysr), str(run_dir / "main_config.json")]


def test_setup_problems_exit_with_the_code_hpoptim_does_not_retry(checkout: Path) -> None:
    from hpoptim.job import SETUP_ERROR_EXIT_CODE

    proc, _ = _run(checkout, _fixed(**{"config.config_templates": "idx/none.json"}))
    assert proc.returncode == SETUP_ERROR_EXIT_CODE


@pytest.mark.parametrize("in_image", [True, False], ids=["in-image", "on-host"])
def test_a_template_only_in_the_image_is_left_to_the_job(
    checkout: Path, in_image: bool, caplog: pytest.LogCaptureFixture
) -> None:
    index = {"rl_config": "../tpl/rl.json", "pam_config": "/opt/mpi-is/pam_models/hill.json"}
    _write_json(checkout / "idx" / "index.json", index)
    fixed = _nested_fixed(**{"config.pam_config.a": 1})
    problems = template_problems(fixed, ["config.rl_config.train_steps"], checkout, None, in_image)
    if in_image:
        assert problems == []
        (record,) = [r for r in caplog.records if "pam_config" in r.getMessage()]
        assert "could not be checked here" in record.getMessage()
    else:
        assert [p.path for p in problems] == ["fixed_params.config.config_templates"]
        assert "/opt/mpi-is/pam_models/hill.json" in problems[0].message
