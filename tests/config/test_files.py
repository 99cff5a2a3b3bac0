"""Config files: the three formats load the same config; parse errors name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpoptim.config import load_config
from hpoptim.config.files import read_config_file
from hpoptim.errors import ConfigError
from tests.config.conftest import minimal, write


def _full() -> dict[str, Any]:
    data = minimal()
    data.update(
        fixed_params={"model.lr": 0.1, "env": {"name": "cartpole", "n": 3}},
        optimizer_str="cem_metaoptimizer",
        optimizer_settings={"num_jobs_in_elite": 2},
        environment={"OMP_NUM_THREADS": "1"},
        interpreter=["python3", "-u"],
        slurm={"partition": "gpu", "mem_gb": 8, "extra_sbatch_options": ["--exclusive"]},
        local={"n_parallel_jobs": 2},
    )
    return data


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".toml"])
def test_every_format_loads_the_same_config(tmp_path: Path, suffix: str) -> None:
    reference = load_config(write(tmp_path / "ref.json", _full()), [])
    cfg = load_config(write(tmp_path / f"c{suffix}", _full()), [])
    assert cfg == reference
    assert cfg.fixed_params == {"model": {"lr": 0.1}, "env": {"name": "cartpole", "n": 3}}
    assert cfg.slurm.partition == "gpu"
    assert cfg.resources.mem_gb == 8.0  # the old key, read as its new name
    assert cfg.interpreter == ("python3", "-u")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param("c.json", '{\n  "a": 1,\n  "b": nope\n}\n', ", line 3, column", id="json"),
        pytest.param("c.yaml", "a: 1\nb: [1, 2\nc: 3\n", ", line 3, column", id="yaml"),
        pytest.param("c.yml", "a: 1\na: 2\n", "line 2, column 1: duplicate key 'a'", id="yaml-dup"),
        pytest.param("c.toml", 'a = 1\nb = "x\n', "line 2", id="toml"),
    ],
)
def test_parse_errors_name_the_file_and_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert info.value.source == path
    (problem,) = info.value.problems
    assert problem.message.startswith(f"cannot parse {path}")
    assert expected in problem.message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "c.json", "[1, 2]", "must be a mapping of keys to values, got a list", id="list"
        ),
        pytest.param("c.yaml", "just a string\n", "got a str", id="scalar"),
        pytest.param("c.yaml", "", "got empty", id="empty"),
        pytest.param("c.ini", "a=1", "has extension '.ini'; supported: .json, .yaml", id="ext"),
    ],
)
def test_file_must_hold_a_mapping_of_a_known_format(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        read_config_file(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        read_config_file(tmp_path / "nope.yaml")
