"""Behaviour every early-stopping rule must show, as a reusable test class.

A rule's tests subclass :class:`StoppingContract` and set ``method`` (its registry
name) and, if its defaults do not make a valid section, ``section``::

    class TestMedianContract(StoppingContract):
        method = "median"

The driver journals every decision and rebuilds a rule on resume by telling it the
same calls again, so a rule must be a deterministic fold of ``judge``/``finished``.
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import pytest

from hpoptim.config.stopping import early_stopping_settings
from hpoptim.errors import ConfigError
from hpoptim.run.early_stopping import EarlyStopper
from hpoptim.stopping import BaseStoppingRule, StoppingSettings, load, settings_models

N_ITERATIONS = 6


def _curves(seed: int, n: int = 14) -> list[list[float]]:
    """Learning curves of ``n`` settings (noisy, decreasing, some far worse)."""
    rng = random.Random(seed)
    curves = []
    for _ in range(n):
        level, speed = rng.uniform(0, 3), rng.uniform(0.1, 1)
        curves.append([level + 3 * math.exp(-speed * k) + rng.gauss(0, 0.05) for k in range(6)])
    return curves


class StoppingContract:
    """Subclass and set ``method`` (and ``section`` when the defaults are not valid)."""

    method: ClassVar[str]
    section: ClassVar[dict[str, Any]] = {}

    def settings(self) -> StoppingSettings:
        return early_stopping_settings({"method": self.method, **self.section})

    def make(self, minimize: bool = True) -> EarlyStopper:
        return EarlyStopper(self.settings(), n_iterations=N_ITERATIONS, minimize=minimize)

    def test_is_registered_with_its_settings_model(self) -> None:
        rule = load(self.method)
        assert issubclass(rule, BaseStoppingRule)
        assert rule.name == self.method
        assert settings_models()[self.method] is rule.settings_model
        assert rule.settings_model.model_fields["method"].default == self.method
        assert isinstance(self.settings(), rule.settings_model)
        assert self.settings().enabled

    def test_settings_round_trip_through_the_saved_config(self) -> None:
        settings = self.settings()
        assert early_stopping_settings(settings.to_dict()) == settings

    def test_a_key_of_another_method_is_refused_at_any_value(self) -> None:
        own = set(settings_models()[self.method].model_fields)
        models = settings_models()
        others = {
            key: field.default
            for model in models.values()
            for key, field in model.model_fields.items()
            if key not in own
        }
        assert others or len(models) == 2
        for key, default in others.items():  # its default: refused all the same
            with pytest.raises(ConfigError) as info:
                early_stopping_settings({**self.settings().to_dict(), key: default})
            (problem,) = info.value.problems
            users = " and ".join(repr(n) for n, m in models.items() if key in m.model_fields)
            assert problem.path == f"early_stopping.{key}"
            assert problem.message.startswith(f"applies to method {users}, not to {self.method!r}")

    def test_an_unknown_key_is_refused(self) -> None:
        with pytest.raises(ConfigError, match=r"early_stopping\.bogus: unknown key"):
            early_stopping_settings({"method": self.method, **self.section, "bogus": 1})

    @pytest.mark.parametrize("minimize", [True, False])
    def test_decisions_are_a_fold_of_the_calls(self, minimize: bool) -> None:
        """Two rules told the same calls decide the same; replaying the journal of one
        into a third rebuilds a rule that decides the rest the same."""
        first, second = self.make(minimize), self.make(minimize)
        events: list[dict[str, Any]] = []
        curves = _curves(seed=3)
        half, n_stopped = len(curves) // 2, 0
        for sid, curve in enumerate(curves):
            if sid == half:
                replayed = self.make(minimize)
                replayed.replay(events)
                second = replayed
            stopped_at = None
            for step, value in enumerate(curve[:-1], start=1):
                decision = first.judge(sid, step, value)
                assert isinstance(decision, bool)
                assert second.judge(sid, step, value) is decision
                events.append({"e": "judged", "sid": sid, "it": step - 1, "value": value})
                if decision:
                    stopped_at, n_stopped = step, n_stopped + 1
                    break
            value = curve[stopped_at - 1] if stopped_at else curve[-1]
            for rule in (first, second):
                rule.finished(sid, value, stopped=stopped_at is not None)
            result = {"value": value, "stopped_at": stopped_at}
            events.append({"e": "setting_finished", "sid": sid, "result": result})
        if minimize:  # the curves fall: they exercise the rule, which stops some, not all
            assert 0 < n_stopped < len(curves)

    def test_a_missing_value_or_the_last_iteration_never_stops(self) -> None:
        stopper = self.make()
        for sid, curve in enumerate(_curves(seed=5)):
            assert not stopper.judge(sid, 1, None)
            assert not stopper.judge(sid, 1, math.nan)
            assert not stopper.judge(sid, N_ITERATIONS, 1e9)
            stopper.finished(sid, curve[-1])
        stopper.finished(99, None)  # a failed setting is accepted
