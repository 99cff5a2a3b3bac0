"""wrappers/run_mle.py, run as a real subprocess on generated params files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "wrappers" / "run_mle.py"

# An mle-toolbox training script that records how it was started.
TRAIN = """\
import json, os, sys
from pathlib import Path

record = {"argv": sys.argv[1:], "cwd": os.getcwd(), "pid": os.getpid()}
config = sys.argv[sys.argv.index("-config") + 1]
text = Path(config).read_text()
load = __import__("yaml").safe_load if config.endswith(".yaml") else json.loads
record["config"] = load(text)
Path(sys.argv[sys.argv.index("-exp_dir") + 1], "started.json").write_text(json.dumps(record))
sys.exit(int(os.environ.get("TRAIN_EXIT", "0")))
"""
BASE = {"train_config": {"lrate": 1.0, "opt": {"name": "adam", "beta": 0.9}}, "log_config": {}}


def _params(tmp_path: Path, mle: dict[str, Any], sampled: dict[str, Any]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    document = {
        "params": {"mle_toolbox": mle, **sampled},
        "flat_params": {},
        "job": {"run_dir": str(run_dir), "seed": 1234},
    }
    path = run_dir / "params.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "base.json").write_text(json.dumps(BASE), encoding="utf-8")
    return {"train_script": str(tmp_path / "train.py"), "base_config": str(tmp_path / "base.json")}


def _run(params: Path, cwd: Path, exit_code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {"HPOPTIM_PARAMS_FILE": str(params), "TRAIN_EXIT": str(exit_code), "PATH": ""}
    return subprocess.run(
        [sys.executable, str(WRAPPER), str(params)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mle_extra", "seed"),
    [
        pytest.param({}, "1234", id="the-jobs-seed"),
        pytest.param({"seed_id": 2}, "2", id="multiple-experiments-seed-id"),
    ],
)
def test_the_script_runs_with_mle_toolbox_argv_and_the_patched_config(
    tmp_path: Path, mle_extra: dict[str, Any], seed: str
) -> None:
    params = _params(
        tmp_path,
        {**_files(tmp_path), **mle_extra},
        {"train_config": {"lrate": 0.25, "opt": {"beta": 0.5}, "new_key": 3}},
    )
    proc = _run(params, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = params.parent
    started = json.loads((run_dir / "started.json").read_text(encoding="utf-8"))
    assert started["argv"] == [
        "-config", str(run_dir / "config.json"), "-seed", seed, "-exp_dir", str(run_dir),
    ]  # fmt: skip
    assert started["cwd"] == str(tmp_path)
    assert started["config"] == {
        "train_config": {"lrate": 0.25, "opt": {"name": "adam", "beta": 0.5}, "new_key": 3},
        "log_config": {},
    }


def test_a_yaml_base_config_is_patched_as_yaml(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    mle = _files(tmp_path)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    mle["base_config"] = str(tmp_path / "base.yaml")
    params = _params(tmp_path, mle, {"train_config": {"lrate": 0.5}})
    proc = _run(params, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = params.parent / "config.yaml"
    assert yaml.safe_load(written.read_text(encoding="utf-8"))["train_config"] == {
        "lrate": 0.5,
        "opt": {"name": "adam", "beta": 0.9},
    }
    started = json.loads((params.parent / "started.json").read_text(encoding="utf-8"))
    assert started["argv"][1] == str(written)


def test_an_unreadable_base_config_is_a_setup_error(tmp_path: Path) -> None:
    mle = _files(tmp_path)
    (tmp_path / "base.json").write_text("{not json", encoding="utf-8")
    proc = _run(_params(tmp_path, mle, {}), cwd=tmp_path)
    assert proc.returncode == 78
    assert f"run_mle: base config {tmp_path / 'base.json'} cannot be read" in proc.stderr


def test_the_scripts_exit_code_is_the_jobs(tmp_path: Path) -> None:
    params = _params(tmp_path, _files(tmp_path), {})
    assert _run(params, cwd=tmp_path, exit_code=3).returncode == 3


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        pytest.param("train_script", "training script", id="no-script"),
        pytest.param("base_config", "base config", id="no-base-config"),
    ],
)
def test_a_missing_file_is_a_setup_error(tmp_path: Path, broken: str, message: str) -> None:
    mle = _files(tmp_path)
    mle[broken] = str(tmp_path / "missing")
    proc = _run(_params(tmp_path, mle, {}), cwd=tmp_path)
    assert proc.returncode == 78
    assert f"run_mle: {message} {tmp_path / 'missing'} does not exist" in proc.stderr
    assert not (tmp_path / "run" / "config.json").exists()
