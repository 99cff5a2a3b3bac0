"""Fixtures shared by the whole suite."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# the shared contracts live outside test modules: let pytest explain their failures
pytest.register_assert_rewrite("tests.contracts")

FAKES_DIR = Path(__file__).resolve().parent / "fakes"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the launcher contract cases a class leaves to another (see
    ``LauncherContract.only_cases``): each case runs in exactly one of them."""
    kept, dropped = [], []
    for item in items:
        cls = getattr(item, "cls", None)
        runs = getattr(cls, "runs_case", None)
        name = getattr(item, "originalname", item.name).removeprefix("test_")
        (dropped if runs is not None and not runs(name) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


REQUIRE_TOOLS_VAR = "HPOPTIM_REQUIRE_TOOLS"


def require_tool(*names: str, package: str, purpose: str) -> str:
    """The path of the first of ``names`` on PATH; else skip the test, saying why.

    With ``HPOPTIM_REQUIRE_TOOLS=1`` (CI, which installs every tool) a missing tool is a
    failure instead of a skip, as ``HPOPTIM_REQUIRE_SLURM=1`` is for the Slurm tests.
    """
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    problem = (
        f"{' or '.join(names)} is not on PATH ({purpose}; install it with "
        f"`apt-get install {package}`, as .ci/run does)"
    )
    if os.environ.get(REQUIRE_TOOLS_VAR) == "1":
        pytest.fail(f"{REQUIRE_TOOLS_VAR}=1 but {problem}")
    pytest.skip(problem)


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
    """Put the container double first on PATH and log its invocations (FAKE_APPTAINER_LOG).

    The double isolates jobs with bubblewrap: without ``bwrap`` the test is skipped (see
    :func:`require_tool`).
    """
    require_tool(
        "bwrap", package="bubblewrap", purpose="the Apptainer double isolates jobs with bubblewrap"
    )
    root = tmp_path_factory.mktemp("container")
    image = root / "image.sif"
    image.write_bytes(b"SIF image stand-in\n" * 64)
    log = root / "apptainer_calls.jsonl"
    monkeypatch.setenv("PATH", f"{FAKES_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_APPTAINER_LOG", str(log))
    return FakeContainerRuntime(FAKES_DIR, log, image)
