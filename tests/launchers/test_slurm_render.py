"""Slurm launcher without a cluster: golden batch scripts, and states via a fake Slurm.

The fake Slurm is an in-memory sbatch/squeue/scancel/sacct passed to the launcher
as its command runner; the job side is played in-process by setting a job's Slurm
state and writing the exit status file its batch script would write.
Regenerate the golden files with ``HPOPTIM_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hpoptim.contract import EXIT_STATUS_FILE_NAME as EXIT_FILE_NAME
from hpoptim.errors import ConfigError, LaunchError
from hpoptim.jobspec import JobPaths, JobResources, JobSpec, JobState, JobStatus
from hpoptim.launchers.slurm import CommandResult, SlurmLauncher, SlurmOptions
from hpoptim.launchers.slurm_script import render_array, render_single

GOLDEN = Path(__file__).parent / "golden_slurm"
HOSTILE = ("two words", "'single'", '"double"', "$(touch pwned)", "`id`", "; rm -rf /", "*", "")


def golden_spec(job_id: str = "3_0.1-0", **changes: object) -> JobSpec:
    run_dir = Path("/results/rosenbrock/jobs/3/run_0.1-0")
    fields: dict[str, object] = {
        "job_id": job_id,
        "argv": ("/usr/bin/python3", "/repo/train.py", str(run_dir / "params.json")),
        "cwd": Path("/repo"),
        "paths": JobPaths(run_dir),
        "env": {"HPOPTIM_JOB_ID": job_id, "HPOPTIM_RUN_DIR": str(run_dir)},
    }
    fields.update(changes)
    return JobSpec(**fields)  # type: ignore[arg-type]


def _single(spec: JobSpec, options: SlurmOptions) -> str:
    return render_single(spec, spec.argv, options, "rosenbrock-abc123-3_0.1-0")


def _array() -> str:
    specs = [
        golden_spec(f"{i}_0.0-0", paths=JobPaths(Path(f"/r/jobs/{i}/run_0.0-0"))) for i in range(3)
    ]
    return render_array(specs, SlurmOptions(), "rosenbrock-abc123-0_0.0-0+2", Path("/r/slurm/t"))


def _hostile() -> str:
    run_dir = Path('/results/it\'s a "run" $(x); 100%/jobs/0/run_0.0-0')
    spec = golden_spec(
        argv=("python3", "-c", "print(1)", *HOSTILE),
        cwd=Path("/work dir/$(touch x)"),
        paths=JobPaths(run_dir),
        env={"WEIRD": "a b $HOME `id` ; 'q' \"d\"", "EMPTY": ""},
    )
    options = SlurmOptions(partition="gpu; rm -rf /", extra_sbatch_options=("--comment=a 'b' c",))
    return render_single(spec, spec.argv, options, "it_s_a-abc123-0_0.0-0")


GOLDEN_CASES = [
    pytest.param("single.sh", lambda: _single(golden_spec(), SlurmOptions()), id="single"),
    pytest.param("array.sh", _array, id="array"),
    pytest.param(
        "gpus.sh",
        lambda: _single(
            golden_spec(
                resources=JobResources(
                    n_cpus_per_job=4, n_gpus_per_job=2, mem_gb=16, time_limit_min=59.5
                )
            ),
            SlurmOptions(),
        ),
        id="gpus",
    ),
    pytest.param(
        "all_options.sh",
        lambda: _single(
            golden_spec(
                resources=JobResources(
                    n_cpus_per_job=2,
                    mem_gb=0.5,
                    time_limit_min=120,
                    timeout_signal="SIGUSR1",
                    signal_lead_s=90.5,
                ),
            ),
            SlurmOptions(
                partition="long",
                account="lab",
                qos="high",
                gres="gpu:a100:1",
                extra_sbatch_options=("--constraint=a100", "--exclusive"),
            ),
        ),
        id="all-options",
    ),
    pytest.param("hostile.sh", _hostile, id="hostile-values"),
]


@pytest.mark.parametrize(("name", "render"), GOLDEN_CASES)
def test_rendered_script_matches_golden_file(name: str, render: object) -> None:
    assert callable(render)
    text = render()
    path = GOLDEN / name
    if os.environ.get("HPOPTIM_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_hostile_values_reach_bash_verbatim(tmp_path: Path) -> None:
    """The hostile golden script, run by bash up to the job start, yields the exact values."""
    text = _hostile()
    setup = text.split("trap ':' TERM\n", 1)[1].split("# The job runs", 1)[0]
    probe = setup + 'printf "%s\\0" "${argv[@]}"; printf "%s\\0" "$WEIRD" "$EMPTY"'
    out = subprocess.run(
        ["bash", "-c", probe], capture_output=True, check=True, cwd=tmp_path
    ).stdout.split(b"\0")[:-1]
    assert [o.decode() for o in out] == [
        "python3", "-c", "print(1)", *HOSTILE, "a b $HOME `id` ; 'q' \"d\"", ""
    ]  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)


def _signal_batch_script(
    run_dir: Path, argv: Sequence[str], *, when: str, timeout_signal: str = "SIGTERM"
) -> tuple[int, str]:
    """Run a batch script by bash as Slurm would and send it Slurm's USR2.

    ``when``: "running" (once the job wrote ``ready`` in its working directory),
    "early" (while the script sets up, before the job starts), or "by-job" (the job
    sends it to the batch shell, whose pid it finds in ``$BATCH_PID``).
    Returns the script's exit status and the exit file it wrote.
    """
    run_dir.mkdir()
    spec = golden_spec(
        argv=tuple(argv),
        cwd=run_dir,
        paths=JobPaths(run_dir),
        resources=JobResources(timeout_signal=timeout_signal),
    )
    script = _single(spec, SlurmOptions())
    if when == "early":
        script = script.replace("\nset -m\n", "\nkill -s USR2 $$\nset -m\n", 1)
    elif when == "by-job":
        script = script.replace("\nset -u\n", "\nset -u\nexport BATCH_PID=$$\n", 1)
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=run_dir,
        stderr=subprocess.DEVNULL,
        # as slurmstepd starts it; a test run started in the background of a shell would
        # otherwise pass on SIGINT ignored, which no shell can undo
        preexec_fn=_default_signals,
    )
    try:
        if when == "running":
            deadline = time.monotonic() + 10
            while not (run_dir / "ready").exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            proc.send_signal(signal.SIGUSR2)
        returncode = proc.wait(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    return returncode, (run_dir / EXIT_FILE_NAME).read_text()


def _python_job(on_signal: str, signum: int = signal.SIGTERM) -> tuple[str, ...]:
    return (
        sys.executable,
        "-c",
        "import os, pathlib, signal, sys, time\n"
        f"signal.signal({int(signum)}, lambda *_: {on_signal})\n"
        "pathlib.Path('ready').write_text('')\n"
        "time.sleep(20)",
    )


def test_the_time_limit_signal_reaches_the_job_and_its_status_is_recorded(
    tmp_path: Path,
) -> None:
    returncode, record = _signal_batch_script(
        tmp_path / "h", _python_job("sys.exit(7)"), when="running"
    )
    assert (returncode, record) == (7, "7 1\n")
    killed = 128 + signal.SIGTERM
    returncode, record = _signal_batch_script(
        tmp_path / "k", ("/bin/sh", "-c", ": > ready; exec sleep 20"), when="running"
    )
    assert (returncode, record) == (killed, f"{killed} 1\n")


def test_the_job_status_survives_a_signal_that_cuts_the_shells_wait_short(
    tmp_path: Path,
) -> None:
    """A job that exits just as the signal reaches the batch shell: the shell's ``wait``
    returns 128+USR2, and the job's own status must be recorded all the same."""
    job = ("/bin/sh", "-c", 'trap "exit 5" TERM; kill -s USR2 "$BATCH_PID"; exit 5')
    for i in range(8):  # a shell's interrupted `wait` lost the status in about half the runs
        assert _signal_batch_script(tmp_path / f"r{i}", job, when="by-job") == (5, "5 1\n")


