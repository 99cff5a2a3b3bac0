"""The HTCondor launcher: batches of jobs submitted with condor_submit, followed by the
job event log (see :mod:`hpoptim.launchers.htcondor.launcher`)."""

from __future__ import annotations

from hpoptim.launchers.htcondor.launcher import HTCondorLauncher
from hpoptim.launchers.htcondor.settings import HTCondorSettings

__all__ = ["HTCondorLauncher", "HTCondorSettings"]
