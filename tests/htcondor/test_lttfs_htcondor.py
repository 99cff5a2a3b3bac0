"""The mock LTTFS setup with ``run_local: false`` where ``condor_submit`` is on PATH: every
process is an HTCondor job of the stand-in pool, submitted with the config's bid."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpoptim.state.storage import read_journal
from tests.conftest import FakeContainerRuntime
from tests.htcondor.conftest import FakeCondor
from tests.test_lttfs_migration import run_lttfs_setup

pytestmark = pytest.mark.integration


def test_lttfs_setup_runs_on_htcondor(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    condor: FakeCondor,
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
    ids = [i for e in read_journal(journal) if e["e"] == "native_ids" for i in e["ids"].values()]
    assert len(ids) == 10  # every process was an HTCondor job
    assert all(str(i).count(".") == 1 for i in ids), ids
    calls = condor.submit_calls()
    assert {c["bid"] for c in calls} == {100}
    assert len(calls) < len(ids)  # batches, not one call per job
