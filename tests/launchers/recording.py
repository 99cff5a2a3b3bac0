"""A launcher that only records how it was built, to check the registry seam."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpoptim.jobspec import JobSpec, JobStatus
from hpoptim.launchers.base import BaseLauncher

#: Its registry target, for ``monkeypatch.setitem(LAUNCHERS, name, TARGET)``.
TARGET = "tests.launchers.recording:RecordingLauncher"


class RecordingLauncher(BaseLauncher):
    """Keeps the arguments of :meth:`from_settings`; runs nothing."""

    name = "recording"

    def __init__(self, settings: Mapping[str, Any], work_dir: Path, run_name: str) -> None:
        self.settings = dict(settings)
        self.work_dir = work_dir
        self.run_name = run_name

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, work_dir: Path, name: str
    ) -> RecordingLauncher:
        return cls(settings, work_dir, name)

    def capacity(self) -> int | None:
        return None

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        return {}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        return []

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        pass