def test_a_time_limit_signal_before_the_job_starts_is_passed_on(tmp_path: Path) -> None:
    """Slurm may signal a job with a short limit before it started: it still gets it."""
    returncode, record = _signal_batch_script(
        tmp_path / "e", _python_job("sys.exit(7)"), when="early"
    )
    # depending on how far Python got, the job's handler ran or the signal killed it
    assert returncode in (7, 128 + signal.SIGTERM)
    assert record == f"{returncode} 1\n"


def test_the_signal_reaches_the_jobs_children_and_sigint_is_not_ignored(tmp_path: Path) -> None:
    """The job's whole process group gets the signal (as locally), and SIGINT arrives
    although the job runs in the background of a non-interactive shell."""
    # Python's default SIGINT handler raises KeyboardInterrupt, unless SIGINT was ignored
    # when it started; the grandchild, started by the job, notes that it got it too
    grandchild = (
        "import pathlib, time\n"
        "try:\n    pathlib.Path('child-ready').write_text('')\n    time.sleep(20)\n"
        "except KeyboardInterrupt:\n    pathlib.Path('child-got-it').write_text('')"
    )
    body = (
        "import pathlib, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "while not pathlib.Path('child-ready').exists(): time.sleep(0.01)\n"
        "try:\n    pathlib.Path('ready').write_text('')\n    time.sleep(20)\n"
        "except KeyboardInterrupt:\n    child.wait(timeout=10); sys.exit(6)"
    )
    job = (sys.executable, "-c", body)
    returncode, record = _signal_batch_script(
        tmp_path / "g", job, when="running", timeout_signal="SIGINT"
    )
    assert (returncode, record) == (6, "6 1\n")
    assert (tmp_path / "g" / "child-got-it").exists()


@pytest.mark.parametrize(
    ("changes", "options", "match"),
    [
        pytest.param(
            {"paths": JobPaths(Path("/results/a\nb/run"))}, {}, "line break", id="newline-in-path"
        ),
        pytest.param({"cwd": Path("/work\rdir")}, {}, "line break", id="return-in-cwd"),
        pytest.param({}, {"partition": "a\nb"}, "line break", id="newline-in-partition"),
        pytest.param({"env": {"NOT-A-NAME": "x"}}, {}, "cannot be passed", id="bad-env-name"),
    ],
)
def test_values_a_batch_script_cannot_hold_are_refused(
    changes: dict[str, object], options: dict[str, object], match: str
) -> None:
    spec = golden_spec(**changes)
    with pytest.raises(LaunchError, match=match):
        _single(spec, SlurmOptions(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        pytest.param({"poll_interval_s": 0}, "slurm.poll_interval_s", id="zero-interval"),
        pytest.param(
            {"poll_interval_s": 5, "max_poll_interval_s": 1},
            "slurm.max_poll_interval_s",
            id="max-below-min",
        ),
        pytest.param({"n_max_queued_jobs": 0}, "slurm.n_max_queued_jobs", id="zero-queue"),
        pytest.param(
            {"extra_sbatch_options": ("constraint=a100",)},
            "slurm.extra_sbatch_options[0]",
            id="option-without-dash",
        ),
    ],
)
def test_bad_options_are_refused_with_their_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        SlurmOptions(**options)  # type: ignore[arg-type]
    assert [p.path for p in info.value.problems] == [key]


