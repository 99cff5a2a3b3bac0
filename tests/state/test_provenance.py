"""The provenance record: what it says, whether it can rebuild the jobs' code, and how a
run journaled by an earlier version reads."""

from __future__ import annotations

from typing import Any

import pytest

from hpoptim.state.provenance import Patch, Provenance, SourceKind, WorktreeChanges

SHA = "a" * 40
DIRTY = WorktreeChanges(modified=("train.py",), untracked=("new.py",))


def _record(**fields: Any) -> Provenance:
    base: dict[str, Any] = {"source": SourceKind.WORKING_DIR, "root": "/w", "repository": "/w"}
    return Provenance(**{**base, **fields})


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        pytest.param(_record(commit=SHA), "", id="clean"),
        pytest.param(
            _record(commit=SHA, changes=DIRTY, patch=Patch("provenance/worktree.patch", "d", 9)),
            "",
            id="dirty-with-patch",
        ),
        pytest.param(
            _record(source=SourceKind.NO_REPOSITORY, repository=None),
            "outside any git repository: no commit was recorded",
            id="no-repository",
        ),
        pytest.param(
            _record(commit=SHA, changes=DIRTY),
            "uncommitted changes and no patch of them was stored",
            id="dirty-without-patch",
        ),
        pytest.param(
            _record(commit=SHA, changes=DIRTY, patch=Patch(None, note="over the cap")),
            "no patch of the uncommitted changes was stored: over the cap",
            id="patch-over-the-cap",
        ),
        pytest.param(
            _record(
                commit=SHA,
                changes=DIRTY,
                patch=Patch("p", "d", 9, left_out=("big.bin",), note="1 left out"),
            ),
            "leaves out 1 untracked file(s) over the size cap: big.bin",
            id="untracked-file-left-out",
        ),
    ],
)
def test_rebuild_problem(record: Provenance, problem: str) -> None:
    found = record.rebuild_problem()
    assert problem in found if problem else found == ""
    if record.commit is not None:
        assert ("NOT reproducible" in record.code_line()) == bool(problem)
    assert Provenance.from_dict(record.to_dict()) == record


def test_lines_name_code_changes_image_and_versions() -> None:
    record = _record(
        commit=SHA,
        subdir="exp",
        changes=DIRTY,
        patch=Patch("provenance/worktree.patch", "d", 9),
        image="/img/x.sif",
        image_sha256="f" * 64,
        hpoptim_version="1.2",
        driver_python="3.11.7",
    ).with_job_python("3.10.1")
    assert record.lines() == [
        f"code: commit {SHA} of /w (in exp) plus uncommitted changes: 1 modified (train.py), "
        "1 untracked (new.py); patch provenance/worktree.patch",
        f"image: /img/x.sif (sha256 {'f' * 64})",
        "versions: hpoptim 1.2, driver Python 3.11.7, job Python 3.10.1",
    ]


@pytest.mark.parametrize(
    ("checkout", "source", "problem"),
    [
        pytest.param(
            {"root": "/w", "commit": SHA, "dirty": False, "url": "/w", "cloned": False},
            SourceKind.WORKING_DIR,
            "earlier hpoptim version, which did not look at untracked files",
            id="working-dir: untracked files were never looked at",
        ),
        pytest.param(
            {"root": "/c", "commit": SHA, "dirty": False, "url": "u", "cloned": True},
            SourceKind.CLONE,
            "",
            id="clone: clean by construction",
        ),
        pytest.param(
            {"root": "/w", "commit": None, "dirty": False, "url": None, "cloned": False},
            SourceKind.NO_REPOSITORY,
            "no commit was recorded",
            id="no-repository",
        ),
    ],
)
def test_a_run_journaled_by_an_earlier_version(
    checkout: dict[str, Any], source: SourceKind, problem: str
) -> None:
    info = {"checkout": checkout, "image_sha256": None, "hpoptim_version": "0.0.9", "python": "3.9"}
    record = Provenance.from_run_info(info)
    assert record is not None
    assert (record.source, record.commit, record.driver_python) == (
        source,
        checkout["commit"],
        "3.9",
    )
    found = record.rebuild_problem()
    assert problem in found if problem else found == ""


def test_a_run_not_started_has_no_record() -> None:
    assert Provenance.from_run_info({}) is None
