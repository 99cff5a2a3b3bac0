"""examples/git_container: jobs from a git tag of a made-up repository, run in a container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import FAKES_DIR, FakeContainerRuntime

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "git_container"
N_SAMPLES = 6  # number_of_samples in the example's config, one process each


def _make_repo(where: Path) -> tuple[Path, Path, str, str]:
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_repo.py"), str(where)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    repo = where / "train_repo"

    def rev(ref: str) -> str:
        out = subprocess.run(
            ["git", "rev-parse", f"{ref}^{{commit}}"],
            cwd=repo, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()

    return repo, where / "image.sif", rev("v1.0"), rev("HEAD")


def _run_example(tmp_path: Path, repo: Path, image: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "hpoptim", str(EXAMPLE / "config.yaml"),
         f"results_dir={str(tmp_path / 'results')!r}",
         f"git_params.url={str(repo)!r}",
         f"singularity.image={str(image)!r}", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "results" / "git_container"


def _check_jobs_ran_from_tag(root: Path, image: Path, tagged: str) -> pd.DataFrame:
    jobs = pd.read_csv(root / "jobs.csv")
    assert len(jobs) == N_SAMPLES
    assert set(jobs["status"]) == {"completed"}
    assert set(jobs["commit"]) == {tagged}
    assert set(jobs["dirty"].astype(str)) == {"False"}
    assert set(jobs["code_version"]) == {1}  # the tag's train.py; main has CODE_VERSION = 2
    checkout = (root / "checkout").resolve()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout, check=True, capture_output=True, text=True
    )
    assert head.stdout.strip() == tagged
    for job_dir in jobs["job_dir"]:
        seen = json.loads((Path(job_dir) / "provenance.json").read_text())
        assert Path(seen["script"]) == checkout / "train.py"
        assert Path(seen["cwd"]).resolve() == checkout
        assert Path(seen["container"]).resolve() == image.resolve()
    return jobs


@pytest.mark.integration
def test_jobs_run_from_the_tag_through_the_container_double(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    repo, image, tagged, head = _make_repo(tmp_path / "src")
    assert tagged != head
    root = _run_example(tmp_path, repo, image)
    jobs = _check_jobs_ran_from_tag(root, image, tagged)

    calls: list[dict[str, Any]] = fake_container_runtime.calls()
    assert len(calls) == N_SAMPLES
    checkout = str((root / "checkout").resolve())
    params_files = {str(Path(d) / "params.json") for d in jobs["job_dir"]}
    for call in calls:
        argv = call["argv"]
        assert argv[:2] == ["apptainer", "exec"]
        assert argv[argv.index("--pwd") + 1] == checkout
        tail = argv[argv.index(str(image)) + 1 :]
        assert tail[:2] == ["python3", f"{checkout}/train.py"]
        params_files.discard(tail[2])
    assert params_files == set()  # every job went through the double
    run_started = next(
        json.loads(line)
        for line in (root / "journal.jsonl").read_text().splitlines()
        if '"run_started"' in line
    )
    assert run_started["checkout"]["commit"] == tagged
    assert run_started["checkout"]["ref"] == "v1.0"


def _real_runtime() -> str | None:
    for name in ("apptainer", "singularity"):
        found = shutil.which(name)
        if found is not None and Path(found).resolve().parent != FAKES_DIR:
            return found
    return None


@pytest.mark.integration
@pytest.mark.apptainer_real
def test_jobs_run_from_the_tag_in_the_real_runtime(tmp_path: Path) -> None:
    runtime, image_env = _real_runtime(), os.environ.get("HPOPTIM_TEST_IMAGE", "")
    if runtime is None or not image_env:
        pytest.skip("needs apptainer/singularity on PATH and HPOPTIM_TEST_IMAGE (a .sif image "
                    "with python3)")  # fmt: skip
    repo, _, tagged, _ = _make_repo(tmp_path / "src")
    image = Path(image_env).expanduser().resolve()
    root = _run_example(tmp_path, repo, image)
    _check_jobs_ran_from_tag(root, image, tagged)
