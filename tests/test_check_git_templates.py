"""hpoptim check on a config that checks out a git ref: the templates are checked at that commit.

``hpoptim run`` checks run_learning's templates in its checkout; ``check`` makes no
checkout, so it reads the repository's files at the resolved commit into a temporary
directory (a local repository from its object store, a remote one by a shallow clone)
and removes it afterwards. A template that exists only inside the image gets the same
"could not be checked here" line as at run time.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from hpoptim.cli import main

IN_IMAGE = "/opt/mpi-is/pam_models/hill.json"
LINE = (
    f"fixed_params.config.config_templates: template 'pam_config' at {IN_IMAGE} does not "
    "exist on this host; it could not be checked here and is checked inside the job's container"
)


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return done.stdout.decode().strip()


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "lttfs"
    _write(repo / "config" / "rl.json", {"lr": 0.1, "net_arch": [64, 64]})
    _write(
        repo / "hp_optim" / "templates.json",
        {"rl_config": "../config/rl.json", "pam_config": IN_IMAGE},
    )
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "templates")
    return repo


def _config(tmp_path: Path, url: str, param: str = "config.rl_config.lr") -> Path:
    config = {
        "optimization_procedure_name": "git_templates",
        "results_dir": str(tmp_path / "results"),
        "git_params": {"url": url, "branch": "main"},
        "script_relative_path": "wrappers/run_learning.py",
        "fixed_params": {
            "config.config_templates": "hp_optim/templates.json",
            "singularity.image": str(tmp_path / "lttfs.sif"),
        },
        "optimizer_str": "random",
        "optimized_params": [{"param": param, "distribution": "Uniform", "bounds": [0.01, 1]}],
        "number_of_samples": 2,
        "n_jobs_per_iteration": 1,
        "metric_to_optimize": "mean_eprewmean",
        "minimize": False,
    }
    (tmp_path / "lttfs.sif").write_bytes(b"SIF stand-in")  # check refuses a missing image
    path = tmp_path / "config.json"
    _write(path, config)
    return path


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where temporary directories go, to see that check leaves none behind."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.mark.parametrize("remote", [False, True], ids=["local-path", "file-url"])
def test_check_reads_the_templates_at_the_commit_and_names_the_in_image_one(
    remote: bool,
    tmp_path: Path,
    temp_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repo = _repo(tmp_path)
    sha = _git(repo, "rev-parse", "HEAD")
    # only the commit counts: the working tree has lost the index, uncommitted
    (repo / "hp_optim" / "templates.json").unlink()
    monkeypatch.chdir(tmp_path)
    url = repo.as_uri() if remote else str(repo)
    assert main(["check", str(_config(tmp_path, url))]) == 0
    out, err = capfd.readouterr()
    assert f"git OK: branch 'main' of {url}: commit {sha}" in out
    assert [line for line in err.splitlines() if "pam_config" in line] == [f"[hpoptim] {LINE}"]
    assert not (tmp_path / "results").exists()
    assert list(temp_root.iterdir()) == []


def test_check_fails_on_a_parameter_the_templates_at_the_commit_lack(
    tmp_path: Path,
    temp_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repo = _repo(tmp_path)
    # the working tree has the key, the commit does not: check goes by the commit
    _write(repo / "config" / "rl.json", {"lr": 0.1, "net_arch": [64, 64], "gamma": 0.9})
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(_config(tmp_path, str(repo), "config.rl_config.gamma"))]) == 2
    err = capfd.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("  optimized_params[0].param:")]
    assert "'config.rl_config.gamma'" in line
    assert str(temp_root) not in err
    assert not (tmp_path / "results").exists()
    assert list(temp_root.iterdir()) == []


def test_a_missing_index_is_named_at_the_commit_not_at_a_temporary_path(
    tmp_path: Path,
    temp_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repo = _repo(tmp_path)
    sha = _git(repo, "rev-parse", "HEAD")
    config = _config(tmp_path, str(repo))
    data = json.loads(config.read_text(encoding="utf-8"))
    data["fixed_params"]["config.config_templates"] = "hp_optim/missing.json"
    _write(config, data)
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(config)]) == 2
    err = capfd.readouterr().err
    (line,) = [x for x in err.splitlines() if "fixed_params.config.config_templates:" in x]
    assert f"'{repo}@{sha[:12]}/hp_optim/missing.json'" in line
    assert str(temp_root) not in err