# -- the fake Slurm ------------------------------------------------------------------------
#: Lines of ``scontrol show config`` as printed by slurm-wlm 22.05.8 (the test cluster),
#: with Slurm's default MaxArraySize.
SCONTROL_SHOW_CONFIG = """\
Configuration data as of 2026-11-30T06:17:29
AccountingStorageType   = accounting_storage/none
Licenses                = (null)
LogTimeFormat           = iso8601_ms
MailDomain              = (null)
MailProg                = /bin/mail
MaxArraySize            = 1001
MaxDBDMsgs              = 0
MaxJobCount             = 20000
MaxJobId                = 67043328
MinJobAge               = 60 sec
"""


@dataclass
class FakeJob:
    script: str
    state: str = "PENDING"
    raw_exit: int = 0


@dataclass
class FakeSlurm:
    """In-memory sbatch/squeue/scancel/sacct with Slurm's output formats."""

    jobs: dict[str, FakeJob] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    next_id: int = 100
    fail: dict[str, CommandResult] = field(default_factory=dict)
    fail_next: dict[str, list[CommandResult]] = field(default_factory=dict)
    """Answers given once each, in order, before the command works again."""
    max_array_size: int = 1001

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] in self.fail:
            return self.fail[argv[0]]
        if self.fail_next.get(argv[0]):
            return self.fail_next[argv[0]].pop(0)
        return getattr(self, argv[0])(argv[1:])

    def scontrol(self, args: list[str]) -> CommandResult:
        assert args == ["show", "config"]
        return CommandResult(0, SCONTROL_SHOW_CONFIG.replace("1001", str(self.max_array_size)), "")

    def count(self, command: str) -> int:
        return sum(1 for c in self.calls if c[0] == command)

    def sbatch(self, args: list[str]) -> CommandResult:
        script = Path(args[-1]).read_text()
        slurm_id = str(self.next_id)
        self.next_id += 1
        match = re.search(r"^#SBATCH --array=0-(\d+)$", script, re.M)
        if match:
            for i in range(int(match.group(1)) + 1):
                self.jobs[f"{slurm_id}_{i}"] = FakeJob(script)
        else:
            self.jobs[slurm_id] = FakeJob(script)
        return CommandResult(0, f"{slurm_id}\n", "")

    def squeue(self, args: list[str]) -> CommandResult:
        wanted = next(
            (a.split("=", 1)[1].split(",") for a in args if a.startswith("--jobs=")), None
        )
        rows = []
        for native, job in self.jobs.items():
            if wanted is None or native.split("_")[0] in wanted:
                name = re.search(r"--job-name=(\S+)", job.script)
                rows.append(f"{native}|{job.state}|{job.raw_exit}|{name.group(1) if name else ''}")
        if wanted is not None and not rows:
            return CommandResult(1, "", "slurm_load_jobs error: Invalid job id specified\n")
        return CommandResult(0, "\n".join(rows) + "\n", "")

    def scancel(self, args: list[str]) -> CommandResult:
        for native in args:
            for key, job in self.jobs.items():
                if key == native or key.split("_")[0] == native:
                    job.state = "CANCELLED"
        return CommandResult(0, "", "")

    def sacct(self, args: list[str]) -> CommandResult:
        return CommandResult(1, "", "Slurm accounting storage is disabled\n")

    def finish(self, native: str, state: str, raw_exit: int = 0) -> None:
        self.jobs[native].state = state
        self.jobs[native].raw_exit = raw_exit


def spec_in(tmp_path: Path, job_id: str, **changes: object) -> JobSpec:
    run_dir = tmp_path / "jobs" / job_id
    run_dir.mkdir(parents=True, exist_ok=True)
    fields: dict[str, object] = {
        "job_id": job_id,
        "argv": (sys.executable, "-c", "pass"),
        "cwd": tmp_path,
        "paths": JobPaths(run_dir),
    }
    fields.update(changes)
    return JobSpec(**fields)  # type: ignore[arg-type]


def fake_launcher(tmp_path: Path, fake: FakeSlurm, **options: object) -> SlurmLauncher:
    opts = SlurmOptions(
        poll_interval_s=0.01, max_poll_interval_s=0.05, script_dir=tmp_path / "slurm", **options
    )  # type: ignore[arg-type]
    return SlurmLauncher(opts, runner=fake)


def write_exit(spec: JobSpec, text: str) -> None:
    (spec.paths.run_dir / EXIT_FILE_NAME).write_text(text)


