"""Behaviour every sampler must show, as a reusable test class.

A sampler's tests subclass :class:`SamplerContract` and set ``name`` (its
``optimizer_str``); ``settings`` and :meth:`SamplerContract.space` may be
overridden, and :meth:`SamplerContract.make` is the hook that builds one::

    class TestRandomContract(SamplerContract):
        name = "random"

The driver rebuilds a sampler on resume with ``restore`` from the journal's settings
(JSON round-tripped params, results in the order told), asking nothing; the restore
tests do exactly that and, for a sampler that ``restores_exactly``, compare what the
original and the restored sampler propose next.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from hpoptim.errors import ConfigError
from hpoptim.samplers import BaseSampler, make_sampler, validate_optimizer
from hpoptim.samplers.base import SamplerHistory
from hpoptim.space import SearchSpace

MIXED_SPACE = [
    {"param": "model.lr", "distribution": "TruncatedLogNormal", "bounds": [1e-5, 1e-1]},
    {"param": "model.dropout", "distribution": "TruncatedNormal", "bounds": [0.0, 0.5]},
    {"param": "config.rl.net_arch:1", "distribution": "IntLogNormal", "bounds": [8, 256]},
    {"param": "n_layers", "distribution": "IntNormal", "bounds": [1, 6]},
    {"param": "x", "distribution": "Uniform", "bounds": [-1, 1]},
    {"param": "wd", "distribution": "LogUniform", "bounds": [1e-6, 1e-2]},
    {"param": "batch", "distribution": "IntUniform", "bounds": [16, 18]},
    {"param": "act", "distribution": "Discrete", "options": ["relu", [1, 2], {"k": None}, 3.5]},
]
_JSON_TYPES = (type(None), bool, int, float, str, list, dict)


def objective(params: Mapping[str, Any]) -> float | None:
    """A deterministic metric of a MIXED_SPACE setting; None (failure) for some."""
    if params["batch"] == 18 and params["n_layers"] == 6:
        return None
    return float(
        (math.log10(params["model.lr"]) + 3) ** 2
        + (params["x"] - 0.3) ** 2
        + params["model.dropout"]
        + abs(params["n_layers"] - 3)
        + (0.0 if params["act"] == [1, 2] else 1.0)
    )


def _round_trip(params: Mapping[str, Any]) -> dict[str, Any]:
    """What the journal gives back."""
    result: dict[str, Any] = json.loads(json.dumps(params))
    return result


def _all_json(value: Any) -> bool:
    if type(value) not in _JSON_TYPES:
        return False
    if isinstance(value, list):
        return all(_all_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _all_json(v) for k, v in value.items())
    return not isinstance(value, float) or math.isfinite(value)


class SamplerContract:
    """Tests every sampler must pass; subclasses set :attr:`name`."""

    #: The sampler's ``optimizer_str``.
    name: ClassVar[str]
    #: ``optimizer_settings`` used by the contract tests.
    settings: ClassVar[Mapping[str, Any]] = {}
    #: Whether two seeds must give different proposals.
    seed_matters: ClassVar[bool] = True
    #: How many settings each test asks for.
    n_asks: ClassVar[int] = 60

    def space(self) -> SearchSpace:
        """The space the contract tests search."""
        return SearchSpace.from_config(MIXED_SPACE)

    def make(self, *, seed: int | None = 0, minimize: bool = True) -> BaseSampler:
        """Build the sampler under test."""
        return make_sampler(
            self.name, self.space(), minimize=minimize, seed=seed, settings=self.settings
        )

    # -- helpers ---------------------------------------------------------------------
    def _run(self, sampler: BaseSampler, n_asks: int, batch: int = 3) -> list[tuple[str, Any, Any]]:
        """Ask in batches of ``batch``, telling each batch's results; return the journal."""
        journal: list[tuple[str, Any, Any]] = []
        pending: list[dict[str, Any]] = []
        for _ in range(n_asks):
            params = sampler.ask()
            if params is None:
                break
            journal.append(("asked", _round_trip(params), None))
            pending.append(_round_trip(params))
            if len(pending) == batch:
                for told in pending:
                    value = objective(told)
                    sampler.tell(told, value)
                    journal.append(("finished", told, value))
                pending.clear()
        return journal

    @staticmethod
    def _restore(sampler: BaseSampler, journal: list[tuple[str, Any, Any]]) -> None:
        """Restore ``sampler`` from ``journal``, failing if it asks while doing so."""
        asked = [params for event, params, _ in journal if event == "asked"]
        sid = {json.dumps(params, sort_keys=True): i for i, params in enumerate(asked)}
        told = [
            (sid[json.dumps(params, sort_keys=True)], value)
            for event, params, value in journal
            if event == "finished"
        ]

        def no_ask() -> None:
            raise AssertionError("restore asked the sampler")

        sampler.ask = no_ask  # type: ignore[method-assign]
        try:
            sampler.restore(SamplerHistory(asked=tuple(asked), told=tuple(told)))
        finally:
            del sampler.ask

    @staticmethod
    def _next(sampler: BaseSampler, n: int) -> list[dict[str, Any] | None]:
        return [sampler.ask() for _ in range(n)]

    # -- the contract ----------------------------------------------------------------
    def test_settings_are_valid(self) -> None:
        assert validate_optimizer(self.name, self.settings, self.space()) == []

    def test_proposals_are_json_values_within_the_space(self) -> None:
        space = self.space()
        journal = self._run(self.make(), self.n_asks)
        asked = [params for event, params, _ in journal if event == "asked"]
        assert asked
        for params in asked:
            assert _all_json(params)
            assert list(params) == list(space.names)
            assert space.contains(params), params

    def test_proposals_are_plain_python_objects(self) -> None:
        sampler = self.make()
        for _ in range(10):
            params = sampler.ask()
            if params is None:
                break
            assert _all_json(params), params
            sampler.tell(params, 1.0)

    @pytest.mark.parametrize("minimize", [True, False])
    def test_restoring_from_the_journal_rebuilds_the_state(self, minimize: bool) -> None:
        original = self.make(seed=7, minimize=minimize)
        journal = self._run(original, self.n_asks)
        restored = self.make(seed=7, minimize=minimize)
        self._restore(restored, journal)
        self._check_next(restored, original, 10)

    def test_restore_with_asks_outstanding(self) -> None:
        original = self.make(seed=3)
        journal = self._run(original, self.n_asks // 2, batch=4)
        journal.append(("asked", _round_trip(original.ask() or {}), None))  # not yet told
        restored = self.make(seed=3)
        self._restore(restored, journal)
        self._check_next(restored, original, 5)

    def _check_next(self, restored: BaseSampler, original: BaseSampler, n: int) -> None:
        """Exact restorers propose what the original does; the others valid settings."""
        after = self._next(restored, n)
        if type(restored).restores_exactly:
            assert after == self._next(original, n)
        space = self.space()
        assert all(params is None or space.contains(params) for params in after)

    def test_same_seed_same_proposals(self) -> None:
        first = self._run(self.make(seed=11), self.n_asks)
        second = self._run(self.make(seed=11), self.n_asks)
        assert first == second

    def test_seed_changes_proposals_only_if_it_matters(self) -> None:
        first, second = self._run(self.make(seed=1), 12), self._run(self.make(seed=2), 12)
        assert (first != second) is self.seed_matters

    def test_failed_settings_are_accepted(self) -> None:
        sampler = self.make()
        space = self.space()
        for _ in range(self.n_asks):
            params = sampler.ask()
            if params is None:
                break
            sampler.tell(params, None)
            assert space.contains(params)

    def test_unknown_setting_is_reported_with_the_valid_ones(self) -> None:
        settings = {**self.settings, "bogus_key": 1, "other_bogus_key": 2}
        problems = validate_optimizer(self.name, settings, self.space())
        assert [p.path for p in problems] == [
            "optimizer_settings.bogus_key",
            "optimizer_settings.other_bogus_key",
        ]
        assert problems[0].message == f"unknown key 'bogus_key' for {self.name!r}"
        valid = problems[0].valid_keys
        assert valid is not None
        assert set(self.settings) <= set(valid)
        assert "bogus_key" not in valid
        listing = f"valid keys of optimizer_settings: {', '.join(valid) or '(none)'}"
        lines = str(ConfigError(problems)).splitlines()
        assert lines[1:] == [f"  {p}" for p in problems] + [listing]  # the list once
