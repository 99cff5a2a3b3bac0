"""A config nested deeper than any config needs is one error line and exit 2, whatever
the format and however deep, never a RecursionError's traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpoptim.cli import main
from hpoptim.config.files import MAX_DEPTH

BASE = {
    "optimization_procedure_name": "t",
    "results_dir": "results",
    "run_in_working_dir": True,
    "script_relative_path": "job.py",
    "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
    "optimizer_str": "random",
    "number_of_samples": 1,
    "metric_to_optimize": "loss",
    "minimize": True,
    "n_jobs_per_iteration": 1,
}


def _lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def _maps(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def _json(extra: str) -> str:
    return json.dumps(BASE)[:-1] + ", " + extra + "}"


def _yaml(extra: str) -> str:
    return "\n".join(f"{k}: {json.dumps(v)}" for k, v in BASE.items()) + f"\n{extra}\n"


def _toml(extra: str) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in BASE.items() if not isinstance(v, list)]
    return "\n".join([*lines, extra]) + "\n"


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        pytest.param("c.json", _json(f'"deep": {_lists(100_000)}'), "", id="json-beyond-parser"),
        pytest.param("c.json", _json(f'"deep": {_lists(900)}'), "deep[0]", id="json-parsed"),
        pytest.param("c.yaml", _yaml(f"deep: {_lists(100_000)}"), "", id="yaml"),
        pytest.param("c.yaml", _yaml(f"deep: {_lists(900)}"), "", id="yaml-900"),
        pytest.param("c.toml", _toml(f"deep = {_lists(100_000)}"), "", id="toml"),
        pytest.param("c.toml", _toml(f"deep = {_lists(900)}"), "", id="toml-900"),
        pytest.param("c.json", _json(f'"local": {_maps(900)}'), "local.a.a", id="deep-section"),
        pytest.param(
            "c.json", _json(f'"fixed_params": {_maps(MAX_DEPTH)}'), "fixed_params.a", id="limit"
        ),
    ],
)
def test_a_deeply_nested_config_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    where: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    (tmp_path / name).write_text(text)
    assert main(["check", name]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Recursion" not in err
    assert f"{MAX_DEPTH} levels" in err
    assert f"  {where}" in err


def test_a_config_at_the_depth_limit_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    (tmp_path / "c.json").write_text(_json(f'"fixed_params": {_maps(MAX_DEPTH - 1)}'))
    assert main(["check", "c.json"]) == 0


def test_an_override_cannot_nest_deeper_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    (tmp_path / "c.json").write_text(json.dumps(BASE))
    assert main(["check", "c.json", "+a" + ".a" * 200 + "=1"]) == 2
    assert f"nested more than {MAX_DEPTH} levels deep" in capsys.readouterr().err