@pytest.mark.parametrize(
    ("slurm_state", "raw_exit", "exit_file", "want"),
    [
        pytest.param("COMPLETED", 0, "0 0", (JobState.COMPLETED, 0, None, ""), id="completed"),
        pytest.param("FAILED", 3 << 8, "3 0", (JobState.RESUME, 3, None, ""), id="exit-3"),
        pytest.param(
            "FAILED", 3 << 8, "3 1", (JobState.RESUME, 3, None, ""), id="checkpointed-at-limit"
        ),
        pytest.param("FAILED", 5 << 8, "5 0", (JobState.FAILED, 5, None, ""), id="exit-5"),
        pytest.param("FAILED", 137 << 8, "137 0", (JobState.FAILED, None, 9, ""), id="sigkill"),
        pytest.param(
            "FAILED", 137 << 8, None, (JobState.FAILED, None, 9, ""), id="sigkill-no-exit-file"
        ),
        pytest.param(
            "FAILED", 1 << 8, "1 1", (JobState.TIMEOUT, 1, None, "timeout"), id="fails-on-signal"
        ),
        pytest.param(
            "TIMEOUT", 15, None, (JobState.TIMEOUT, None, 15, "time limit"), id="killed-at-limit"
        ),
        pytest.param(
            "TIMEOUT", 0, None, (JobState.TIMEOUT, 0, None, "time limit"), id="limit-status-0"
        ),
        pytest.param("TIMEOUT", 0, "0 1", (JobState.COMPLETED, 0, None, ""), id="done-at-limit"),
        pytest.param("TIMEOUT", 0, "3 1", (JobState.RESUME, 3, None, ""), id="resume-at-limit"),
        pytest.param(
            "CANCELLED", 15, "143 0", (JobState.CANCELLED, None, 15, "scancel"), id="scancel"
        ),
        pytest.param(
            "OUT_OF_MEMORY", 9, None, (JobState.FAILED, None, 9, "out of memory"), id="oom"
        ),
        pytest.param("NODE_FAIL", 0, None, (JobState.FAILED, 0, None, "node"), id="node-fail"),
        pytest.param("PREEMPTED", 0, None, (JobState.LOST, 0, None, "preempted"), id="preempted"),
        pytest.param(None, 0, "0 0", (JobState.COMPLETED, 0, None, ""), id="aged-out-exit-file"),
        pytest.param(None, 0, "3 0", (JobState.RESUME, 3, None, ""), id="aged-out-resume"),
        pytest.param(None, 0, None, (JobState.LOST, None, None, "vanished"), id="vanished"),
        pytest.param("COMPLETED", 0, None, (JobState.COMPLETED, 0, None, ""), id="no-exit-file"),
    ],
)
def test_slurm_state_and_exit_file_map_to_one_status_in_one_poll(
    tmp_path: Path,
    slurm_state: str | None,
    raw_exit: int,
    exit_file: str | None,
    want: tuple[JobState, int | None, int | None, str],
) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    spec = spec_in(tmp_path, "j")
    native = launcher.submit([spec])["j"]
    if slurm_state is None:
        del fake.jobs[native]
    else:
        fake.finish(native, slurm_state, raw_exit)
    if exit_file is not None:
        write_exit(spec, exit_file)
    before = fake.count("squeue")
    statuses = launcher.poll(1.0)
    assert fake.count("squeue") == before + 1
    assert len(statuses) == 1
    status = statuses[0]
    assert (status.state, status.exit_code, status.signal) == want[:3]
    assert want[3] in status.reason
    assert status.native_id == native
    assert launcher.poll(0.05) == []


def test_one_sbatch_per_resource_group_and_one_squeue_per_poll(tmp_path: Path) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    big = JobResources(n_cpus_per_job=4)
    specs = [spec_in(tmp_path, f"a{i}") for i in range(5)]
    specs += [spec_in(tmp_path, f"b{i}", resources=big) for i in range(3)]
    native = launcher.submit(specs)
    assert fake.count("sbatch") == 2
    assert native["a4"] == "100_4"
    assert native["b0"] == "101_0"
    for job in fake.jobs.values():
        job.state = "RUNNING"
    running = launcher.poll(1.0)
    assert {s.job_id for s in running} == {s.job_id for s in specs}
    assert {s.state for s in running} == {JobState.RUNNING}
    assert fake.count("squeue") == 1
    for i, spec in enumerate(specs):
        write_exit(spec, f"{i % 2} 0")
        fake.finish(native[spec.job_id], "COMPLETED" if i % 2 == 0 else "FAILED", (i % 2) << 8)
    ended = launcher.poll(1.0)
    assert fake.count("squeue") == 2
    assert {s.job_id: s.exit_code for s in ended} == {s.job_id: i % 2 for i, s in enumerate(specs)}
    task = tmp_path / "slurm" / "a0+4.tasks"
    assert (task / "3").resolve() == specs[3].paths.run_dir.resolve()
    assert (task / "3.argv").read_bytes() == b"\0".join(a.encode() for a in specs[3].argv) + b"\0"


@pytest.mark.parametrize(
    ("use_job_arrays", "n_sbatch"),
    [pytest.param(True, 1, id="arrays"), pytest.param(False, 4, id="one-script-per-job")],
)
def test_job_arrays_can_be_turned_off(tmp_path: Path, use_job_arrays: bool, n_sbatch: int) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake, use_job_arrays=use_job_arrays)
    launcher.submit([spec_in(tmp_path, f"j{i}") for i in range(4)])
    assert fake.count("sbatch") == n_sbatch


def test_capacity_follows_the_queue_limit(tmp_path: Path) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake, n_max_queued_jobs=3)
    assert launcher.capacity() == 3
    native = launcher.submit([spec_in(tmp_path, "a"), spec_in(tmp_path, "b")])
    assert launcher.capacity() == 1
    fake.finish(native["a"], "COMPLETED")
    write_exit(spec_in(tmp_path, "a"), "0 0")
    assert [s.job_id for s in launcher.poll(1.0)] == ["a"]
    assert launcher.capacity() == 2
    assert fake_launcher(tmp_path, fake).capacity() is None


def test_failed_poll_is_a_warning_and_the_next_poll_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    native = launcher.submit([spec_in(tmp_path, "j")])["j"]
    fake.finish(native, "COMPLETED")
    fake.fail["squeue"] = CommandResult(1, "", "slurm_load_jobs error: Socket timed out")
    with caplog.at_level(logging.WARNING, logger="hpoptim"):
        assert launcher.poll(0.1) == []
    assert "squeue failed" in caplog.text
    del fake.fail["squeue"]
    assert [s.state for s in launcher.poll(1.0)] == [JobState.COMPLETED]


def test_poll_backs_off_while_nothing_changes(tmp_path: Path) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    launcher.submit([spec_in(tmp_path, "j")])
    launcher.poll(0.5)
    n = fake.count("squeue")
    # intervals 0.01 * 1.5^k, capped at 0.05: far fewer calls than 0.5 s / 0.01 s
    assert 3 <= n <= 16


