"""``hpoptim schema``: the JSON Schema editors use, generated from the same models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hpoptim.cli import main
from hpoptim.config import load_config_dict
from hpoptim.errors import ConfigError
from hpoptim.run.assembly import config_checks
from tests.config.conftest import minimal

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/config.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    schema = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_there_are_examples_to_check() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_shipped_example_config_satisfies_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [e.message for e in validator.iter_errors(data)] == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param({"n_sampels": 3}, [], id="typo-top-level"),
        pytest.param({"slurm": {"partiton": "gpu"}}, ["slurm"], id="typo-in-launcher-section"),
        pytest.param({"resources": {"mem": 4}}, ["resources"], id="typo-in-resources"),
        pytest.param({"number_of_samples": 0}, ["number_of_samples"], id="bound"),
        pytest.param({"launcher": "condor"}, ["launcher"], id="unknown-launcher"),
        pytest.param({"optimizer_str": "tpee"}, ["optimizer_str"], id="unknown-sampler"),
        pytest.param({"minimize": "yes"}, ["minimize"], id="type"),
    ],
)
def test_the_schema_rejects_what_validation_rejects(
    validator: jsonschema.Draft202012Validator, change: dict[str, Any], where: list[str]
) -> None:
    data = {**minimal(), **change}
    assert validator.is_valid(minimal())
    errors = list(validator.iter_errors(data))
    assert [list(e.absolute_path) for e in errors] == [where]
    with pytest.raises(ConfigError):
        load_config_dict(data, check=config_checks)


def test_the_schema_knows_every_key_validation_knows(
    validator: jsonschema.Draft202012Validator,
) -> None:
    saved = load_config_dict(minimal()).to_dict()  # every key, defaults filled in
    assert validator.is_valid(saved)
    assert set(validator.schema["properties"]) == set(saved)
