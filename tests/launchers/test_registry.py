"""The launcher registry and each launcher's ``from_settings``: the seam a run builds through."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import ConfigError
from hpoptim.jobspec import JobPaths, JobSpec, Resources
from hpoptim.launchers import LAUNCHERS, available, load
from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.local import LocalLauncher
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions
from hpoptim.launchers.slurm_script import render_array, render_single
from tests.launchers.recording import TARGET, RecordingLauncher

#: The ``slurm`` section as ``cfg.slurm.to_dict()`` gives it: every key, lists not tuples.
SLURM_SETTINGS: dict[str, Any] = {
    "partition": "gpu",
    "account": "lab",
    "qos": "high",
    "n_cpus_per_job": 4,
    "n_gpus_per_job": 1,
    "gres": None,
    "mem_gb": 7.5,
    "time_limit_min": 90.0,
    "extra_sbatch_options": ["--constraint=a100", "--exclusive"],
    "poll_interval_s": 1.0,
    "max_poll_interval_s": 8.0,
    "use_job_arrays": False,
    "n_max_queued_jobs": 20,
}


def spec(job_id: str) -> JobSpec:
    run_dir = Path("/results/run/jobs") / job_id
    return JobSpec(
        job_id=job_id,
        argv=("/usr/bin/python3", "/repo/train.py"),
        cwd=Path("/repo"),
        paths=JobPaths(run_dir),
        resources=Resources(n_cpus=2, timeout_min=30.0),
    )


# -- the registry ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        pytest.param("local", LocalLauncher, id="local"),
        pytest.param("slurm", SlurmLauncher, id="slurm"),
    ],
)
def test_registry_loads_each_launcher_whose_name_is_its_section(
    name: str, cls: type[BaseLauncher]
) -> None:
    assert load(name) is cls
    assert cls.name == name


def test_a_registered_launcher_is_available_and_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAUNCHERS, "recording", TARGET)
    assert available() == ["local", "recording", "slurm"]
    cls = load("recording")
    assert cls is RecordingLauncher
    launcher = cls.from_settings({"a": [1]}, work_dir=Path("/r/recording"), name="run")
    assert isinstance(launcher, RecordingLauncher)
    assert (launcher.settings, launcher.work_dir, launcher.run_name) == (
        {"a": [1]},
        Path("/r/recording"),
        "run",
    )


def test_an_unknown_launcher_is_a_config_error_listing_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(LAUNCHERS, "recording", TARGET)
    with pytest.raises(ConfigError) as info:
        load("ssh")
    assert [p.path for p in info.value.problems] == ["launcher"]
    assert "unknown launcher 'ssh'; valid launchers: local, recording, slurm" in str(info.value)


# -- LocalLauncher.from_settings -------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "slots"),
    [
        pytest.param({"n_parallel_jobs": 3}, 3, id="configured"),
        pytest.param({"n_parallel_jobs": None}, None, id="null-is-all-cpus"),
        pytest.param({}, None, id="empty-section"),
    ],
)
def test_local_from_settings_has_the_configured_slots(
    tmp_path: Path, settings: dict[str, Any], slots: int | None
) -> None:
    with LocalLauncher.from_settings(settings, work_dir=tmp_path / "local", name="run") as got:
        assert got.n_parallel_jobs == LocalLauncher(n_parallel_jobs=slots).n_parallel_jobs
        assert got.capacity() == got.n_parallel_jobs
    assert not (tmp_path / "local").exists()  # it writes no files of its own


# -- SlurmLauncher.from_settings -------------------------------------------------------------
def test_slurm_from_settings_renders_what_the_options_built_by_hand_render(
    tmp_path: Path,
) -> None:
    launcher = SlurmLauncher.from_settings(SLURM_SETTINGS, work_dir=tmp_path / "slurm", name="rb")
    by_hand = SlurmOptions(
        **{**SLURM_SETTINGS, "extra_sbatch_options": ("--constraint=a100", "--exclusive")},
        script_dir=tmp_path / "slurm",
        job_name_prefix="rb",
    )
    assert launcher.options == by_hand
    assert launcher.options.extra_sbatch_options == ("--constraint=a100", "--exclusive")
    one, two = spec("a"), spec("b")
    assert render_single(one, one.argv, launcher.options, "rb-x-a") == render_single(
        one, one.argv, by_hand, "rb-x-a"
    )
    tasks = tmp_path / "slurm" / "a.tasks"
    script = render_array([one, two], launcher.options, "rb-x-a", tasks)
    assert script == render_array([one, two], by_hand, "rb-x-a", tasks)
    for line in ("--partition=gpu", "--account=lab", "--qos=high", "--constraint=a100"):
        assert f"#SBATCH {line}" in script


def test_slurm_from_settings_fills_in_defaults_for_keys_left_out(tmp_path: Path) -> None:
    launcher = SlurmLauncher.from_settings({}, work_dir=tmp_path, name="run")
    assert launcher.options == SlurmOptions(script_dir=tmp_path, job_name_prefix="run")


# -- refused settings --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "settings", "path", "message"),
    [
        pytest.param(
            LocalLauncher,
            {"n_parallel_jobs": 2, "n_gpus": 1},
            "local.n_gpus",
            "unknown key 'n_gpus'; valid keys: n_parallel_jobs",
            id="local-unknown-key",
        ),
        pytest.param(
            SlurmLauncher,
            {**SLURM_SETTINGS, "script_dir": "/elsewhere"},
            "slurm.script_dir",
            "unknown key 'script_dir'; valid keys: account, extra_sbatch_options, gres,",
            id="slurm-run-field-is-not-a-setting",
        ),
        pytest.param(
            SlurmLauncher,
            {"partiton": "gpu"},
            "slurm.partiton",
            "unknown key 'partiton'",
            id="slurm-typo",
        ),
        pytest.param(
            LocalLauncher,
            {"n_parallel_jobs": 0},
            "local.n_parallel_jobs",
            "must be at least 1",
            id="local-bad-value",
        ),
        pytest.param(
            SlurmLauncher,
            {"poll_interval_s": 5.0, "max_poll_interval_s": 1.0},
            "slurm.max_poll_interval_s",
            "must be >= poll_interval_s",
            id="slurm-bad-value",
        ),
    ],
)
def test_refused_settings_are_a_config_error_naming_the_key(
    tmp_path: Path, cls: type[BaseLauncher], settings: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        cls.from_settings(settings, work_dir=tmp_path, name="run")
    assert [p.path for p in info.value.problems] == [path]
    assert message in info.value.problems[0].message


def test_every_unknown_key_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        SlurmLauncher.from_settings({"a": 1, "mem_gb": 2.0, "b": 2}, work_dir=tmp_path, name="r")
    assert [p.path for p in info.value.problems] == ["slurm.a", "slurm.b"]


def test_slurm_settings_are_exactly_its_options_less_what_the_run_gives() -> None:
    fields = {f.name for f in dataclasses.fields(SlurmOptions)}
    assert set(SLURM_SETTINGS) == fields - {"script_dir", "job_name_prefix"}
