"""What a run records about the code its jobs ran, end to end through the CLI, on real
git repositories: a dirty working tree (its patch), a clone at a ref, a directory
outside git; and how status, the reports and load_run show it."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

import hpoptim
from hpoptim.cli import main
from hpoptim.state.storage import read_journal
from tests.test_checkout import commit_file, git

JOB = """\
import helper
from hpoptim.job import get_params, report
x = get_params()["x"]
report({"loss": (x - 0.3) ** 2 + helper.OFFSET})
"""


def _config(where: Path, **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "t",
        "results_dir": str(where / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 2,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 1,
        "local": {"n_parallel_jobs": 2},
    }
    cfg.update(extra)
    path = where / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def dirty_repo(base: Path) -> Path:
    """A repository whose job script is modified, with an untracked module it imports,
    a staged change and an ignored file; the run's results go inside, untracked."""
    repo = base / "repo"
    git(base, "init", "--quiet", "-b", "main", str(repo))
    commit_file(repo, "job.py", "raise SystemExit('the committed job')\n", "first")
    commit_file(repo, ".gitignore", "*.ckpt\n", "ignore")
    commit_file(repo, "notes.txt", "a\n", "notes")
    (repo / "job.py").write_text(JOB)  # modified
    (repo / "helper.py").write_text("OFFSET = 0.25\n")  # untracked
    (repo / "notes.txt").write_text("b\n")
    git(repo, "add", "notes.txt")  # staged
    (repo / "model.ckpt").write_bytes(b"ignored")
    _config(repo)
    return repo


def _started(root: Path) -> dict[str, Any]:
    return next(e for e in read_journal(root / "journal.jsonl") if e["e"] == "run_started")


def test_a_dirty_working_tree_is_recorded_with_its_patch_and_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = dirty_repo(tmp_path)
    monkeypatch.chdir(repo)
    assert main(["config.json"]) == 0
    err = capsys.readouterr().err
    assert err.count("differs from its commit") == 1
    root = repo / "results" / "t"
    record = _started(root)["provenance"]
    head = git(repo, "rev-parse", "HEAD")
    assert (record["source"], record["commit"], record["subdir"]) == ("working_dir", head, "")
    assert record["changes"] == {
        "modified": ["job.py"],
        "staged": ["notes.txt"],
        "untracked": ["config.json", "helper.py"],
    }
    patch = root / record["patch"]["path"]
    assert stat.S_IMODE(patch.stat().st_mode) == 0o600
    assert stat.S_IMODE(patch.parent.stat().st_mode) == 0o700
    assert b"OFFSET = 0.25" in patch.read_bytes()
    assert record["hpoptim_version"] == hpoptim.__version__
    assert record["driver_python"] == sys.version.split()[0]

    run = hpoptim.load_run(root)
    assert run.provenance is not None
    assert run.provenance.dirty
    assert run.provenance.job_python == sys.version.split()[0]
    assert set(run.jobs["dirty"]) == {True}

    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"code: commit {head} of {repo} plus uncommitted changes: 1 modified" in out
    assert "2 untracked (config.json, helper.py); patch provenance/worktree.patch" in out
    assert f"job Python {sys.version.split()[0]}" in out
    report = (root / "report.md").read_text()
    assert "plus uncommitted changes" in report
    assert "provenance/worktree.patch" in report


def test_outside_git_no_commit_is_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "helper.py").write_text("OFFSET = 0\n")
    (tmp_path / "job.py").write_text(JOB)
    _config(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["config.json", "-q"]) == 0
    root = tmp_path / "results" / "t"
    record = _started(root)["provenance"]
    assert (record["source"], record["commit"], record["patch"]) == ("no_repository", None, None)
    assert main(["status", str(root)]) == 0
    assert "outside any git repository (no commit recorded)" in capsys.readouterr().out
    assert set(hpoptim.load_run(root).jobs["commit"]) == {""}


def test_a_clone_at_a_ref_is_recorded_clean_at_the_resolved_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = dirty_repo(tmp_path)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "everything")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "job.py").write_text("uncommitted, not part of the clone\n")
    work = tmp_path / "work"
    work.mkdir()
    _config(work, run_in_working_dir=False, git_params={"url": str(repo), "branch": "main"})
    monkeypatch.chdir(work)
    assert main(["config.json", "-q"]) == 0
    record = _started(work / "results" / "t")["provenance"]
    assert (record["source"], record["commit"], record["patch"]) == ("clone", head, None)
    assert record["changes"] == {"modified": [], "staged": [], "untracked": []}