def test_cancel_is_one_scancel_call_and_reports_cancelled(tmp_path: Path) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    launcher.submit([spec_in(tmp_path, f"j{i}") for i in range(3)])
    launcher.cancel(["j0", "j2", "unknown"])
    assert [c for c in fake.calls if c[0] == "scancel"] == [["scancel", "100_0", "100_2"]]
    ended = launcher.poll(1.0)
    assert {s.job_id: s.state for s in ended} == {
        "j0": JobState.CANCELLED,
        "j2": JobState.CANCELLED,
    }


def test_sbatch_refusal_raises_launch_error(tmp_path: Path) -> None:
    fake = FakeSlurm(fail={"sbatch": CommandResult(1, "", "sbatch: error: invalid partition")})
    launcher = fake_launcher(tmp_path, fake)
    with pytest.raises(LaunchError, match="invalid partition"):
        launcher.submit([spec_in(tmp_path, "j")])
    assert launcher.capacity() is None
    assert launcher.poll(0.05) == []


@pytest.mark.parametrize(
    ("journaled_native", "in_squeue", "exit_file", "followed"),
    [
        pytest.param(True, True, False, True, id="known-id-still-queued"),
        pytest.param(True, False, True, True, id="known-id-finished-exit-file"),
        pytest.param(True, False, False, False, id="known-id-gone"),
        pytest.param(False, True, False, True, id="found-by-name"),
        pytest.param(False, False, False, False, id="never-submitted"),
    ],
)
def test_reattach(
    tmp_path: Path, journaled_native: bool, in_squeue: bool, exit_file: bool, followed: bool
) -> None:
    fake = FakeSlurm()
    first = fake_launcher(tmp_path, fake)
    specs = [spec_in(tmp_path, f"j{i}") for i in range(2)]
    native = first.submit(specs)
    if not in_squeue:
        fake.jobs.clear()
    if exit_file:
        write_exit(specs[1], "0 0")
    second = fake_launcher(tmp_path, fake)
    n_sbatch = fake.count("sbatch")
    got = second.reattach(specs[1], native["j1"] if journaled_native else "")
    assert got is followed
    assert fake.count("sbatch") == n_sbatch
    if followed:
        if in_squeue:
            fake.finish(native["j1"], "COMPLETED")
            write_exit(specs[1], "0 0")
        ended = second.poll(1.0)
        assert [(s.job_id, s.state) for s in ended] == [("j1", JobState.COMPLETED)]
        assert ended[0].native_id == (native["j1"] if in_squeue or journaled_native else "")


@pytest.mark.parametrize(
    "detached", [pytest.param(False, id="closed"), pytest.param(True, id="detached")]
)
def test_a_detached_launcher_leaves_its_jobs_running(tmp_path: Path, detached: bool) -> None:
    """A driver that dies (detach) cancels nothing, even with cancel_on_close."""
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    launcher.cancel_on_close = True
    native = launcher.submit([spec_in(tmp_path, "j")])["j"]
    if detached:
        launcher.detach()
        assert launcher.poll(0.05) == []
    launcher.close()
    assert fake.count("scancel") == (0 if detached else 1)
    assert fake.jobs[native].state == ("PENDING" if detached else "CANCELLED")


# -- integrity: retries, array limits, secrets, names ----------------------------------------
UNREACHABLE = CommandResult(
    1,
    "",
    "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
    "(connect failure)\n",
)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The launcher's retry delays, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("hpoptim.launchers.slurm_commands.time.sleep", slept.append)
    return slept


def test_sbatch_retries_while_the_controller_is_unreachable(
    tmp_path: Path, sleeps: list[float]
) -> None:
    fake = FakeSlurm(fail_next={"sbatch": [UNREACHABLE] * 3})
    launcher = fake_launcher(tmp_path, fake)
    native = launcher.submit([spec_in(tmp_path, "j")])
    assert native == {"j": "100"}
    assert fake.count("sbatch") == 4
    assert sleeps == [1.0, 2.0, 4.0]  # growing delays


