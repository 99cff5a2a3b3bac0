"""Issue 13's acceptance: an LTTFS-style hp_optim setup runs unchanged but for the wrapper choice.

A mock learning_table_tennis_from_scratch repository (a real git repository) holds
config templates, a template index with an in-image absolute path, and its
cluster_utils config. hpoptim runs it through the shipped run_singularity ->
run_learning inside the isolating Apptainer double, with a sandbox image that
holds ``/opt/mpi-is`` (the pam model template and a fake ``hysr_one_ball_rl`` on the
image's PATH): 2 reruns, a retry, and 2 chained iterations per rerun.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from tests.conftest import FakeContainerRuntime

# hysr_one_ball_rl as the image has it: reads the flat main config in its working
# directory, trains from the previous iteration's checkpoint, writes progress.csv.
FAKE_HYSR = """\
#!/usr/bin/env python3
import json, os, sys
from pathlib import Path

main_config = Path(sys.argv[1])
assert main_config.parent == Path.cwd(), "the learner runs in its own run directory"
paths = json.loads(main_config.read_text())
assert all(isinstance(v, str) for v in paths.values()), "flat {name: path} like config.json"
configs = {name: json.loads(Path(p).read_text()) for name, p in paths.items()}
info = json.loads(Path("run_info.json").read_text())
first_try = os.environ["HPOPTIM_ATTEMPT"] == "0" and info["iteration"] == 0
if os.environ["HPOPTIM_RERUN"] == "1" and first_try:
    sys.exit("simulated crash of the first attempt of rerun 1")
start = 0.0
if info["resume_from"]:
    start = json.loads((Path(info["resume_from"]) / "ckpt.json").read_text())["progress"]
hysr, rl = configs["hysr_config"], configs["rl_config"]
progress = start + 1.0
reward = -abs(hysr["robot_position"][1]) - rl["nested"]["lr"] + rl["net_arch"][12] + progress
Path(info["checkpoint_dir"], "ckpt.json").write_text(json.dumps({"progress": progress}))
Path("progress.csv").write_text(f"step,rollout/ep_rew_mean\\n1,{reward}\\n")
Path("seen.json").write_text(json.dumps({"configs": configs, "iteration": info["iteration"]}))
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _mock_lttfs(root: Path, image: Path) -> Path:
    repo = root / "learning_table_tennis_from_scratch"
    _write(repo / "config" / "hysr_one_ball_default_sim.json", {"robot_position": [0.1, 0.2, 0.3]})
    rl = {"net_arch": list(range(14)), "nested": {"lr": 0.01, "gamma": 0.99}, "steps": 5}
    _write(repo / "config" / "openai_ppo_default.json", rl)
    _write(repo / "config" / "reward_default.json", {"normalization_constant": 3.0})
    _write(
        repo / "hp_optim" / "config_templates_ppo.json",
        {
            "reward_config": "../config/reward_default.json",
            "hysr_config": "../config/hysr_one_ball_default_sim.json",
            "pam_config": "/opt/mpi-is/pam_models/hill.json",
            "rl_config": "../config/openai_ppo_default.json",
        },
    )
    config = {
        "optimization_procedure_name": "lttfs_robot_position",
        "results_dir": str(root / "results"),
        "run_in_working_dir": False,
        "git_params": {"branch": "master", "commit": None},
        "script_relative_path": "wrappers/run_singularity.py",  # the wrapper choice
        "remove_jobs_dir": False,
        "environment_setup": {},
        "cluster_requirements": {
            "request_cpus": 1,
            "request_gpus": 0,
            "cuda_requirement": None,
            "memory_in_mb": 1000,
            "bid": 100,
        },
        "fixed_params": {
            "learning_runs_per_job": 2,
            "max_attempts": 2,
            "training_iterations": 2,
            "config.config_templates": "./hp_optim/config_templates_ppo.json",
            "singularity.image": str(image),
            "singularity.script": "wrappers/run_learning.py",  # the wrapper choice
        },
        "optimizer_str": "cem_metaoptimizer",
        "optimizer_settings": {"with_restarts": False, "num_jobs_in_elite": 10},
        "optimization_setting": {
            "metric_to_optimize": "mean_eprewmean",
            "minimize": False,
            "number_of_samples": 2,
            "n_jobs_per_iteration": 2,
            "run_local": True,
        },
        "num_best_jobs_whose_data_is_kept": 1,
        "optimized_params": [
            {
                "param": "config.hysr_config.robot_position:1",
                "distribution": "TruncatedNormal",
                "bounds": [-0.35, 0.35],
            },
            {
                "param": "config.rl_config.net_arch:12",
                "distribution": "Discrete",
                "options": [32, 64],
            },
            {
                "param": "config.rl_config.nested.lr",
                "distribution": "TruncatedLogNormal",
                "bounds": [0.0001, 0.01],
            },
        ],
    }
    _write(repo / "hp_optim" / "hp_optim_ppo.json", config)
    _git(repo.parent, "init", "-q", "-b", "master", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "mock")
    return repo


