"""assembly.make_launcher: the run builds its launcher through the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpoptim.config import RunConfig, load_config_dict
from hpoptim.errors import ConfigError
from hpoptim.launchers import LAUNCHERS
from hpoptim.launchers.local import LocalLauncher
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions
from hpoptim.run.assembly import make_launcher
from hpoptim.state.storage import ResultsLayout
from tests.launchers.recording import TARGET, RecordingLauncher


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
        "n_cpus_per_job": 4,
        "mem_gb": 7.5,
        "time_limit_min": 90,
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
    cfg = config(tmp_path, launcher="local", local={"n_parallel_jobs": 3})
    layout = layout_of(cfg)
    launcher = make_launcher(cfg, layout)
    assert isinstance(launcher, RecordingLauncher)
    assert launcher.settings == cfg.local.to_dict() == {"n_parallel_jobs": 3}
    assert launcher.work_dir == layout.root / "local"
    assert launcher.run_name == "rosen"


def test_a_launcher_missing_from_the_registry_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(LAUNCHERS, "slurm")
    cfg = config(tmp_path, launcher="slurm")
    with pytest.raises(ConfigError) as info:
        make_launcher(cfg, layout_of(cfg))
    assert [p.path for p in info.value.problems] == ["launcher"]
    assert "unknown launcher 'slurm'; valid launchers: local" in str(info.value)
