"""The Grid Engine launcher's pure parts: the qsub call, the job script, the sge section's
rules, qstat/qacct parsing, final states and the outage tolerance (no cluster needed; the
tests in tests/sge/ run what is rendered here on a real Grid Engine)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from hpoptim.errors import ConfigError, LaunchError
from hpoptim.jobspec import JobPaths, JobResources, JobSpec, JobState
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.launchers.sge import SgeLauncher, SgeOptions, SgeSettings
from hpoptim.launchers.sge.script import job_name, qsub_argv, render_script, task_files
from hpoptim.launchers.sge.states import (
    Accounted,
    parse_qacct,
    parse_qstat,
    task_ids,
    terminal_status,
)
from hpoptim.launchers.slurm_commands import CommandResult


def spec(tmp_path: Path, job_id: str = "j", **resources: object) -> JobSpec:
    run_dir = tmp_path / "jobs" / job_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return JobSpec(
        job_id=job_id,
        argv=("python", "train.py"),
        cwd=tmp_path,
        paths=JobPaths(run_dir),
        env={"A": "1"},
        resources=JobResources(**resources),  # type: ignore[arg-type]
    )


def words_after(argv: Sequence[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, w in enumerate(argv[:-1]) if w == flag]


# -- the qsub call --------------------------------------------------------------------------
def test_qsub_call_of_a_batch_is_one_array_job(tmp_path: Path) -> None:
    group = [spec(tmp_path, f"j{i}") for i in range(3)]
    options = SgeOptions(queue="all.q", project="p1", script_dir=tmp_path / "sge")
    tasks = tmp_path / "sge" / "j0+2.tasks"
    argv = qsub_argv(group, options, name="run-k-j0_2", tasks=tasks, script=Path("/s.sh"))
    assert argv[:2] == ["qsub", "-terse"]
    assert words_after(argv, "-t") == ["1-3"]
    assert words_after(argv, "-N") == ["run-k-j0_2"]
    assert words_after(argv, "-b") == ["y"]
    assert words_after(argv, "-shell") == ["no"]  # bash is started directly, no login shell
    assert words_after(argv, "-wd") == [str(tmp_path)]
    assert words_after(argv, "-o") == [f"{tasks}/$TASK_ID/stdout.log"]
    assert words_after(argv, "-e") == [f"{tasks}/$TASK_ID/stderr.log"]
    assert words_after(argv, "-q") == ["all.q"]
    assert words_after(argv, "-P") == ["p1"]
    assert words_after(argv, "-r") == ["n"]
    assert "-V" not in argv  # the environment goes in the task files
    assert "-v" not in argv
    assert argv[-4:] == ["/bin/bash", "--noprofile", "--norc", "/s.sh"]


@pytest.mark.parametrize(
    ("resources", "options", "pe", "limits"),
    [
        pytest.param({}, {}, [], [], id="nothing-asked"),
        pytest.param(
            {"n_cpus_per_job": 4, "mem_gb": 8},
            {},
            ["smp", "4"],
            ["h_vmem=2048M"],
            id="memory-per-slot",
        ),
        pytest.param(
            {"mem_gb": 1.5},
            {"mem_resources": ["mem_free", "h_vmem"]},
            [],
            ["mem_free=1536M", "h_vmem=1536M"],
            id="site-memory-names",
        ),
        pytest.param(
            {"n_cpus_per_job": 2},
            {"parallel_environment": "threads"},
            ["threads", "2"],
            [],
            id="other-pe",
        ),
        pytest.param({"n_gpus_per_job": 2}, {}, [], ["gpu=2"], id="gpus"),
        pytest.param({"time_limit_min": 1.5}, {}, [], ["h_rt=90"], id="h_rt-in-seconds"),
        pytest.param({"mem_gb": 1}, {"mem_resources": []}, [], [], id="no-memory-resource"),
    ],
)
def test_resources_become_qsub_requests(
    tmp_path: Path,
    resources: dict[str, object],
    options: dict[str, object],
    pe: list[str],
    limits: list[str],
) -> None:
    job = spec(tmp_path, **resources)
    opts = SgeOptions(**options)  # type: ignore[arg-type]
    argv = qsub_argv([job], opts, name="n", tasks=tmp_path / "t", script=Path("/s"))
    at = argv.index("-pe") if "-pe" in argv else None
    assert (argv[at + 1 : at + 3] if at is not None else []) == pe
    assert words_after(argv, "-l") == limits


def test_extra_options_are_split_into_words(tmp_path: Path) -> None:
    opts = SgeOptions(extra_qsub_options=["-l arch=lx-amd64", "-R y", "-p -10"])
    argv = qsub_argv([spec(tmp_path)], opts, name="n", tasks=tmp_path / "t", script=Path("/s"))
    assert argv[-10:-4] == ["-l", "arch=lx-amd64", "-R", "y", "-p", "-10"]


@pytest.mark.parametrize("bad", [":", ",", "$"])
def test_a_path_grid_engine_would_misread_is_refused(tmp_path: Path, bad: str) -> None:
    tasks = tmp_path / f"a{bad}b"
    with pytest.raises(LaunchError, match=r"holds one of ':,\$'"):
        qsub_argv([spec(tmp_path)], SgeOptions(), name="n", tasks=tasks, script=Path("/s"))


def test_job_names_are_valid_grid_engine_names() -> None:
    assert job_name("my run", "ab12", "3-r0/i1") == "my_run-ab12-3-r0_i1"
    assert job_name("1st", "k", "t") == "j1st-k-t"  # may not start with a digit


# -- the sge section --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param({"extra_qsub_options": ["-V"]}, "-V is set by the launcher", id="-V"),
        pytest.param({"extra_qsub_options": ["-t 1-5"]}, "-t is set by the launcher", id="-t"),
        pytest.param({"extra_qsub_options": ["-q other"]}, "use sge.queue", id="-q"),
        pytest.param({"extra_qsub_options": ["arch=x"]}, "must be one option", id="no-dash"),
        pytest.param({"extra_qsub_options": ["-l 'a"]}, "must be one option", id="unbalanced"),
        pytest.param({"mem_resources": ["h vmem"]}, "Grid Engine resource name", id="mem-name"),
        pytest.param({"queue": "all q"}, "Grid Engine name", id="queue-name"),
        pytest.param(
            {"poll_interval_s": 5, "max_poll_interval_s": 1},
            "must be >= poll_interval_s",
            id="backoff",
        ),
    ],
)
def test_the_sge_section_refuses_what_qsub_would(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        SgeSettings(**section)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].path.startswith("sge.")  # named by its key path


# -- the job script -------------------------------------------------------------------------
def test_the_script_reads_its_task_and_keeps_the_time_limit(tmp_path: Path) -> None:
    job = spec(tmp_path, time_limit_min=2, signal_lead_s=30, timeout_signal="USR1")
    text = render_script([job], tmp_path / "odd 'dir'" / "j.tasks")
    assert "odd '\"'\"'dir'\"'\"'" in text  # quoted for the shell
    assert "signal_after_s=90.000" in text
    assert "trap ':' USR1" in text
    assert "kill -s USR1 0" in text
    assert f'exit_file="$task/{EXIT_FILE_NAME}"' in text
    no_limit = render_script([spec(tmp_path, "k")], tmp_path / "t")
    assert "signal_after_s=\n" in no_limit


def test_the_script_records_the_exit_status_and_the_signal(tmp_path: Path) -> None:
    """Run the rendered script with bash as Grid Engine would (SGE_TASK_ID set)."""
    job = spec(tmp_path, time_limit_min=0.05, signal_lead_s=2.5)
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
    job = JobSpec(**{**job.__dict__, "argv": (sys.executable, "-c", code + "time.sleep(30)")})
    tasks = tmp_path / "tasks"
    from hpoptim.launchers.batch_files import write_tasks

    write_tasks(tasks, [(job, *task_files(job, job.argv, {"PATH": "/usr/bin:/bin"}))], 1)
    script = tmp_path / "job.sh"
    script.write_text(render_script([job], tasks))
    # in a process group of its own, as sge_shepherd starts a job script
    proc = subprocess.run(
        ["bash", str(script)],
        env={"SGE_TASK_ID": "1"},
        timeout=20,
        check=False,
        start_new_session=True,
    )
    assert proc.returncode == 3
    assert (job.paths.run_dir / EXIT_FILE_NAME).read_text() == "3 1\n"
    assert not (job.paths.run_dir / (EXIT_FILE_NAME + ".signalled")).exists()


def test_task_environment_is_the_drivers_less_grid_engines_plus_the_specs(
    tmp_path: Path,
) -> None:
    job = JobSpec(**{**spec(tmp_path).__dict__, "env": {"A": "spec", "B": "x y"}})
    driver = {
        "A": "driver",
        "PATH": "/bin",
        "JOB_ID": "9",
        "SGE_TASK_ID": "2",
        "BASH_FUNC_f%%": "()",
    }
    argv_file, env_file = task_files(job, ["a b", ""], driver)
    assert argv_file == b"a b\0\0"
    assert env_file.split(b"\0")[:-1] == [b"A=spec", b"PATH=/bin", b"B=x y"]
    bad = JobSpec(**{**job.__dict__, "env": {"1X": "v"}})
    with pytest.raises(LaunchError, match="cannot be passed"):
        task_files(bad, [], {})


# -- Grid Engine's answers --------------------------------------------------------------------
QSTAT_XML = """<?xml version='1.0'?>
<job_info>
  <queue_info>
    <job_list state="running">
      <JB_job_number>5</JB_job_number><JB_name>run-k-a</JB_name><state>r</state>
      <tasks>1</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>5</JB_job_number><JB_name>run-k-a</JB_name><state>qw</state>
      <tasks>2-6:2</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>9</JB_job_number><JB_name>run-k-b</JB_name><state>Eqw</state>
    </job_list>
  </job_info>
