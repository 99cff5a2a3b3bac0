"""smart_settings features of cluster_utils configs, run end to end.

``fixed_params.__import_promise__`` merges files under each job's parameters in the
job, and ``"{...}"`` expressions are evaluated where smart_settings evaluates them: over
the config by the driver, over the job's parameters (``{fn_args.u < 0.2}``) in the job
by ``hpoptim.compat.initialize_job``. Where neither can happen, ``check`` refuses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main

JOB = """\
import json, os
from hpoptim.compat import finalize_job, initialize_job

params = initialize_job(verbose=False)
with open(os.path.join(params.working_dir, "seen.json"), "w") as fh:
    json.dump(params, fh)
finalize_job({"result": params.fn_args.u * params.fn_args.w + params.fn_args.v}, params)
"""


def _config(tmp_path: Path, **fixed: Any) -> Path:
    (tmp_path / "main.py").write_text(JOB)
    (tmp_path / "defaults").mkdir()
    (tmp_path / "defaults" / "base.json").write_text(
        json.dumps({"fn_args": {"w": 99, "v": 7}, "extra": "from the import"})
    )
    data = {
        "optimization_procedure_name": "cu",
        "results_dir": "{$HPOPTIM_TEST_ROOT}/results",
        "run_in_working_dir": True,
        "script_relative_path": "main.py",
        "git_params": {},
        "environment_setup": {},
        "cluster_requirements": {"request_cpus": 1},
        "restarts": 1,
        "samples": None,
        "local_run": True,
        "fixed_params": {
            "__import_promise__": "defaults/base.json",
            "fn_args": {"w": 2},
            "who": "{$HPOPTIM_TEST_USER}",
            "label": "{optimization_procedure_name}_job",
            "small": "{fn_args.u < 0.2}",
            **fixed,
        },
        "hyperparam_list": [{"param": "fn_args.u", "values": [0.1, 0.5]}],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPOPTIM_TEST_ROOT", str(tmp_path))
    monkeypatch.setenv("HPOPTIM_TEST_USER", "alice")
    return tmp_path


def test_import_promise_and_expressions_reach_the_job_resolved(in_tmp: Path) -> None:
    assert main(["run", str(_config(in_tmp)), "-q"]) == 0
    root = in_tmp / "results" / "cu"  # results_dir's "{$HPOPTIM_TEST_ROOT}" evaluated
    seen = sorted(
        (json.loads(p.read_text()) for p in root.rglob("working_dir_0/seen.json")),
        key=lambda p: p["fn_args"]["u"],
    )
    assert [p["fn_args"]["u"] for p in seen] == [0.1, 0.5]
    for params in seen:
        assert params["fn_args"]["w"] == 2  # the config's value wins over the import's
        assert params["fn_args"]["v"] == 7  # the import fills in what the config lacks
        assert params["extra"] == "from the import"
        assert "__import__" not in params
        assert "__import_promise__" not in params
        assert params["who"] == "alice"
        assert params["label"] == "cu_job"
        assert params["small"] is (params["fn_args"]["u"] < 0.2)  # a bool, not a string
    settings = pd.read_csv(root / "settings.csv").sort_values("fn_args.u")
    assert settings["result"].tolist() == pytest.approx([0.1 * 2 + 7, 0.5 * 2 + 7])


def test_check_names_where_each_feature_is_resolved(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(_config(in_tmp))]) == 0
    err = capsys.readouterr().err
    assert "fixed_params.__import_promise__: -> fixed_params.__import__: merged under" in err
    assert "fixed_params.small: '{fn_args.u < 0.2}' is evaluated in the job" in err
    assert "fixed_params.who: '{$HPOPTIM_TEST_USER}' evaluated as smart_settings does" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"fixed_params.__import_promise__": "defaults/missing.json"},
            "fixed_params.__import_promise__: 'defaults/missing.json' does not exist under",
            id="missing-import",
        ),
        pytest.param(
            {"fixed_params.__import__": "defaults/base.json"},
            "fixed_params.__import__: cannot import inside fixed params; did you mean "
            "__import_promise__?",
            id="import-in-fixed-params",
        ),
        pytest.param(
            {"script_relative_path": "wrappers/run_learning.py"},
            "fixed_params.small: '{fn_args.u < 0.2}' is a smart_settings expression over the "
            "job's parameters, which wrappers/run_learning.py does not evaluate",
            id="wrapper-expression",
        ),
    ],
)
def test_check_refuses_what_the_job_cannot_resolve(
    change: dict[str, Any], message: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(in_tmp)
    data = json.loads(path.read_text())
    for key, value in change.items():
        section, _, name = key.rpartition(".")
        target = data[section] if section else data
        if name == "__import__":
            del target["__import_promise__"]
        target[name] = value
    path.write_text(json.dumps(data))
    assert main(["check", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (in_tmp / "results").exists()
