"""Issue 13's acceptance on the real Slurm cluster: the mock LTTFS setup with ``run_local: false``.

The config is the one of ``tests/test_lttfs_migration.py``, unchanged but for the
override cluster_utils users write to leave their machine; every process is a Slurm
job running the shipped wrappers inside the isolating Apptainer double.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpoptim.state.storage import read_journal
from tests.conftest import FakeContainerRuntime
from tests.test_lttfs_migration import run_lttfs_setup

pytestmark = [pytest.mark.slurm, pytest.mark.integration]


def test_lttfs_setup_runs_on_slurm(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_container_runtime: FakeContainerRuntime,
    capfd: pytest.CaptureFixture[str],
) -> None:
    run_lttfs_setup(
        tmp_path,
        monkeypatch,
        fake_container_runtime,
        capfd,
        overrides=("optimization_setting.run_local=False",),
    )
    journal = tmp_path / "results" / "lttfs_robot_position" / "journal.jsonl"
    native = [e for e in read_journal(journal) if e["e"] == "native_ids"]
    ids = [i for e in native for i in e["ids"].values()]
    assert len(ids) == 10  # every process was a Slurm job
    assert all(str(i).split("_")[0].isdigit() for i in ids), json.dumps(ids)