</job_info>
"""


def test_qstat_xml_lists_every_task() -> None:
    tasks = parse_qstat(QSTAT_XML)
    assert sorted(tasks) == ["5.1", "5.2", "5.4", "5.6", "9.1"]
    assert not tasks["5.1"].pending
    assert tasks["5.4"].pending
    assert tasks["9.1"].error
    assert task_ids("1,4-6:2") == [1, 4, 6]


QACCT = """==============================================================
qname        all.q
jobname      run-k-a
jobnumber    5
taskid       1
failed       0
exit_status  3
==============================================================
jobname      run-k-a
jobnumber    5
taskid       2
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
==============================================================
jobname      other
jobnumber    7
taskid       undefined
failed       100 : assumedly after job
exit_status  137                  (Killed)
"""


def test_qacct_records_by_task() -> None:
    found = parse_qacct(QACCT)
    assert found["5.1"] == Accounted("run-k-a", 0, "", 3)
    assert found["5.2"].failed == 37
    assert "h_rt" in found["5.2"].failed_text
    assert found["7.1"].failed == 100  # a job that is no array is task 1


@pytest.mark.parametrize(
    ("record", "marker", "accounted", "flags", "state", "reason"),
    [
        pytest.param("0 0", False, None, {}, JobState.COMPLETED, "", id="exit-0"),
        pytest.param("3 1", False, None, {}, JobState.RESUME, "", id="checkpointed-at-signal"),
        pytest.param("1 1", False, None, {}, JobState.TIMEOUT, "time-limit signal", id="failed-after-signal"),  # noqa: E501
        pytest.param("137 0", False, None, {}, JobState.FAILED, "", id="killed"),
        pytest.param(None, True, Accounted("n", 37, "h_rt", 137), {}, JobState.TIMEOUT, "h_rt", id="h_rt"),  # noqa: E501
        pytest.param(None, True, None, {}, JobState.TIMEOUT, "after the signal", id="h_rt-no-accounting"),  # noqa: E501
        pytest.param(None, False, Accounted("n", 100, "after job", 137), {}, JobState.CANCELLED, "qdel", id="qdel"),  # noqa: E501
        pytest.param(None, False, None, {"deleted": True}, JobState.CANCELLED, "qdel", id="seen-deleted"),  # noqa: E501
        pytest.param(None, False, None, {"cancelled": True}, JobState.CANCELLED, "hpoptim", id="ours"),  # noqa: E501
        pytest.param(None, False, Accounted("n", 26, "opening output file", 0), {}, JobState.FAILED, "failed 26", id="not-run"),  # noqa: E501
        pytest.param(None, False, Accounted("n", 0, "", 5), {}, JobState.FAILED, "", id="script-killed"),  # noqa: E501
        pytest.param(None, False, None, {}, JobState.LOST, "vanished", id="nothing-known"),
    ],
)  # fmt: skip
def test_final_state_of_a_task(
    tmp_path: Path,
    record: str | None,
    marker: bool,
    accounted: Accounted | None,
    flags: dict[str, bool],
    state: JobState,
    reason: str,
) -> None:
    job = spec(tmp_path, time_limit_min=1)
    if record is not None:
        (job.paths.run_dir / EXIT_FILE_NAME).write_text(record + "\n")
    if marker:
        (job.paths.run_dir / (EXIT_FILE_NAME + ".signalled")).touch()
    status = terminal_status(job, "5.1", accounted, **flags)
    assert status.state is state
    assert reason in status.reason


# -- outages ----------------------------------------------------------------------------------
def test_an_outage_longer_than_the_tolerance_ends_polling(tmp_path: Path) -> None:
    calls: list[str] = []

    def down(argv: Sequence[str]) -> CommandResult:
        calls.append(argv[0])
        if argv[0] == "qsub":
            return CommandResult(0, "7.1-1:1\n", "")
        return CommandResult(1, "", "error: commlib error: got select error (Connection refused)")

    options = SgeOptions(
        poll_interval_s=0.05, max_poll_interval_s=0.05, script_dir=tmp_path / "sge",
        outage_tolerance_min=0.005,  # 0.3 s
    )  # fmt: skip
    launcher = SgeLauncher(options, runner=down)
    assert launcher.submit([spec(tmp_path)]) == {"j": "7.1"}
    news: list[object] = []
    with pytest.raises(LaunchError, match="Grid Engine has not answered for"):  # noqa: PT012
        for _ in range(100):
            news += launcher.poll(0.05)
    assert news == []  # until then: no news, no job judged lost
    assert calls.count("qstat") >= 3


# -- array jobs are split at the cluster's limits ---------------------------------------------
@pytest.mark.parametrize(
    ("conf", "sizes"),
    [
        pytest.param(
            "max_aj_instances 3\nmax_aj_tasks 75000\n", ["1-3", "1-3", "1-1"], id="instances"
        ),
        pytest.param("max_aj_instances 0\nmax_aj_tasks 4\n", ["1-4", "1-3"], id="0-no-limit"),
        pytest.param("", ["1-7"], id="unreadable-default-2000"),
    ],
)
def test_a_batch_is_split_at_max_aj_tasks_and_instances(
    tmp_path: Path, conf: str, sizes: list[str]
) -> None:
    qsubs: list[list[str]] = []

    def cluster(argv: Sequence[str]) -> CommandResult:
        if argv[0] == "qconf":
            return CommandResult(0 if conf else 1, conf, "" if conf else "denied")
        qsubs.append(list(argv))
        return CommandResult(0, f"{len(qsubs)}.1-9:1\n", "")

    launcher = SgeLauncher(SgeOptions(script_dir=tmp_path / "sge"), runner=cluster)
    natives = launcher.submit([spec(tmp_path, f"j{i}") for i in range(7)])
    assert [words_after(argv, "-t")[0] for argv in qsubs] == sizes
    assert natives["j0"] == "1.1"
    assert natives["j6"] == f"{len(sizes)}.{int(sizes[-1].split('-')[1])}"
    assert launcher.n_calls["qconf"] == 1  # read once


def test_without_arrays_each_job_is_one_qsub(tmp_path: Path) -> None:
    qsubs: list[Sequence[str]] = []

    def cluster(argv: Sequence[str]) -> CommandResult:
        qsubs.append(argv)
        return CommandResult(0, f"{len(qsubs)}.1-1:1\n", "")

    options = SgeOptions(script_dir=tmp_path / "sge", use_job_arrays=False)
    natives = SgeLauncher(options, runner=cluster).submit(
        [spec(tmp_path, f"j{i}") for i in range(3)]
    )
    assert natives == {"j0": "1.1", "j1": "2.1", "j2": "3.1"}
    assert [argv[0] for argv in qsubs] == ["qsub"] * 3