class FakeClock:
    """Monotonic time that moves only when the launcher sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


SQUEUE_UNREACHABLE = CommandResult(
    1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
)


def outage_launcher(tmp_path: Path, fake: FakeSlurm, clock: FakeClock) -> SlurmLauncher:
    options = SlurmOptions(
        poll_interval_s=2.0,
        max_poll_interval_s=30.0,
        script_dir=tmp_path / "slurm",
        outage_tolerance_min=10.0,
    )
    return SlurmLauncher(options, runner=fake, clock=clock)


def poll_for(launcher: SlurmLauncher, clock: FakeClock, seconds: float) -> list[JobStatus]:
    news: list[JobStatus] = []
    end = clock.now + seconds
    while end - clock.now > 1e-6:  # a smaller step would not move a float clock
        news += launcher.poll(end - clock.now)
    return news


def test_an_outage_within_the_tolerance_delays_submissions_and_loses_no_end(
    tmp_path: Path,
) -> None:
    fake, clock = FakeSlurm(), FakeClock()
    launcher = outage_launcher(tmp_path, fake, clock)
    running = spec_in(tmp_path, "r")
    native = launcher.submit([running])["r"]
    fake.fail = {"sbatch": UNREACHABLE, "squeue": SQUEUE_UNREACHABLE}
    waiting = spec_in(tmp_path, "w")
    assert launcher.submit([waiting]) == {"w": ""}  # it waits, the run goes on
    assert fake.count("sbatch") == 1 + 4  # a few quick tries, then no more blocking
    fake.finish(native, "COMPLETED")
    write_exit(running, "0 0\n")  # its batch script recorded its end
    news = poll_for(launcher, clock, 8 * 60)  # eight minutes out: squeue never answers
    assert [(s.job_id, s.state) for s in news] == [("r", JobState.COMPLETED)]
    n_tries = fake.count("sbatch") - 5
    assert 9 <= n_tries <= 20  # tried again, with growing delays
    fake.fail.clear()  # the controller is back
    news = poll_for(launcher, clock, 61)
    assert [(s.job_id, s.state) for s in news] == [("w", JobState.PENDING)]
    assert news[0].native_id == "101"
    fake.finish("101", "COMPLETED")
    write_exit(waiting, "0 0\n")
    assert [s.state for s in poll_for(launcher, clock, 31)] == [JobState.COMPLETED]


def test_an_outage_beyond_the_tolerance_stops_the_launcher(tmp_path: Path) -> None:
    fake, clock = FakeSlurm(), FakeClock()
    launcher = outage_launcher(tmp_path, fake, clock)
    launcher.submit([spec_in(tmp_path, "r")])
    fake.fail = {"sbatch": UNREACHABLE, "squeue": SQUEUE_UNREACHABLE}
    start = clock.now
    with pytest.raises(LaunchError, match=r"slurm.outage_tolerance_min = 10 \(slurm_load_jobs"):
        poll_for(launcher, clock, 3600)
    assert 10 * 60 < clock.now - start <= 11 * 60


def test_a_submission_waiting_for_the_controller_is_cancelled_without_slurm(
    tmp_path: Path,
) -> None:
    fake, clock = FakeSlurm(fail={"sbatch": UNREACHABLE}), FakeClock()
    launcher = outage_launcher(tmp_path, fake, clock)
    assert launcher.submit([spec_in(tmp_path, "w")]) == {"w": ""}
    launcher.cancel(["w"])
    (status,) = launcher.poll(0.0)
    assert (status.job_id, status.state, status.reason) == (
        "w",
        JobState.CANCELLED,
        "never submitted",
    )
    assert fake.count("scancel") == 0
    fake.fail.clear()
    assert poll_for(launcher, clock, 120) == []  # never submitted later
    assert fake.count("sbatch") == 4


def test_a_submission_whose_answer_was_lost_is_not_queued_twice(tmp_path: Path) -> None:
    fake, clock = FakeSlurm(), FakeClock()
    launcher = outage_launcher(tmp_path, fake, clock)
    queue = fake.sbatch

    def queued_but_timed_out(args: list[str]) -> CommandResult:
        queue(args)
        return CommandResult(124, "", "sbatch timed out after 120 s")

    fake.sbatch = queued_but_timed_out  # type: ignore[method-assign]
    fake.fail_next["squeue"] = [SQUEUE_UNREACHABLE] * 3
    assert launcher.submit([spec_in(tmp_path, "w")]) == {"w": ""}
    news = poll_for(launcher, clock, 60)
    assert [(s.job_id, s.state, s.native_id) for s in news] == [("w", JobState.PENDING, "100")]
    assert fake.count("sbatch") == 1  # a time-out may have queued it: never sent again
    assert list(fake.jobs) == ["100"]


def test_a_refusal_is_not_retried(tmp_path: Path, sleeps: list[float]) -> None:
    fake = FakeSlurm(fail={"sbatch": CommandResult(1, "", "sbatch: error: invalid partition")})
    with pytest.raises(LaunchError):
        fake_launcher(tmp_path, fake).submit([spec_in(tmp_path, "j")])
    assert fake.count("sbatch") == 1
    assert sleeps == []


def test_scancel_and_reattach_listing_retry_too(tmp_path: Path, sleeps: list[float]) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    specs = [spec_in(tmp_path, f"j{i}") for i in range(2)]
    native = launcher.submit(specs)
    fake.fail_next["scancel"] = [UNREACHABLE]
    launcher.cancel(["j0"])
    assert fake.jobs[native["j0"]].state == "CANCELLED"
    fake.fail_next["squeue"] = [UNREACHABLE]
    assert fake_launcher(tmp_path, fake).reattach(specs[1], "")
    assert sleeps == [1.0, 1.0]


@pytest.mark.parametrize(
    ("max_array_size", "n_jobs", "arrays"),
    [
        pytest.param(1001, 1001, ["0-1000"], id="exactly-the-default-limit"),
        pytest.param(1001, 1002, ["0-1000", None], id="one-over-the-default-limit"),
        pytest.param(4, 10, ["0-3", "0-3", "0-1"], id="small-limit"),
    ],
)
def test_job_arrays_are_split_at_max_array_size(
    tmp_path: Path, max_array_size: int, n_jobs: int, arrays: list[str | None]
) -> None:
    fake = FakeSlurm(max_array_size=max_array_size)
    launcher = fake_launcher(tmp_path, fake)
    specs = [spec_in(tmp_path, f"j{i}") for i in range(n_jobs)]
    native = launcher.submit(specs)
    scripts = [Path(c[-1]).read_text() for c in fake.calls if c[0] == "sbatch"]
    found = [re.search(r"^#SBATCH --array=(\S+)$", t, re.M) for t in scripts]
    assert [m.group(1) if m else None for m in found] == arrays
    assert len(set(native.values())) == n_jobs  # every job has its own Slurm id
    assert fake.count("scontrol") == 1
    launcher.submit([spec_in(tmp_path, "later-a"), spec_in(tmp_path, "later-b")])
    assert fake.count("scontrol") == 1  # asked once per launcher


def test_max_array_size_is_read_from_scontrol_output() -> None:
    from hpoptim.launchers.slurm_commands import parse_max_array_size

    assert parse_max_array_size(SCONTROL_SHOW_CONFIG) == 1001
    assert parse_max_array_size("MaxArraySize = 5001\n") == 5001
    assert parse_max_array_size("MaxJobCount = 20000\n") is None


def test_without_scontrol_the_default_limit_applies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeSlurm(fail={"scontrol": CommandResult(127, "", "scontrol: not found")})
    launcher = fake_launcher(tmp_path, fake)
    with caplog.at_level(logging.WARNING, logger="hpoptim"):
        assert launcher.max_array_size() == 1001
    assert "MaxArraySize" in caplog.text


def test_scripts_and_task_files_are_private(tmp_path: Path) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    secret = {"API_TOKEN": "s3cret"}
    old = os.umask(0o022)
    try:
        launcher.submit([spec_in(tmp_path, "single", env=secret)])
        launcher.submit([spec_in(tmp_path, f"a{i}", env=secret) for i in range(2)])
    finally:
        os.umask(old)
    holding = [p for p in (tmp_path / "slurm").rglob("*") if b"s3cret" in _bytes(p)]
    assert len(holding) == 3  # one batch script, two array task files
    for path in holding:
        assert path.stat().st_mode & 0o077 == 0, path
    assert (tmp_path / "slurm").stat().st_mode & 0o077 == 0
    scripts = list((tmp_path / "slurm").glob("*.sh"))
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in scripts)


def _bytes(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() and not path.is_symlink() else b""


def test_placeholders_in_values_are_not_filled(tmp_path: Path) -> None:
    """The template is filled in one pass: a path holding ``{{setup}}`` stays a path."""
    run_dir = tmp_path / "{{setup}}" / "{{sbatch_options}}"
    spec = golden_spec(paths=JobPaths(run_dir), cwd=tmp_path / "{{what}}")
    text = render_single(spec, spec.argv, SlurmOptions(), "n")
    header = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert "argv=(" not in "\n".join(header)
    assert text.count("argv=(") == 1
    assert text.count("#SBATCH --job-name") == 1
    assert "#SBATCH " + shlex.quote(f"--chdir={tmp_path}/{{{{what}}}}") in text


def test_job_names_are_unique_per_run_in_the_same_place(tmp_path: Path) -> None:
    fake = FakeSlurm()
    first = fake_launcher(tmp_path, fake)
    first.submit([spec_in(tmp_path, "j")])
    again = fake_launcher(tmp_path, fake)  # the same run, resumed
    again.submit([spec_in(tmp_path, "k")])
    (tmp_path / "slurm").rename(tmp_path / "old-run")  # --overwrite moves the run aside
    fresh = fake_launcher(tmp_path, fake)
    fresh.submit([spec_in(tmp_path, "j")])
    names = [re.search(r"--job-name=(\S+)", j.script).group(1) for j in fake.jobs.values()]  # type: ignore[union-attr]
    assert names[0].rsplit("-", 1)[0] == names[1].rsplit("-", 1)[0]  # same run key
    assert names[0] != names[2]
    assert first.run_key() != fresh.run_key()


def test_resume_by_name_ignores_a_previous_run_in_the_same_place(tmp_path: Path) -> None:
    fake = FakeSlurm()
    old = fake_launcher(tmp_path, fake)
    old.submit([spec_in(tmp_path, "j")])
    (tmp_path / "slurm").rename(tmp_path / "old-run")
    new = fake_launcher(tmp_path, fake)
    # the new run wrote its manifest, then died before sbatch
    spec = spec_in(tmp_path, "j")
    fake.fail["sbatch"] = CommandResult(1, "", "sbatch: error: killed")
    with pytest.raises(LaunchError):
        new.submit([spec])
    resumed = fake_launcher(tmp_path, fake)
    assert resumed.reattach(spec, "") is False  # the old run's job "j" is not ours


def test_stop_leftovers_cancels_only_this_runs_unfinished_jobs(
    tmp_path: Path, sleeps: list[float]
) -> None:
    fake = FakeSlurm()
    ours = SlurmLauncher(SlurmOptions(script_dir=tmp_path / "ours" / "slurm"), runner=fake)
    theirs = SlurmLauncher(SlurmOptions(script_dir=tmp_path / "theirs" / "slurm"), runner=fake)
    mine = ours.submit([spec_in(tmp_path, f"a{i}") for i in range(3)])
    mine.update(ours.submit([spec_in(tmp_path, "b")]))
    done = ours.submit([spec_in(tmp_path, "c")])["c"]
    fake.finish(done, "COMPLETED")
    other = theirs.submit([spec_in(tmp_path, "a0")])["a0"]
    n = SlurmLauncher.stop_leftovers(tmp_path / "ours" / "slurm", runner=fake)
    assert n == 2  # one array, one single job
    assert [c for c in fake.calls if c[0] == "scancel"] == [["scancel", "100", "101"]]
    assert {fake.jobs[x].state for x in mine.values()} == {"CANCELLED"}
    assert fake.jobs[other].state == "PENDING"
    assert fake.jobs[done].state == "COMPLETED"
    assert SlurmLauncher.stop_leftovers(tmp_path / "ours" / "slurm", runner=fake) == 0


def test_stop_leftovers_fails_when_jobs_outlive_the_wait(
    tmp_path: Path, sleeps: list[float]
) -> None:
    fake = FakeSlurm()
    launcher = fake_launcher(tmp_path, fake)
    launcher.submit([spec_in(tmp_path, "j")])
    fake.scancel = lambda args: CommandResult(0, "", "")  # type: ignore[method-assign]
    with pytest.raises(LaunchError, match="still running"):
        SlurmLauncher.stop_leftovers(tmp_path / "slurm", runner=fake, wait_s=0.0)


# -- sacct (clusters with accounting) ----------------------------------------------------------
#: ``sacct --noheader --parsable2 --allocations --format=JobID,State,ExitCode,JobName`` in
#: Slurm 22.05's format: ``|``-separated, ExitCode ``code:signal``, a cancelled job's state
#: ``CANCELLED by UID``, array tasks ``ID_N`` and pending task ranges ``ID_[a-b]``; step
#: rows (``ID.batch``) appear when ``--allocations`` is left out. tests/slurm/test_sacct.py
#: parses the real output of the test cluster's accounting.
SACCT_OUTPUT = """\
4242|COMPLETED|0:0|s-1a2b3c4d-0_0.0-0
4242.batch|COMPLETED|0:0|batch
4243_0|FAILED|2:0|s-1a2b3c4d-1_0.0-0+2
4243_1|CANCELLED by 0|0:15|s-1a2b3c4d-1_0.0-0+2
4243_2|TIMEOUT|0:0|s-1a2b3c4d-1_0.0-0+2
4244|OUT_OF_MEMORY|0:125|s-1a2b3c4d-4_0.0-0
4245_[3-7]|PENDING|0:0|s-1a2b3c4d-5_0.0-0+4
"""


def test_sacct_output_is_parsed_into_state_wait_status_and_name() -> None:
    from hpoptim.launchers.slurm_states import parse_sacct

    rows = parse_sacct(SACCT_OUTPUT)
    assert rows["4242"] == ("COMPLETED", 0, "s-1a2b3c4d-0_0.0-0")
    assert rows["4243_0"] == ("FAILED", 2 << 8, "s-1a2b3c4d-1_0.0-0+2")
    assert rows["4243_1"] == ("CANCELLED", 15, "s-1a2b3c4d-1_0.0-0+2")
    assert rows["4243_2"] == ("TIMEOUT", 0, "s-1a2b3c4d-1_0.0-0+2")
    assert rows["4244"] == ("OUT_OF_MEMORY", 125, "s-1a2b3c4d-4_0.0-0")
    assert "4242.batch" not in rows


@dataclass
class AccountedSlurm(FakeSlurm):
    """A fake Slurm with accounting: sacct remembers jobs squeue has forgotten."""

    accounting: dict[str, str] = field(default_factory=dict)

    def sacct(self, args: list[str]) -> CommandResult:
        wanted = next(a.split("=", 1)[1].split(",") for a in args if a.startswith("--jobs="))
        rows = [self.accounting[n] for n in wanted if n in self.accounting]
        return CommandResult(0, "".join(f"{r}\n" for r in rows), "")


@pytest.mark.parametrize(
    ("sacct_row", "want"),
    [
        pytest.param("FAILED|2:0|n", (JobState.FAILED, 2, None), id="failed"),
        pytest.param("COMPLETED|0:0|n", (JobState.COMPLETED, 0, None), id="completed"),
        pytest.param("TIMEOUT|0:0|n", (JobState.TIMEOUT, 0, None), id="killed-at-limit"),
        pytest.param("CANCELLED by 0|0:15|n", (JobState.CANCELLED, None, 15), id="cancelled"),
        pytest.param("OUT_OF_MEMORY|0:125|n", (JobState.FAILED, None, 125), id="oom"),
    ],
)
def test_sacct_decides_a_job_squeue_forgot_that_left_no_exit_file(
    tmp_path: Path, sacct_row: str, want: tuple[JobState, int | None, int | None]
) -> None:
    fake = AccountedSlurm()
    launcher = fake_launcher(tmp_path, fake)
    native = launcher.submit([spec_in(tmp_path, "j")])["j"]
    del fake.jobs[native]  # aged out of slurmctld (MinJobAge)
    fake.accounting[native] = f"{native}|{sacct_row}"
    [status] = launcher.poll(1.0)
    assert (status.state, status.exit_code, status.signal) == want
    assert fake.count("sacct") == 1


def test_scripts_and_manifest_are_on_disk_before_sbatch_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a crash right after sbatch, resume finds the job through its manifest."""
    synced: set[str] = set()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fsync", fsync)
    fake = FakeSlurm()
    checked: list[str] = []

    def runner(argv: Sequence[str]) -> CommandResult:
        if argv[0] == "sbatch":
            script = Path(argv[-1])
            manifest = script.with_suffix(".json")
            assert {str(script), str(manifest), str(script.parent)} <= synced
            checked.append(script.name)
        return fake(argv)

    launcher = SlurmLauncher(SlurmOptions(script_dir=tmp_path / "slurm"), runner=runner)
    launcher.submit([spec_in(tmp_path, "one")])
    launcher.submit([spec_in(tmp_path, "a"), spec_in(tmp_path, "b")])
    assert checked == ["one.sh", "a+1.sh"]


