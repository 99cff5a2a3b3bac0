"""Fixtures shared by the whole suite."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# the shared contracts live outside test modules: let pytest explain their failures
pytest.register_assert_rewrite("tests.contracts")

FAKES_DIR = Path(__file__).resolve().parent / "fakes"


@dataclass(frozen=True)
class FakeContainerRuntime:
    """The Apptainer/Singularity double (``tests/fakes/apptainer``) put on PATH.

    Attributes:
        bin_dir: The directory holding ``apptainer`` and ``singularity``.
        log: The file the double appends one JSON line per invocation to.
        image: An (empty-ish) image file the double accepts.
    """

    bin_dir: Path
    log: Path
    image: Path

    def calls(self) -> list[dict[str, Any]]:
        """Every invocation so far: ``{"argv": [...], "cwd": ..., "pid": ...}``."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]


@pytest.fixture
def fake_container_runtime(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> FakeContainerRuntime:
    """Put the container double first on PATH and log its invocations (FAKE_APPTAINER_LOG)."""
    root = tmp_path_factory.mktemp("container")
    image = root / "image.sif"
    image.write_bytes(b"SIF image stand-in\n" * 64)
    log = root / "apptainer_calls.jsonl"
    monkeypatch.setenv("PATH", f"{FAKES_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_APPTAINER_LOG", str(log))
    return FakeContainerRuntime(FAKES_DIR, log, image)
