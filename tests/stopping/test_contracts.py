"""Every registered early-stopping rule passes the contract suite (tests/contracts/stopping.py)."""

from __future__ import annotations

from hpoptim.stopping import RULES, available
from tests.contracts.stopping import StoppingContract


def test_every_built_in_rule_has_a_contract_test() -> None:
    tested = {cls.method for cls in StoppingContract.__subclasses__() if cls.__module__ == __name__}
    assert tested == set(RULES)
    assert available()[: len(RULES) + 1] == ["none", *RULES]


class TestSuccessiveHalvingContract(StoppingContract):
    method = "successive_halving"


class TestHyperbandContract(StoppingContract):
    method = "hyperband"


class TestMedianContract(StoppingContract):
    method = "median"
    section = {"n_startup_settings": 3}


class TestThresholdContract(StoppingContract):
    method = "threshold"
    section = {"upper": 4.0}


class TestRankContract(StoppingContract):
    method = "rank"