def test_stop_leftovers_without_slurm_says_what_to_do(tmp_path: Path, sleeps: list[float]) -> None:
    fake = FakeSlurm()
    fake_launcher(tmp_path, fake).submit([spec_in(tmp_path, "j")])
    fake.fail["squeue"] = CommandResult(127, "", "[Errno 2] No such file or directory: 'squeue'")
    with pytest.raises(LaunchError, match="must be stopped before it is moved aside"):
        SlurmLauncher.stop_leftovers(tmp_path / "slurm", runner=fake)


@pytest.mark.parametrize(
    ("sacct_name", "followed"),
    [
        pytest.param(None, True, id="its-name"),
        pytest.param("other-run-job", False, id="id-given-out-again"),
    ],
)
def test_reattach_follows_a_job_only_accounting_knows(
    tmp_path: Path, sacct_name: str | None, followed: bool
) -> None:
    """squeue forgot the job and it left no exit status, but sacct knows it by its name."""
    fake = AccountedSlurm()
    spec = spec_in(tmp_path, "j")
    native = fake_launcher(tmp_path, fake).submit([spec])["j"]
    name = re.search(r"--job-name=(\S+)", fake.jobs.pop(native).script)
    assert name is not None
    fake.accounting[native] = f"{native}|CANCELLED by 0|0:0|{sacct_name or name.group(1)}"
    later = fake_launcher(tmp_path, fake)
    assert later.reattach(spec, native) is followed
    if followed:
        [status] = later.poll(1.0)
        assert (status.state, status.reason) == (JobState.CANCELLED, "cancelled with scancel")
    assert fake.count("sbatch") == 1
