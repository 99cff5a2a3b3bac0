"""The launcher contract's time-limit cases on the real Slurm cluster.

A file of their own, so that they run beside the other cases
(test_launcher_contract.py) instead of after them: each waits a minute and more.
"""

from __future__ import annotations

import pytest

from tests.slurm import test_launcher_contract as contract

pytestmark = pytest.mark.slurm


class TestSlurmLauncherTimeLimits(contract.TestSlurmLauncher):
    only_cases = contract.TIME_LIMIT_CASES
    other_cases = frozenset()
