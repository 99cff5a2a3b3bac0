"""Overrides: parsing (literals of every type, quoting hint) and applying (change/add/delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpoptim.config import load_config
from hpoptim.config.overrides import (
    OverrideKind,
    apply_overrides,
    format_key,
    parse_override,
    parse_overrides,
)
from hpoptim.config.schema import schema_knows
from hpoptim.errors import OverrideError
from tests.config.conftest import minimal, write


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("a=3", 3, id="int"),
        pytest.param("a=-2.5e-3", -2.5e-3, id="float"),
        pytest.param("a=True", True, id="bool"),
        pytest.param("a=None", None, id="none"),
        pytest.param("a='x y'", "x y", id="str-single"),
        pytest.param('a="run_2"', "run_2", id="str-double"),
        pytest.param("a=[1, 'b', [2.0]]", [1, "b", [2.0]], id="list"),
        pytest.param("a=(1, 2)", [1, 2], id="tuple-to-list"),
        pytest.param("a={'k': (1,), 'n': None}", {"k": [1], "n": None}, id="dict"),
        pytest.param("a=", "", id="empty-is-not-literal"),
    ],
)
def test_values_are_python_literals(text: str, value: Any) -> None:
    if value == "":
        with pytest.raises(OverrideError, match='quote a string: a=""'):
            parse_override(text)
        return
    override = parse_override(text)
    assert override.kind is OverrideKind.SET
    assert override.key == ("a",)
    assert override.value == value
    assert type(override.value) is type(value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            "optimization_procedure_name=run_2",
            "value 'run_2' is not a Python literal; quote a string: "
            'optimization_procedure_name="run_2" (in a shell: '
            "'optimization_procedure_name=\"run_2\"')",
            id="bare-string",
        ),
        pytest.param(
            "+fixed_params.act=relu",
            "value 'relu' is not a Python literal; quote a string: +fixed_params.act=\"relu\" "
            "(in a shell: '+fixed_params.act=\"relu\"')",
            id="bare-string-add",
        ),
        pytest.param(
            "minimize=true",
            "value 'true' is not a Python literal; write minimize=True for the literal, or "
            'quote a string: minimize="true" (in a shell: \'minimize="true"\')',
            id="json-bool",
        ),
        pytest.param(
            "a={1, 2}",
            "value '{1, 2}': a set is not allowed; use str, int, float, "
            "bool, None, lists and dicts",
            id="set",
        ),
        pytest.param("a={1: 2}", "value '{1: 2}': {1: 2} has non-string keys", id="int-key"),
        pytest.param(
            "number_of_samples",
            "expected key=value (change), +key=value (add) or ~key (delete)",
            id="no-equals",
        ),
        pytest.param("~seed=3", "a deletion takes no value: write ~seed", id="delete-value"),
        pytest.param(
            "a..b=1",
            "'a..b' is not a key path; write dotted names such as "
            "slurm.mem_gb or optimized_params[0].bounds",
            id="empty-part",
        ),
        pytest.param(
            "=1",
            "'' is not a key path; write dotted names such as slurm.mem_gb or "
            "optimized_params[0].bounds",
            id="no-key",
        ),
    ],
)
def test_parse_errors_quote_the_override_and_say_the_fix(text: str, reason: str) -> None:
    with pytest.raises(OverrideError) as info:
        parse_overrides(["seed=1", text])
    assert (info.value.override, info.value.index, info.value.reason) == (text, 1, reason)
    assert str(info.value) == f"override #2 {text!r}: {reason}"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param("slurm.mem_gb=1", ("slurm", "mem_gb"), id="dotted"),
        pytest.param(
            "optimized_params[1].bounds=[0, 1]", ("optimized_params", 1, "bounds"), id="index"
        ),
        pytest.param("a[0][2]=1", ("a", 0, 2), id="double-index"),
        pytest.param("fixed_params.net_arch:1=64", ("fixed_params", "net_arch:1"), id="colon"),
    ],
)
def test_key_paths(text: str, key: tuple[str | int, ...]) -> None:
    override = parse_override(text)
    assert override.key == key
    assert format_key(key) == text.split("=")[0]


FILE: dict[str, Any] = {
    "seed": 1,
    "slurm": {"partition": "cpu"},
    "git_params": None,
    "fixed_params": {"model.lr": 0.1, "env": {"name": "cartpole"}},
    "optimized_params": [{"param": "x", "bounds": [0, 1]}, {"param": "y", "bounds": [2, 3]}],
}


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        pytest.param(["seed=2"], {"seed": 2}, id="change"),
        pytest.param(["~seed"], {"seed": ...}, id="delete"),
        pytest.param(["+n_reruns=3"], {"n_reruns": 3}, id="add"),
        pytest.param(["launcher='slurm'"], {"launcher": "slurm"}, id="schema-key-not-in-file"),
        pytest.param(["slurm.partition='gpu'"], {"slurm": {"partition": "gpu"}}, id="nested"),
        pytest.param(
            ["local.n_parallel_jobs=4"], {"local": {"n_parallel_jobs": 4}}, id="new-section"
        ),
        pytest.param(["git_params.url='u'"], {"git_params": {"url": "u"}}, id="null-section"),
        pytest.param(
            ["fixed_params.model.lr=0.5"],
            {"fixed_params": {"model.lr": 0.5, "env": {"name": "cartpole"}}},
            id="fixed-flat",
        ),
        pytest.param(
            ["fixed_params.env.name='pong'"],
            {"fixed_params": {"model.lr": 0.1, "env": {"name": "pong"}}},
            id="fixed-nested",
        ),
        pytest.param(
            ["+fixed_params.model.wd=0.01", "~fixed_params.env.name"],
            {"fixed_params": {"model.lr": 0.1, "model": {"wd": 0.01}, "env": {}}},
            id="fixed-add-delete",
        ),
        pytest.param(
            ["optimized_params[1].bounds=[5, 6]"],
            {
                "optimized_params": [
                    {"param": "x", "bounds": [0, 1]},
                    {"param": "y", "bounds": [5, 6]},
                ]
            },
            id="list-index",
        ),
        pytest.param(
            ["optimized_params.0.bounds=[7, 8]", "~optimized_params[1]"],
            {"optimized_params": [{"param": "x", "bounds": [7, 8]}]},
            id="list-dot-index-and-delete",
        ),
        pytest.param(
            ["+optimized_params[2]={'param': 'z'}"],
            {"optimized_params": [*FILE["optimized_params"], {"param": "z"}]},
            id="list-append",
        ),
        pytest.param(["seed=2", "seed=3"], {"seed": 3}, id="in-order"),
    ],
)
def test_apply(overrides: list[str], changed: dict[str, Any]) -> None:
    expected = {**FILE, **changed}
    expected = {k: v for k, v in expected.items() if v is not ...}
    original = repr(FILE)
    assert apply_overrides(FILE, parse_overrides(overrides), schema_knows) == expected
    assert repr(FILE) == original  # the input is not modified


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            "n_sampels=3",
            "key n_sampels is not in the config; to add it use +n_sampels=3",
            id="unknown-needs-plus",
        ),
        pytest.param(
            "fixed_params.model.wd=0.01",
            "key fixed_params.model.wd is not in the config; to add it use "
            "+fixed_params.model.wd=0.01",
            id="free-form-needs-plus",
        ),
        pytest.param(
            "slurm.partiton='gpu'",
            "key slurm.partiton is not in the config (did you mean 'partition'?); to add it use "
            "+slurm.partiton='gpu'",
            id="typo-in-section",
        ),
        pytest.param(
            "+seed=2", "key seed already exists; to change it use seed=2", id="add-exists"
        ),
        pytest.param("~n_reruns", "there is no key n_reruns to delete", id="delete-missing"),
        pytest.param(
            "optimized_params[5].bounds=[1, 2]",
            "optimized_params is a list of 2 element(s); 5 is not an index of it (use [0] to [1])",
            id="index-range",
        ),
        pytest.param(
            "seed.value=3",
            "seed is a value of type int, not a section, so it has no key value",
            id="below-scalar",
        ),
        pytest.param("slurm[0]=1", "slurm is a mapping, not a list", id="index-a-mapping"),
    ],
)
def test_apply_errors(text: str, reason: str) -> None:
    with pytest.raises(OverrideError) as info:
        apply_overrides(FILE, parse_overrides(["seed=5", text]), schema_knows)
    assert (info.value.index, info.value.reason) == (1, reason)


def test_load_config_applies_overrides_before_validation(tmp_path: Path) -> None:
    data = {**minimal(), "fixed_params": {"model.lr": 0.1}}
    path = write(tmp_path / "c.yaml", data)
    cfg = load_config(
        path,
        [
            'optimization_procedure_name="run_2"',
            "number_of_samples=9",
            "launcher='slurm'",
            "slurm.partition='gpu'",
            "fixed_params.model.lr=0.5",
            "+fixed_params.model.wd=0.01",
            "~minimize",
            "+minimize=False",
        ],
    )
    assert cfg.optimization_procedure_name == "run_2"
    assert cfg.number_of_samples == 9
    assert cfg.launcher == "slurm"
    assert cfg.slurm.partition == "gpu"
    assert cfg.minimize is False
    assert cfg.fixed_params == {"model": {"lr": 0.5, "wd": 0.01}}
    assert load_config(path, []).fixed_params == {"model": {"lr": 0.1}}  # the file is unchanged


def test_an_override_can_make_a_config_invalid_and_the_error_names_the_key(tmp_path: Path) -> None:
    from hpoptim.errors import ConfigError

    path = write(tmp_path / "c.json", minimal())
    with pytest.raises(ConfigError) as info:
        load_config(path, ["number_of_samples=0", "slurm.mem_gb='8G'"])
    assert [p.path for p in info.value.problems] == ["number_of_samples", "slurm.mem_gb"]
    assert info.value.source == path
