"""A launcher that only records how it was built, to check the registry seam."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from hpoptim.jobspec import JobSpec, JobStatus
from hpoptim.launchers.base import BaseLauncher
from hpoptim.sections import Section

#: Its registry target, for ``monkeypatch.setitem(LAUNCHERS, name, TARGET)``.
TARGET = "tests.launchers.recording:RecordingLauncher"


class RecordingSettings(Section):
    """The ``recording`` section: one key with a default and a rule."""

    section_path: ClassVar[str] = "recording"

    n_slots: int = Field(2, ge=1, description="Slots reported by capacity().")


class RecordingLauncher(BaseLauncher):
    """Keeps the arguments of :meth:`from_settings`; runs nothing."""

    name = "recording"
    settings_model = RecordingSettings

    def __init__(self, settings: Section, work_dir: Path, run_name: str) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.run_name = run_name

    @classmethod
    def from_settings(cls, settings: Section, *, work_dir: Path, name: str) -> RecordingLauncher:
        return cls(settings, work_dir, name)

    def capacity(self) -> int | None:
        return None

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        return {}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        return []

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        pass
