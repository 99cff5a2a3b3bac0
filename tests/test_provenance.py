"""What a run records about the code its jobs ran, end to end through the CLI, on real
git repositories: a dirty working tree (its patch), a clone at a ref, a directory
outside git; and how status, the reports and load_run show it."""

from __future__ import annotations

import hashlib
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

import hpoptim
from hpoptim.cli import main
from hpoptim.state.storage import read_journal
from tests.conftest import FakeContainerRuntime
from tests.test_checkout import commit_file, git
from tests.test_container_run import _config as container_config

JOB = """\
import os, random
import helper
from hpoptim.job import get_context, get_params, report
x = get_params()["x"]
seed = get_context()["seed"]
noise = random.Random(seed).random() + random.Random(os.environ["HPOPTIM_SEED"]).random()
report({"loss": (x - 0.3) ** 2 + helper.OFFSET + noise / 1000})
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


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _ran_in_dirty_repo(base: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A run of a dirty working tree whose tree was then changed again (so only the
    recorded commit + patch can rebuild the code the jobs ran); its repo and root."""
    repo = dirty_repo(base)
    monkeypatch.chdir(repo)
    assert main(["config.json", "-q"]) == 0
    (repo / "job.py").write_text("raise SystemExit('changed after the run')\n")
    (repo / "helper.py").unlink()
    return repo, repo / "results" / "t"


def test_rerun_rebuilds_commit_and_patch_and_reproduces_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, root = _ran_in_dirty_repo(tmp_path, monkeypatch)
    original = hpoptim.load_run(root).jobs.set_index("job_id")
    before = _files(root / "jobs")
    capsys.readouterr()

    assert main(["rerun", str(root), "1_0.0-0"]) == 0
    out = capsys.readouterr().out
    assert "the rerun reproduces job 1_0.0-0" in out
    loss = float(original.loc["1_0.0-0", "loss"])
    assert ["loss", repr(loss), repr(loss)] in [line.split() for line in out.splitlines()]
    rerun = root / "reruns" / "1_0.0-0-1"
    assert json.loads((rerun / "job" / "metrics.json").read_text()) == {"loss": loss}
    assert (rerun / "tree" / "helper.py").read_text() == "OFFSET = 0.25\n"
    assert json.loads((rerun / "rerun.json").read_text())["matched"] is True
    assert _files(root / "jobs") == before  # the original jobs' files are untouched

    assert main(["rerun", str(root), "1_0.0-0", "-q"]) == 0  # a second rerun: a new directory
    assert (root / "reruns" / "1_0.0-0-2" / "job" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param("remove", "worktree.patch, cannot be read", id="patch-removed"),
        pytest.param("corrupt", "has changed since the run started", id="patch-corrupted"),
    ],
)
def test_rerun_refuses_when_the_patch_cannot_rebuild_the_tree(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    message: str,
) -> None:
    _, root = _ran_in_dirty_repo(tmp_path, monkeypatch)
    patch = root / "provenance" / "worktree.patch"
    if damage == "remove":
        patch.unlink()
    else:
        patch.write_bytes(patch.read_bytes().replace(b"0.25", b"0.50"))
    capsys.readouterr()
    assert main(["rerun", str(root), "0_0.0-0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("hpoptim: error: cannot rerun job 0_0.0-0: the patch")
    assert message in err[0]
    assert not (root / "reruns").exists()


def test_rerun_refuses_what_cannot_be_rebuilt_or_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "helper.py").write_text("OFFSET = 0\n")
    (tmp_path / "job.py").write_text(JOB)
    _config(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["config.json", "-q"]) == 0
    root = tmp_path / "results" / "t"
    capsys.readouterr()
    assert main(["rerun", str(root), "0_0.0-0"]) == 2
    assert "outside any git repository: no commit was recorded" in capsys.readouterr().err
    assert main(["rerun", str(root), "0_0.0-1"]) == 2
    assert "no job '0_0.0-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["rerun", str(root), "0_0.0-0", "--tolerance", "-1"])
    assert usage.value.code == 2
    assert "--tolerance: must be a number >= 0, got '-1'" in capsys.readouterr().err


def test_rerun_says_clearly_when_the_metrics_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job reads a file outside its code, which changed after the run."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    outside = tmp_path / "offset.txt"
    outside.write_text("0.5")
    job = JOB.replace("import helper\n", "").replace(
        "helper.OFFSET", f"float(open({str(outside)!r}).read())"
    )
    commit_file(repo, "job.py", job, "job")
    work = tmp_path / "work"
    work.mkdir()
    _config(work, run_in_working_dir=False, git_params={"url": str(repo)})
    monkeypatch.chdir(work)
    assert main(["config.json", "-q"]) == 0
    outside.write_text("0.75")
    capsys.readouterr()
    assert main(["rerun", str(work / "results" / "t"), "0_0.0-0"]) == 1
    err = capsys.readouterr().err
    assert "hpoptim: error: metrics differ: loss: " in err
    assert "in the rerun" in err


def test_rerun_in_the_container_checks_the_image(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_container_runtime: FakeContainerRuntime,
) -> None:
    """A chained job (iteration 1 reads iteration 0's checkpoint) in the container double,
    its script untracked: rerun in the image; refused once the image has changed."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    commit_file(repo, "README", "x\n", "first")
    image = fake_container_runtime.image
    config = container_config(repo, image)
    monkeypatch.chdir(repo)
    assert main([str(config), "number_of_samples=1", "-q"]) == 0
    root = repo / "results" / "c"
    record = _started(root)["provenance"]
    assert record["image"] == str(image.resolve())
    assert record["image_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert record["changes"]["untracked"] == ["config.json", "job.py"]

    assert main(["rerun", str(root), "0_0.1-0", "-q"]) == 0
    rerun_params = root / "reruns" / "0_0.1-0-1" / "job" / "params.json"
    last = fake_container_runtime.calls()[-1]["argv"]
    assert last[:2] == ["apptainer", "exec"]
    assert str(image) in last
    assert last[-1] == str(rerun_params)

    image.write_bytes(image.read_bytes() + b"changed")
    capsys.readouterr()
    assert main(["rerun", str(root), "0_0.1-0"]) == 2
    err = capsys.readouterr().err
    assert f"cannot rerun job 0_0.1-0: the image {image.resolve()} has changed" in err


def test_resume_warns_once_when_the_tree_changed_since_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    commit_file(repo, "README", "x\n", "first")
    (repo / "job.py").write_text("raise SystemExit(1)\n")  # untracked, fails: the run stops
    _config(
        repo,
        max_attempts=1,
        n_settings_before_failure_check=1,
        n_jobs_per_iteration=1,
        number_of_samples=3,
    )
    monkeypatch.chdir(repo)
    assert main(["config.json", "-q"]) == 1
    root = repo / "results" / "t"
    capsys.readouterr()
    assert main(["resume", str(root), "-q"]) == 1
    assert "no longer the tree this run started with" not in capsys.readouterr().err
    (repo / "job.py").write_text("raise SystemExit(2)\n")
    assert main(["resume", str(root), "-q"]) == 1
    assert capsys.readouterr().err.count("no longer the tree this run started with") == 1