def _sandbox_image(root: Path) -> Path:
    """A sandbox image holding /opt/mpi-is (the OS is the host's, see tests/fakes/apptainer)."""
    image = root / "lttfs_image"
    _write(image / "opt" / "mpi-is" / "pam_models" / "hill.json", {"a": 1.0, "b": [1, 2]})
    hysr = image / "opt" / "mpi-is" / "bin" / "hysr_one_ball_rl"
    hysr.parent.mkdir(parents=True)
    hysr.write_text(FAKE_HYSR, encoding="utf-8")
    hysr.chmod(0o755)
    env = image / ".singularity.d" / "env" / "90-environment.sh"
    env.parent.mkdir(parents=True)
    env.write_text('export PATH="/opt/mpi-is/bin:$PATH"\n', encoding="utf-8")
    return image


@pytest.mark.integration
def test_lttfs_setup_runs_through_the_shipped_wrappers_in_a_container(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_container_runtime: FakeContainerRuntime,
    capfd: pytest.CaptureFixture[str],
) -> None:
    run_lttfs_setup(tmp_path, monkeypatch, fake_container_runtime, capfd, overrides=())


def run_lttfs_setup(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_container_runtime: FakeContainerRuntime,
    capfd: pytest.CaptureFixture[str],
    overrides: tuple[str, ...],
) -> None:
    """Check, then run the mock LTTFS config with ``overrides``; check what the jobs saw.

    Also run on the real Slurm cluster by ``tests/slurm/test_lttfs_slurm.py``.
    """
    image = _sandbox_image(tmp_path)
    repo = _mock_lttfs(tmp_path, image)
    monkeypatch.chdir(repo)
    assert main(["check", "hp_optim/hp_optim_ppo.json", *overrides]) == 0
    err = capfd.readouterr().err
    assert "cluster_requirements.bid" not in err  # it means something on HTCondor: no warning
    # check reads the templates at the commit it resolved, without cloning into results/
    assert "/opt/mpi-is/pam_models/hill.json does not exist on this host" in err
    assert not (tmp_path / "results").exists()

    assert main(["hp_optim/hp_optim_ppo.json", *overrides]) == 0
    # templates are checked in the checkout, once it exists; the image-only one is not
    err = capfd.readouterr().err
    assert "/opt/mpi-is/pam_models/hill.json does not exist on this host" in err
    root = tmp_path / "results" / "lttfs_robot_position"
    jobs = pd.read_csv(root / "jobs.csv")
    names = sorted(Path(d).name for d in jobs["job_dir"])
    # per setting: rerun 0 over 2 iterations; rerun 1 crashed once, then 2 iterations
    assert names == sorted(["run_0.0-0", "run_0.1-0", "run_1.0-0", "run_1.0-1", "run_1.1-0"] * 2)
    assert all(re.fullmatch(r"run_\d\.\d-\d", n) for n in names)
    assert len(fake_container_runtime.calls()) == 10  # every process ran in the image

    settings = pd.read_csv(root / "settings.csv")
    assert len(settings) == 2
    assert settings["mean_eprewmean"].notna().all()
    for job_dir in jobs["job_dir"]:
        run_dir = Path(job_dir)
        if not (run_dir / "seen.json").exists():
            continue  # the crashed attempt
        params = json.loads((run_dir / "params.json").read_text())
        flat = params["flat_params"]
        seen = json.loads((run_dir / "seen.json").read_text())
        hysr, rl = seen["configs"]["hysr_config"], seen["configs"]["rl_config"]
        assert hysr["robot_position"] == [0.1, flat["config.hysr_config.robot_position:1"], 0.3]
        assert rl["net_arch"][12] == flat["config.rl_config.net_arch:12"]
        assert rl["net_arch"][:12] == list(range(12))
        assert rl["net_arch"][13] == 13
        assert rl["nested"] == {"lr": flat["config.rl_config.nested.lr"], "gamma": 0.99}
        assert seen["configs"]["pam_config"] == {"a": 1.0, "b": [1, 2]}  # read in the image
        assert seen["iteration"] == params["job"]["iteration"]
        assert params["params"]["learning_runs_per_job"] == 2  # still passed to the job
    # the metric of a setting is the mean of its reruns' last iterations (progress 2)
    for _, row in settings.iterrows():
        setting_jobs = jobs[(jobs["setting_id"] == row["setting_id"]) & (jobs["exit_code"] == 0)]
        assert len(setting_jobs) == 2
        assert setting_jobs["mean_eprewmean"].mean() == pytest.approx(row["mean_eprewmean"])
    (best,) = [d for d in (root / "best_jobs").iterdir() if d.is_dir()]
    winner = settings.loc[settings["mean_eprewmean"].idxmax(), "setting_id"]
    assert (best / "run_1.1-0" / "seen.json").is_file()
    assert best.name.endswith(str(winner))
