"""Zipped parameters: a Discrete entry whose param lists several names, row by row."""

from __future__ import annotations

from typing import Any

import pytest

from hpoptim.errors import ConfigError
from hpoptim.space import Discrete, SearchSpace, ZipGroup, entry_names

ENTRIES: list[dict[str, Any]] = [
    {"param": "act", "distribution": "Discrete", "options": ["relu", "tanh"]},
    {
        "param": ["model.lr", "model.net"],
        "distribution": "Discrete",
        "options": [[0.1, [64, 64]], [0.1, [256]], [0.01, [64, 64]]],
    },
    {"param": "x", "distribution": "Uniform", "bounds": [0, 1]},
]


def test_a_zip_group_is_parameters_of_the_space_with_their_column_as_domain() -> None:
    space = SearchSpace.from_config(ENTRIES)
    assert space.names == ("act", "model.lr", "model.net", "x")
    assert space.entries() == (("act",), ("model.lr", "model.net"), ("x",))
    assert space["model.lr"] == Discrete(options=(0.1, 0.01))
    assert space["model.net"] == Discrete(options=([64, 64], [256]))
    assert space.groups == (
        ZipGroup(("model.lr", "model.net"), ((0.1, [64, 64]), (0.1, [256]), (0.01, [64, 64]))),
    )


def test_the_space_round_trips_through_config_with_its_groups() -> None:
    space = SearchSpace.from_config(ENTRIES)
    assert space.to_config() == ENTRIES
    assert SearchSpace.from_config(space.to_config()) == space
    assert space != SearchSpace(space.distributions)  # the same columns, not zipped


def test_contains_only_the_rows_of_a_group() -> None:
    space = SearchSpace.from_config(ENTRIES)
    params = {"act": "relu", "model.lr": 0.01, "model.net": [64, 64], "x": 0.5}
    assert space.contains(params)
    assert space.contains({**params, "model.net": (64, 64)})  # lists and tuples alike
    # each value is in its column, but (0.01, [256]) is no row
    assert not space.contains({**params, "model.net": [256]})


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        pytest.param(
            {"param": ["a", "b"], "distribution": "Discrete", "options": [[1, 2], [3]]},
            "optimized_params[1].options[1]",
            "must be a list of 2 values, one per name in param, got [3]",
            id="wrong-arity",
        ),
        pytest.param(
            {"param": ["a", "b"], "distribution": "Discrete", "options": [[1, 2], 3]},
            "optimized_params[1].options[1]",
            "must be a list of 2 values, one per name in param, got 3",
            id="not-a-row",
        ),
        pytest.param(
            {"param": ["a", "b"], "distribution": "Discrete", "options": [[1, 2], [1, 2]]},
            "optimized_params[1].options[1]",
            "duplicate of options[0]: [1, 2]",
            id="duplicate-row",
        ),
        pytest.param(
            {"param": ["a", "b"], "distribution": "Discrete", "options": []},
            "optimized_params[1].options",
            "must be a non-empty list of rows of 2 values, got []",
            id="no-rows",
        ),
        pytest.param(
            {"param": ["a", "b"], "distribution": "Uniform", "bounds": [0, 1]},
            "optimized_params[1].bounds",
            "unknown key 'bounds' for zipped parameters\n"
            "valid keys of optimized_params[1]: distribution, options, param",
            id="bounds",
        ),
        pytest.param(
            {"param": ["a", "a"], "distribution": "Discrete", "options": [[1, 2]]},
            "optimized_params[1].param[1]",
            "'a' is listed twice",
            id="name-twice",
        ),
        pytest.param(
            {"param": [], "distribution": "Discrete", "options": [[]]},
            "optimized_params[1].param",
            "must name at least one parameter",
            id="no-names",
        ),
        pytest.param(
            {"param": ["a", "1b"], "distribution": "Discrete", "options": [[1, 2]]},
            "optimized_params[1].param[1]",
            "a parameter name must be a dotted path of identifiers with an optional "
            "':<index>' suffix (e.g. 'model.lr', 'config.net_arch:1'), got '1b'",
            id="bad-name",
        ),
        pytest.param(
            {"param": ["a", "act"], "distribution": "Discrete", "options": [[1, 2]]},
            "optimized_params[1].param",
            "duplicate parameter 'act' (also optimized_params[0])",
            id="also-an-entry",
        ),
        pytest.param(
            {"param": ["a", "act.b"], "distribution": "Discrete", "options": [[1, 2]]},
            "optimized_params[1].param",
            "'act.b' lies inside parameter 'act' (optimized_params[0]); a name cannot be both "
            "a value and a parent of other names",
            id="inside-an-entry",
        ),
        pytest.param(
            {"param": ["a", "b"], "distribution": "Discrete", "options": [[1, float("nan")]]},
            "optimized_params[1].options[0]",
            "options must be JSON values",
            id="not-json",
        ),
    ],
)
def test_problems_of_a_zipped_entry_name_it(entry: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        SearchSpace.from_config([ENTRIES[0], entry])
    found = {p.path: p.message for p in exc.value.problems}
    problem, _, listing = message.partition("\n")  # and the line listing the valid keys
    assert problem in found[path], found
    if listing:
        assert listing in str(exc.value).splitlines()


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("a", "z"), id="not-in-the-space"),
        pytest.param(("a", "b", "a"), id="twice"),
    ],
)
def test_a_space_refuses_groups_naming_a_parameter_it_lacks_or_twice(
    names: tuple[str, ...],
) -> None:
    dists = {"a": Discrete(options=(1, 2)), "b": Discrete(options=(3, 4))}
    group = ZipGroup(names, ((1, 3, 1)[: len(names)],))
    with pytest.raises(ConfigError) as exc:
        SearchSpace(dists, [group])
    [problem] = exc.value.problems
    assert problem.message == "a zipped name must be a parameter of the space, once"
    assert problem.path == names[-1]


def test_a_zipped_entry_needs_the_discrete_distribution() -> None:
    entry = {"param": ["a", "b"], "distribution": "Uniform", "options": [[1, 2]]}
    with pytest.raises(ConfigError) as exc:
        SearchSpace.from_config([entry])
    assert [(p.path, p.message) for p in exc.value.problems] == [
        (
            "optimized_params[0].distribution",
            "zipped parameters (param is a list) are listed row by row: the distribution "
            "must be 'Discrete', got 'Uniform'",
        )
    ]


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        pytest.param({"param": "a.b"}, ["a.b"], id="one"),
        pytest.param({"param": ["a", "b"]}, ["a", "b"], id="zipped"),
        pytest.param({"distribution": "Uniform"}, [], id="none"),
        pytest.param(["a"], [], id="not-an-entry"),
    ],
)
def test_entry_names(entry: Any, names: list[str]) -> None:
    assert entry_names(entry) == names
