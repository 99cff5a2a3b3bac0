"""The stand-in HTCondor (``tests/fakes/condor``) on PATH, with its schedd running."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FAKE_DIR = Path(__file__).resolve().parents[1] / "fakes" / "condor"


def _fake_module() -> ModuleType:
    sys.path.insert(0, str(FAKE_DIR))  # fakecondor's own import of fake_schedd
    spec = importlib.util.spec_from_file_location("fakecondor", FAKE_DIR / "fakecondor.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeCondor:
    """The stand-in's state directory, with the faults a test may inject."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._module = _fake_module()

    def state(self) -> dict[str, Any]:
        path = self.state_dir / "queue.json"
        return json.loads(path.read_text()) if path.exists() else {"jobs": {}, "history": []}

    def queue(self) -> dict[str, dict[str, Any]]:
        """The jobs in the queue (removed ones leave it once their processes ended)."""
        jobs: dict[str, dict[str, Any]] = self.state()["jobs"]
        return jobs

    def submit_calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.state().get("submit_calls", [])
        return calls

    def inject(self, fault: str, native: str = "", value: Any = None) -> None:
        """``evict``/``hold``/``vanish`` job ``native``, an ``outage`` of ``value`` s, or
        ``lose_reply`` (the next condor_submit queues, then fails transiently)."""
        self._module.inject(self.state_dir, fault, native, value)


@pytest.fixture
def condor(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeCondor]:
    """A fresh stand-in pool of 8 slots whose tools are first on PATH."""
    state_dir = tmp_path_factory.mktemp("condor")
    monkeypatch.setenv("FAKE_CONDOR_DIR", str(state_dir))
    monkeypatch.setenv("FAKE_CONDOR_PYTHON", sys.executable)
    monkeypatch.setenv("PATH", f"{FAKE_DIR}:{__import__('os').environ['PATH']}")
    schedd = subprocess.Popen(
        [sys.executable, str(FAKE_DIR / "fakecondor.py"), "schedd", str(state_dir), "8"]
    )
    deadline = time.monotonic() + 20
    while not (state_dir / "schedd.ready").exists():
        assert schedd.poll() is None, "the stand-in schedd died"
        assert time.monotonic() < deadline, "the stand-in schedd did not start"
        time.sleep(0.01)
    try:
        yield FakeCondor(state_dir)
    finally:
        schedd.terminate()
        schedd.wait(timeout=30)
