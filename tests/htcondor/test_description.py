"""The ``htcondor`` section and the submit descriptions rendered from it.

Every description a test renders is parsed by ``htcondor2.Submit`` (HTCondor's own
parser) and checked by the stand-in's ``condor_submit`` rules, so a description the
real tools would refuse fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import htcondor2
import pytest

from hpoptim.cli import main
from hpoptim.config import load_config_dict
from hpoptim.errors import ConfigError, LaunchError
from hpoptim.jobspec import JobPaths, JobResources, JobSpec
from hpoptim.launchers.htcondor import HTCondorLauncher, HTCondorSettings
from hpoptim.launchers.htcondor.description import Submission, render
from tests.config.conftest import minimal
from tests.htcondor.conftest import _fake_module


def spec(tmp_path: Path, job_id: str = "j", **resources: Any) -> JobSpec:
    run_dir = tmp_path / "jobs" / job_id
    return JobSpec(
        job_id=job_id,
        argv=("python3", "train.py"),
        cwd=tmp_path,
        paths=JobPaths(run_dir),
        resources=JobResources(**resources),
    )


def rendered(tmp_path: Path, settings: dict[str, Any], **resources: Any) -> dict[str, str]:
    """The submit commands of a 2-job description, as HTCondor's parser reads them."""
    specs = [spec(tmp_path, "a", **resources), spec(tmp_path, "b", **resources)]
    text = render(
        Submission(tmp_path, "a+1", specs), HTCondorSettings(**settings), run_name="r", run_key="k"
    )
    parsed = htcondor2.Submit(text)
    assert parsed.getQArgs() == "2"
    commands, count = _fake_module().describe(text, tmp_path)  # the stand-in's rules too
    assert count == 2
    return {k.lower(): v for k, v in commands.items()}


@pytest.mark.parametrize(
    ("settings", "resources", "expected"),
    [
        pytest.param(
            {},
            {},
            {"request_cpus": "1", "universe": "vanilla", "getenv": "True", "my.hpoptimrun": '"k"'},
            id="defaults",
        ),
        pytest.param(
            {},
            {"n_cpus_per_job": 4, "n_gpus_per_job": 2, "mem_gb": 7.5, "time_limit_min": 10},
            {
                "request_cpus": "4",
                "request_gpus": "2",
                "request_memory": "7680",
                "allowed_job_duration": "720",
            },
            id="resources",
        ),
        pytest.param(
            {"cuda_requirement": 7.5},
            {},
            {"requirements": "CUDACapability >= 7.5"},
            id="cuda-number",
        ),
        pytest.param(
            {"cuda_requirement": "<8.0"},
            {},
            {"requirements": "CUDACapability < 8.0"},
            id="cuda-below",
        ),
        pytest.param(
            {"cuda_requirement": "<= 8"},
            {},
            {"requirements": "CUDACapability <= 8"},
            id="cuda-at-most",
        ),
        pytest.param(
            {"cuda_requirement": "CUDACapability >= 6 && CUDACapability < 9"},
            {},
            {"requirements": "(CUDACapability >= 6 && CUDACapability < 9)"},
            id="cuda-expression",
        ),
        pytest.param(
            {
                "hostname_list": ["g1", "g2.lab"],
                "forbidden_hostnames": ["bad"],
                "gpu_memory_mb": 20000,
            },
            {},
            {
                "requirements": 'GPUs_GlobalMemoryMb >= 20000 && (Machine == "g1" || '
                'Machine == "g2.lab") && Machine != "bad"'
            },
            id="any-one-host",
        ),
        pytest.param(
            {"concurrency_limit": 4, "concurrency_limit_tag": "gpu_jobs"},
            {},
            {"concurrency_limits": "user.gpu_jobs:2500"},
            id="concurrency-limit",
        ),
        pytest.param(
            {"request_disk_mb": 2048, "getenv": False},
            {},
            {"request_disk": "2097152", "getenv": "False"},
            id="disk",
        ),
        pytest.param(
            {"extra_submission_options": {"rank": "Memory", "+Project": '"ml"'}},
            {},
            {"rank": "Memory", "my.project": '"ml"'},
            id="extra-options-mapping",
        ),
    ],
)
def test_settings_become_submit_commands(
    tmp_path: Path, settings: dict[str, Any], resources: dict[str, Any], expected: dict[str, str]
) -> None:
    commands = rendered(tmp_path, settings, **resources)
    assert {k: commands.get(k) for k in expected} == expected


