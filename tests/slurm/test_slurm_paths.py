"""Hostile paths and values through real sbatch: single scripts and job arrays."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from hpoptim.jobspec import JobPaths, JobSpec, JobState, JobStatus
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions

pytestmark = pytest.mark.slurm

HOSTILE_DIR = 'it\'s a "dir" $(touch pwned); 100% `x` & more'
BODY = (
    "import json, os, sys\n"
    "print('out', sys.argv[1:], flush=True)\n"
    "print('err', file=sys.stderr)\n"
    "json.dump({'argv': sys.argv[1:], 'env': os.environ['HOSTILE'], 'cwd': os.getcwd()},"
    " open(os.path.join(os.environ['RUN'], 'seen.json'), 'w'))\n"
    "sys.exit(int(sys.argv[1]))"
)


@pytest.mark.parametrize(
    ("use_job_arrays", "n_sbatch"),
    [pytest.param(False, 3, id="single-scripts"), pytest.param(True, 1, id="one-array")],
)
def test_hostile_paths_args_and_env_arrive_verbatim(
    tmp_path: Path, use_job_arrays: bool, n_sbatch: int
) -> None:
    root = tmp_path / HOSTILE_DIR
    specs = []
    for i in range(3):
        run_dir = root / "jobs" / f"run {i};$(id)"
        run_dir.mkdir(parents=True)
        specs.append(
            JobSpec(
                job_id=f"j{i}",
                argv=(sys.executable, "-c", BODY, str(i), "a b", "$(touch pwned)", "'q'"),
                cwd=root,
                paths=JobPaths(run_dir),
                env={"HOSTILE": "x $HOME `id` 'y' \"z\" ;", "RUN": str(run_dir)},
            )
        )
    options = SlurmOptions(
        poll_interval_s=0.5,
        max_poll_interval_s=1.0,
        use_job_arrays=use_job_arrays,
        script_dir=root / "slurm",
        job_name_prefix=HOSTILE_DIR,
    )
    ended: dict[str, JobStatus] = {}
    with SlurmLauncher(options, cancel_on_close=True) as launcher:
        launcher.submit(specs)
        deadline = time.monotonic() + 60
        while len(ended) < len(specs):
            assert time.monotonic() < deadline, "jobs did not end"
            ended.update({s.job_id: s for s in launcher.poll(0.5) if s.state.is_terminal})
        assert launcher.n_calls["sbatch"] == n_sbatch
    assert [ended[s.job_id].state for s in specs] == [
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.FAILED,
    ]
    for i, spec in enumerate(specs):
        seen = json.loads((spec.paths.run_dir / "seen.json").read_text())
        assert seen == {
            "argv": [str(i), "a b", "$(touch pwned)", "'q'"],
            "env": "x $HOME `id` 'y' \"z\" ;",
            "cwd": str(root),
        }
        assert spec.paths.stdout.read_text().startswith("out")
        assert spec.paths.stderr.read_text() == "err\n"
    assert not list(tmp_path.rglob("pwned"))
