"""assembly.make_launcher: the run builds its launcher through the registry."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from hpoptim.config import RunConfig, load_config_dict
from hpoptim.errors import ConfigError, StorageError
from hpoptim.jobspec import ContainerOptions, JobResources
from hpoptim.launchers import LAUNCHERS
from hpoptim.launchers.local import LocalLauncher
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions
from hpoptim.run.assembly import make_launcher
from hpoptim.run.session import Session, open_session
from hpoptim.source.git_source import GitSource
from hpoptim.state.storage import ResultsLayout
from tests.launchers.recording import TARGET, RecordingLauncher, RecordingSettings


def config(tmp_path: Path, **changes: Any) -> RunConfig:
    data: dict[str, Any] = {
        "optimization_procedure_name": "rosen",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "number_of_samples": 4,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
    }
    data.update(changes)
    return load_config_dict(data)


def layout_of(cfg: RunConfig) -> ResultsLayout:
    return ResultsLayout(cfg.results_dir / cfg.optimization_procedure_name)


def test_local_launcher_gets_the_configured_slots(tmp_path: Path) -> None:
    cfg = config(tmp_path, launcher="local", local={"n_parallel_jobs": 3})
    with make_launcher(cfg, layout_of(cfg)) as launcher:
        assert isinstance(launcher, LocalLauncher)
        assert launcher.n_parallel_jobs == 3
    assert not layout_of(cfg).root.exists()


def test_slurm_launcher_matches_the_section_and_keeps_its_scripts_in_slurm(
    tmp_path: Path,
) -> None:
    section = {
        "partition": "gpu",
        "account": "lab",
        "extra_sbatch_options": ["--constraint=a100"],
        "use_job_arrays": False,
        "n_max_queued_jobs": 20,
    }
    cfg = config(tmp_path, launcher="slurm", slurm=section)
    layout = layout_of(cfg)
    launcher = make_launcher(cfg, layout)
    assert isinstance(launcher, SlurmLauncher)
    expected = {**section, "extra_sbatch_options": ("--constraint=a100",)}
    assert launcher.options == SlurmOptions(
        **expected, script_dir=layout.root / "slurm", job_name_prefix="rosen"
    )


def test_make_launcher_builds_whatever_the_registry_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(LAUNCHERS, "local", TARGET)
    cfg = config(tmp_path, launcher="local", local={"n_slots": 3})
    layout = layout_of(cfg)
    launcher = make_launcher(cfg, layout)
    assert isinstance(launcher, RecordingLauncher)
    assert launcher.settings is cfg.launcher_settings()
    assert launcher.settings == RecordingSettings(n_slots=3)
    assert launcher.work_dir == layout.root / "local"
    assert launcher.run_name == "rosen"


def test_a_launcher_missing_from_the_registry_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, launcher="slurm")
    monkeypatch.delitem(LAUNCHERS, "slurm")
    with pytest.raises(ConfigError) as info:
        make_launcher(cfg, layout_of(cfg))
    assert [p.path for p in info.value.problems] == ["launcher"]
    others = sorted(LAUNCHERS)  # slurm is gone
    assert f"unknown launcher 'slurm'; valid launchers: {', '.join(others)}" in str(info.value)
    with pytest.raises(ConfigError) as info:  # and a config naming it no longer loads
        config(tmp_path, launcher="slurm")
    [problem] = info.value.problems
    assert str(problem).startswith("launcher: must be ")
    assert str(problem).endswith(f"'{others[-1]}', got 'slurm'")


def test_every_job_gets_the_resources_section_on_any_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    resources = {
        "n_cpus_per_job": 3,
        "n_gpus_per_job": 1,
        "mem_gb": 2.5,
        "time_limit_min": 10,
        "signal_lead_s": 20,
        "timeout_signal": "USR1",
    }
    for launcher in ("local", "slurm", "sge"):
        cfg = config(tmp_path, launcher=launcher, resources=resources)
        assert cfg.resources == JobResources(
            n_cpus_per_job=3,
            n_gpus_per_job=1,
            mem_gb=2.5,
            time_limit_min=10.0,
            signal_lead_s=20.0,
            timeout_signal="USR1",
        )
        assert cfg.resources.signal == signal.SIGUSR1
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg.to_dict()))
        session = open_session(config=path, dry_run=True)
        plan = session.plan({"root": str(tmp_path)}, seed=0, check=False)
        assert plan.template.resources == cfg.resources  # the section itself reaches each job
    old = config(
        tmp_path,
        job_timeout_min=10,
        signal_lead_s=20,
        timeout_signal="USR1",
        slurm={"n_cpus_per_job": 3, "n_gpus_per_job": 1, "mem_gb": 2.5},
    )
    assert old.resources == cfg.resources
    assert len(old.notes) == 6
    assert "slurm.mem_gb is now resources.mem_gb" in old.notes[-1]


def test_a_run_saved_with_old_key_names_is_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run started before the resources section continues with ``hpoptim run`` too."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    cfg = config(tmp_path, resources={"time_limit_min": 5})
    layout = layout_of(cfg)
    layout.root.mkdir(parents=True)
    old = cfg.to_dict()
    del old["resources"]
    old["job_timeout_min"] = 5
    layout.config_file.write_text(json.dumps(old))
    layout.journal.write_text("")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg.to_dict(), "results_dir": str(cfg.results_dir)}))
    session = open_session(config=path)
    session.close()
    assert session.cfg == cfg
    path.write_text(json.dumps({**cfg.to_dict(), "resources": {"time_limit_min": 6}}))
    with pytest.raises(StorageError, match="already holds a run with a different config"):
        open_session(config=path)


def test_the_run_gets_the_config_sections_themselves(tmp_path: Path) -> None:
    """No copies: the checkout and the launcher get the very models the config validated."""
    image = tmp_path / "img.sif"
    image.write_text("")
    cfg = config(
        tmp_path,
        run_in_working_dir=False,
        git_params={"url": "https://example.org/r.git", "tag": "v1"},
        singularity={"image": str(image), "env": {"A": "1"}, "bind": ["/data"]},
    )
    assert isinstance(cfg.git_params, GitSource)  # what the checkout takes
    assert cfg.git_params.describe_ref() == "tag 'v1'"
    session = Session(cfg, ResultsLayout(tmp_path / "results" / "rosen"), [], None)
    options = session.plan({"root": str(tmp_path)}, seed=0, check=False).template.container
    assert options is cfg.singularity
    assert isinstance(options, ContainerOptions)
    assert (options.image, options.env, options.bind) == (image, {"A": "1"}, ("/data",))
