"""The launcher registry and each launcher's settings model: the seam a run builds through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpoptim.config import load_config_dict
from hpoptim.errors import ConfigError
from hpoptim.jobspec import JobPaths, JobResources, JobSpec
from hpoptim.launchers import LAUNCHERS, available, load, settings_models
from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.htcondor import HTCondorLauncher, HTCondorSettings
from hpoptim.launchers.local import LocalLauncher, LocalSettings
from hpoptim.launchers.sge import SgeLauncher, SgeSettings
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions, SlurmSettings
from hpoptim.launchers.slurm_script import render_array, render_single
from hpoptim.sections import Section
from tests.config.conftest import minimal
from tests.launchers.recording import TARGET, RecordingLauncher, RecordingSettings

#: A ``slurm`` section giving every key.
SLURM_SETTINGS: dict[str, Any] = {
    "partition": "gpu",
    "account": "lab",
    "qos": "high",
    "gres": None,
    "extra_sbatch_options": ("--constraint=a100", "--exclusive"),
    "poll_interval_s": 1.0,
    "max_poll_interval_s": 8.0,
    "outage_tolerance_min": 30.0,
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
        resources=JobResources(n_cpus_per_job=2, mem_gb=7.5, time_limit_min=30.0),
    )


# -- the registry ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls", "model"),
    [
        pytest.param("local", LocalLauncher, LocalSettings, id="local"),
        pytest.param("slurm", SlurmLauncher, SlurmSettings, id="slurm"),
        pytest.param("htcondor", HTCondorLauncher, HTCondorSettings, id="htcondor"),
        pytest.param("sge", SgeLauncher, SgeSettings, id="sge"),
    ],
)
def test_registry_loads_each_launcher_whose_name_is_its_section(
    name: str, cls: type[BaseLauncher], model: type[Section]
) -> None:
    assert load(name) is cls
    assert cls.name == name
    assert cls.settings_model is model
    assert settings_models()[name] is model
    assert model.section_path == name


def test_a_registered_launcher_is_available_and_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAUNCHERS, "recording", TARGET)
    assert available() == ["htcondor", "local", "recording", "sge", "slurm"]
    cls = load("recording")
    assert cls is RecordingLauncher
    settings = RecordingSettings(n_slots=3)
    launcher = cls.from_settings(settings, work_dir=Path("/r/recording"), name="run")
    assert isinstance(launcher, RecordingLauncher)
    assert (launcher.settings, launcher.work_dir, launcher.run_name) == (
        settings,
        Path("/r/recording"),
        "run",
    )


def test_a_registered_launcher_brings_its_config_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAUNCHERS, "recording", TARGET)
    cfg = load_config_dict({**minimal(), "launcher": "recording", "recording": {"n_slots": 4}})
    assert cfg.launcher_settings() == RecordingSettings(n_slots=4)
    assert load_config_dict(minimal()).to_dict()["recording"] == {"n_slots": 2}
    with pytest.raises(ConfigError) as info:
        load_config_dict({**minimal(), "recording": {"n_slots": 0, "n_slot": 1}})
    assert {p.path: p.message for p in info.value.problems} == {
        "recording.n_slots": "must be an integer >= 1, got 0",
        "recording.n_slot": "unknown key; did you mean 'n_slots'?",
    }
    assert str(info.value).splitlines()[-1] == "valid keys of recording: n_slots"


def test_launcher_is_checked_against_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_dict({**minimal(), "launcher": "recording"})
    assert [str(p) for p in info.value.problems] == [
        "launcher: must be 'htcondor', 'local', 'sge' or 'slurm', got 'recording'"
    ]
    monkeypatch.setitem(LAUNCHERS, "recording", TARGET)
    assert load_config_dict({**minimal(), "launcher": "recording"}).launcher == "recording"


def test_an_unknown_launcher_is_a_config_error_listing_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(LAUNCHERS, "recording", TARGET)
    with pytest.raises(ConfigError) as info:
        load("ssh")
    assert [p.path for p in info.value.problems] == ["launcher"]
    known = "htcondor, local, recording, sge, slurm"
    assert f"unknown launcher 'ssh'; valid launchers: {known}" in str(info.value)


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
    section = LocalSettings(**settings)
    with LocalLauncher.from_settings(section, work_dir=tmp_path / "local", name="run") as got:
        assert got.n_parallel_jobs == LocalLauncher(n_parallel_jobs=slots).n_parallel_jobs
        assert got.capacity() == got.n_parallel_jobs
    assert not (tmp_path / "local").exists()  # it writes no files of its own


# -- SlurmLauncher.from_settings -------------------------------------------------------------
def test_slurm_from_settings_renders_what_the_options_built_by_hand_render(
    tmp_path: Path,
) -> None:
    launcher = SlurmLauncher.from_settings(
        SlurmSettings(**SLURM_SETTINGS), work_dir=tmp_path / "slurm", name="rb"
    )
    by_hand = SlurmOptions(**SLURM_SETTINGS, script_dir=tmp_path / "slurm", job_name_prefix="rb")
    assert launcher.options == by_hand
    one, two = spec("a"), spec("b")
    assert render_single(one, one.argv, launcher.options, "rb-x-a") == render_single(
        one, one.argv, by_hand, "rb-x-a"
    )
    tasks = tmp_path / "slurm" / "a.tasks"
    script = render_array([one, two], launcher.options, "rb-x-a", tasks)
    assert script == render_array([one, two], by_hand, "rb-x-a", tasks)
    for line in ("--partition=gpu", "--account=lab", "--qos=high", "--constraint=a100"):
        assert f"#SBATCH {line}" in script
    for line in ("--cpus-per-task=2", "--mem=7680M", "--time=30"):  # from the spec's resources
        assert f"#SBATCH {line}" in script


def test_slurm_from_settings_fills_in_defaults_for_keys_left_out(tmp_path: Path) -> None:
    launcher = SlurmLauncher.from_settings(SlurmSettings(), work_dir=tmp_path, name="run")
    assert launcher.options == SlurmOptions(script_dir=tmp_path, job_name_prefix="run")


# -- refused settings --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "settings", "path", "message"),
    [
        pytest.param(
            LocalSettings,
            {"n_parallel_jobs": 2, "n_gpus": 1},
            "local.n_gpus",
            "unknown key\nvalid keys of local: n_parallel_jobs",
            id="local-unknown-key",
        ),
        pytest.param(
            SlurmSettings,
            {**SLURM_SETTINGS, "script_dir": "/elsewhere"},
            "slurm.script_dir",
            "unknown key\nvalid keys of slurm: partition, account, qos, gres, extra_sbatch_",
            id="slurm-run-field-is-not-a-setting",
        ),
        pytest.param(
            SlurmSettings,
            {"partiton": "gpu"},
            "slurm.partiton",
            "unknown key; did you mean 'partition'?",
            id="slurm-typo",
        ),
        pytest.param(
            SlurmSettings,
            {"mem_gb": 4},
            "slurm.mem_gb",
            "unknown key",
            id="resources-are-not-slurm-settings",
        ),
        pytest.param(
            LocalSettings,
            {"n_parallel_jobs": 0},
            "local.n_parallel_jobs",
            "must be an integer >= 1 or null, got 0",
            id="local-bad-value",
        ),
        pytest.param(
            SlurmSettings,
            {"poll_interval_s": 5.0, "max_poll_interval_s": 1.0},
            "slurm.max_poll_interval_s",
            "must be >= poll_interval_s",
            id="slurm-bad-value",
        ),
        pytest.param(
            SlurmSettings,
            {"extra_sbatch_options": ["constraint=a100"]},
            "slurm.extra_sbatch_options[0]",
            "must be one option such as '--constraint=a100', got 'constraint=a100'",
            id="slurm-option-without-dash",
        ),
    ],
)
def test_refused_settings_are_a_config_error_naming_the_key(
    model: type[Section], settings: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        model(**settings)
    assert [p.path for p in info.value.problems] == [path]
    first, _, listing = message.partition("\n")  # the problem, then its section's valid keys
    assert info.value.problems[0].message.startswith(first)
    if listing:
        assert str(info.value).splitlines()[2].startswith(listing)


def test_every_unknown_key_is_reported_at_once_with_the_valid_keys_listed_once() -> None:
    with pytest.raises(ConfigError) as info:
        SlurmSettings(**{"a": 1, "qos": "x", "b": 2})  # type: ignore[arg-type]
    assert [p.path for p in info.value.problems] == ["slurm.a", "slurm.b"]
    lines = str(info.value).splitlines()
    assert lines[1:3] == ["  slurm.a: unknown key", "  slurm.b: unknown key"]
    assert lines[3].startswith("valid keys of slurm: partition, account, qos,")
    assert len(lines) == 4


def test_slurm_settings_are_exactly_its_options_less_what_the_run_gives() -> None:
    fields = set(SlurmOptions.model_fields)
    assert set(SLURM_SETTINGS) == set(SlurmSettings.model_fields)
    assert set(SlurmSettings.model_fields) == fields - {"script_dir", "job_name_prefix"}
