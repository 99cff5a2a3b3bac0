"""The Grid Engine launcher (``sge``): array jobs through qsub, followed with qstat/qacct."""

from __future__ import annotations

from hpoptim.launchers.sge.launcher import SgeLauncher
from hpoptim.launchers.sge.settings import SgeOptions, SgeSettings

__all__ = ["SgeLauncher", "SgeOptions", "SgeSettings"]
