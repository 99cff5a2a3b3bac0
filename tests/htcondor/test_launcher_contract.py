"""The shared launcher contract, run against the stand-in HTCondor."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.htcondor import HTCondorLauncher, HTCondorSettings
from tests.contracts.launcher import LauncherContract
from tests.htcondor.conftest import FakeCondor


class TestHTCondorLauncher(LauncherContract):
    wait_s = 40.0
    poll_timeout_s = 0.2
    quiet_s = 0.5

    @pytest.fixture(autouse=True)
    def _pool(self, condor: FakeCondor) -> None:
        """Every case runs against a fresh stand-in pool."""

    def make_launcher(self, tmp_path: Path) -> BaseLauncher:
        settings = HTCondorSettings(queue_check_interval_s=1.0, outage_tolerance_s=5.0)
        return HTCondorLauncher(
            settings, work_dir=tmp_path / "htcondor", run_name="contract", cancel_on_close=True
        )

    def abandon(self, launcher: BaseLauncher) -> None:
        assert isinstance(launcher, HTCondorLauncher)
        launcher.detach()