def test_the_description_names_no_value_of_a_job(tmp_path: Path) -> None:
    hostile = spec(tmp_path, "j")
    hostile = JobSpec(
        "j", ("python3", '"; rm -rf ~', "$(Process)\nqueue 9"), tmp_path, hostile.paths
    )
    text = HTCondorLauncher(work_dir=tmp_path).description([hostile])
    assert "rm -rf" not in text
    assert "queue 9" not in text
    htcondor2.Submit(text)


def test_a_path_the_syntax_cannot_hold_is_refused(tmp_path: Path) -> None:
    work = tmp_path / 'quote"d'
    with pytest.raises(LaunchError, match="cannot hold"):
        HTCondorLauncher(work_dir=work).description([spec(tmp_path)])


@pytest.mark.parametrize(
    ("bid", "command", "argv"),
    [
        pytest.param(None, None, ["condor_submit", "f.sub"], id="no-bid"),
        pytest.param(100, None, ["condor_submit_bid", "100", "f.sub"], id="bid"),
        pytest.param(
            5, "/opt/bin/submit_bid", ["/opt/bin/submit_bid", "5", "f.sub"], id="own-command"
        ),
    ],
)
def test_the_submit_command_follows_the_bid(
    bid: int | None, command: str | None, argv: list[str]
) -> None:
    assert HTCondorSettings(bid=bid, submit_command=command).submit_argv("f.sub") == argv


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param(
            {"bidd": 5}, "htcondor.bidd: unknown key; did you mean 'bid'?", id="unknown-key"
        ),
        pytest.param({"cuda_requirement": True}, "htcondor.cuda_requirement", id="cuda-bool"),
        pytest.param({"cuda_requirement": "<"}, "htcondor.cuda_requirement", id="cuda-empty-bound"),
        pytest.param(
            {"hostname_list": ["a b"]},
            "htcondor.hostname_list[0]: must be a host name",
            id="bad-host",
        ),
        pytest.param(
            {"extra_submission_options": ["queue 5"]},
            "htcondor.extra_submission_options[0]: must be one submit command",
            id="extra-queue",
        ),
        pytest.param(
            {"extra_submission_options": ["executable = /bin/sh"]},
            "sets 'executable', which hpoptim writes itself",
            id="extra-reserved",
        ),
        pytest.param(
            {"concurrency_limit_tag": "a.b"}, "htcondor.concurrency_limit_tag", id="bad-tag"
        ),
    ],
)
def test_bad_settings_are_refused_with_their_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_dict({**minimal(), "launcher": "htcondor", "htcondor": section})
    assert message in str(info.value)


def test_check_show_prints_the_submit_description(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    config = {
        **minimal(),
        "results_dir": str(tmp_path / "results"),
        "script_relative_path": "job.py",
        "launcher": "htcondor",
        "htcondor": {"bid": 7, "hostname_list": ["g1", "g2"]},
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert main(["check", str(tmp_path / "c.json"), "--show", "1"]) == 0
    out = capsys.readouterr().out
    head, _, shown = out.partition("  htcondor submission:\n")
    text = "".join(line.removeprefix("    ") + "\n" for line in shown.splitlines())
    assert htcondor2.Submit(text).getQArgs() == "1"
    assert 'requirements = (Machine == "g1" || Machine == "g2")' in text
    assert not (tmp_path / "results").exists()  # nothing written


def test_hostname_list_on_slurm_is_refused_with_the_other_problems() -> None:
    config = {
        **minimal(),
        "launcher": "slurm",
        "minimize": "yes",
        "htcondor": {"hostname_list": ["g1", "g2"]},
    }
    with pytest.raises(ConfigError) as info:
        load_config_dict(config)
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == ["htcondor.hostname_list", "minimize"]
    load_config_dict({**config, "minimize": True, "launcher": "htcondor"})  # fine there
