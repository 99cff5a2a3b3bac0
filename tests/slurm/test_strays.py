"""A job's daemon (setsid, reparented) ends with the job on the real cluster too, whose
proctrack/linuxproc follows only the process tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpoptim.jobspec import JobState
from tests.launchers.test_local import DAEMON, daemons_killed_afterwards, is_running
from tests.slurm import test_launcher_contract  # not its class: it would be collected here

pytestmark = pytest.mark.slurm


def test_a_daemon_the_job_left_behind_ends_with_it(tmp_path: Path) -> None:
    contract = test_launcher_contract.TestSlurmLauncher()
    run_dir = tmp_path / "jobs" / "j"
    spec = contract.spec(tmp_path, "j", DAEMON, env={"HPOPTIM_RUN_DIR": str(run_dir)})
    launcher = contract.make_launcher(tmp_path)
    with daemons_killed_afterwards(spec):
        launcher.submit([spec])
        ended = contract.poll_until_ended(launcher, {"j"}, {"j"})
        assert ended["j"].state is JobState.COMPLETED
        daemon = int((run_dir / "daemon").read_text())
        assert not is_running(daemon)
