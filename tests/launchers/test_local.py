"""The local launcher: the shared contract plus what only a local launcher can show."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpoptim.errors import ConfigError, LaunchError
from hpoptim.jobspec import ContainerOptions, JobPaths, JobSpec, JobState
from hpoptim.launchers import available, load, node
from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.local import LocalLauncher
from hpoptim.launchers.node import (
    EXIT_FILE_NAME,
    PROCESS_FILE_NAME,
    read_exit_file,
    read_process_file,
)
from tests.conftest import FakeContainerRuntime
from tests.contracts.launcher import COUNT_START, RUN_DIR, STARTED, LauncherContract


def is_running(pid: int) -> bool:
    """True if ``pid`` is a live process (neither gone nor a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class TestLocalLauncher(LauncherContract):
    timeout_min = 0.05  # 3 s wall time, signal after 1.5 s
    signal_lead_s = 1.5

    def make_launcher(self, tmp_path: Path) -> BaseLauncher:
        return LocalLauncher(n_parallel_jobs=5, cancel_grace_s=0.5)

    def abandon(self, launcher: BaseLauncher) -> None:
        assert isinstance(launcher, LocalLauncher)
        launcher.detach()


@pytest.fixture
def contract() -> TestLocalLauncher:
    return TestLocalLauncher()


@pytest.fixture
def two_slots() -> Iterator[LocalLauncher]:
    with LocalLauncher(n_parallel_jobs=2, cancel_grace_s=0.5) as launcher:
        yield launcher


def test_parallelism_bound_is_respected(
    two_slots: LocalLauncher, contract: TestLocalLauncher, tmp_path: Path
) -> None:
    body = (
        "t0 = time.time(); time.sleep(0.4)\n"
        f"{RUN_DIR}.joinpath('span.json').write_text(json.dumps([t0, time.time()]))"
    )
    specs = [contract.spec(tmp_path, f"j{i}", body) for i in range(6)]
    assert two_slots.submit(specs)  # more than the free slots: the rest wait their turn
    assert two_slots.capacity() == 0
    ended = contract.poll_until_ended(
        two_slots, {s.job_id for s in specs}, {"j0", "j1", "j2", "j3", "j4", "j5"}
    )
    assert {s.state for s in ended.values()} == {JobState.COMPLETED}
    spans = [json.loads((s.paths.run_dir / "span.json").read_text()) for s in specs]
    edges = sorted([(t0, 1) for t0, _ in spans] + [(t1, -1) for _, t1 in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_poll_wakes_when_a_job_ends_not_at_the_timeout(
    two_slots: LocalLauncher, contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", STARTED + "time.sleep(0.3)")
    assert two_slots.submit([spec]) == {"j": ""}  # no waiting for the process
    start = time.monotonic()
    statuses = []
    while not statuses:
        statuses = two_slots.poll(60.0)
    assert time.monotonic() - start < 20.0
    # its start, which alone ends no wait, comes with its end; both carry its pid
    pid = (spec.paths.run_dir / "started").read_text()
    assert [(s.state, s.native_id) for s in statuses] == [
        (JobState.RUNNING, pid),
        (JobState.COMPLETED, pid),
    ]
    start = time.monotonic()
    assert two_slots.poll(0.2) == []
    assert time.monotonic() - start >= 0.15


def test_leftover_children_of_a_finished_job_are_killed(
    two_slots: LocalLauncher, contract: TestLocalLauncher, tmp_path: Path
) -> None:
    body = (
        "import subprocess\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"{RUN_DIR}.joinpath('child').write_text(str(p.pid))"
    )
    spec = contract.spec(tmp_path, "j", body)
    assert contract.run_jobs(two_slots, [spec])["j"].state is JobState.COMPLETED
    child = int((spec.paths.run_dir / "child").read_text())
    try:
        assert wait_gone(child)
    finally:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)


def test_close_kills_jobs_that_still_run(contract: TestLocalLauncher, tmp_path: Path) -> None:
    body = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + STARTED + "time.sleep(600)"
    spec = contract.spec(tmp_path, "j", body)
    launcher = LocalLauncher(n_parallel_jobs=1, cancel_grace_s=0.2)
    launcher.submit([spec])
    contract.wait_for_file(spec.paths.run_dir / "started")
    pid = int((spec.paths.run_dir / "started").read_text())
    start = time.monotonic()
    launcher.close()
    assert time.monotonic() - start < 10.0
    assert not is_running(pid)


def test_missing_executable_raises_launch_error(
    two_slots: LocalLauncher, contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", f"{RUN_DIR}.joinpath('pid').write_text(str(os.getpid()))")
    bad = JobSpec("bad", (str(tmp_path / "missing"),), tmp_path, JobPaths(tmp_path / "jobs" / "j"))
    with pytest.raises(LaunchError, match="could not start job bad"):
        two_slots.submit([bad])
    assert two_slots.capacity() == 2
    native = two_slots.submit([spec, JobSpec("bad2", bad.argv, bad.cwd, bad.paths)])
    assert native == {"j": ""}  # bad2 is refused, and reported by poll
    ended = contract.poll_until_ended(two_slots, {"j", "bad2"}, {"j", "bad2"})
    assert ended["j"].native_id == (spec.paths.run_dir / "pid").read_text()
    assert ended["j"].state is JobState.COMPLETED
    assert ended["bad2"].state is JobState.FAILED
    assert "could not start" in ended["bad2"].reason
    assert "missing" in spec.paths.stderr.read_text()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x00\x01 not a program", id="exec-format"),
        pytest.param(b"#!/no/such/interpreter\n", id="missing-interpreter"),
    ],
)
def test_a_job_its_supervisor_cannot_start_is_reported_failed_by_poll(
    two_slots: LocalLauncher, contract: TestLocalLauncher, tmp_path: Path, content: bytes
) -> None:
    """Submitting does not wait for the supervisor: what only it finds out (here: the
    kernel refuses the executable) comes as a FAILED status from poll, not an error."""
    program = tmp_path / "program"
    program.write_bytes(content)
    program.chmod(0o755)
    good = contract.spec(tmp_path, "good", "pass")
    bad = dataclasses.replace(contract.spec(tmp_path, "bad", "pass"), argv=(str(program),))
    assert two_slots.submit([bad]) == {"bad": ""}
    assert two_slots.submit([good]) == {"good": ""}
    ended = contract.poll_until_ended(two_slots, {"bad", "good"}, {"bad", "good"})
    assert ended["bad"].state is JobState.FAILED
    assert ended["bad"].reason.startswith("could not start: [Errno")
    assert str(program) in bad.paths.stderr.read_text()
    assert ended["good"].state is JobState.COMPLETED
    assert two_slots.capacity() == 2  # the failed start holds no slot
    contract.assert_quiet(two_slots, ended)


def test_submit_refuses_an_active_job_id(
    two_slots: LocalLauncher, contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", "time.sleep(0.3)")
    assert two_slots.submit([]) == {}
    two_slots.submit([spec])
    with pytest.raises(LaunchError, match="'j' is already active"):
        two_slots.submit([spec])
    ended = contract.poll_until_ended(two_slots, {"j"}, {"j"})
    assert ended["j"].state is JobState.COMPLETED
    contract.assert_quiet(two_slots, ended)


@pytest.mark.parametrize("n", [pytest.param(0, id="zero"), pytest.param(-2, id="negative")])
def test_bad_parallelism_is_a_config_error(n: int) -> None:
    with pytest.raises(ConfigError, match=r"local\.n_parallel_jobs: must be at least 1.*got"):
        LocalLauncher(n_parallel_jobs=n)


def test_registry_names_the_local_launcher() -> None:
    assert "local" in available()
    assert load("local") is LocalLauncher
    with pytest.raises(ConfigError, match="valid launchers: htcondor, local, sge, slurm"):
        load("nope")


# -- processes of an earlier driver --------------------------------------------------------
ORPHAN = """\
import subprocess, sys, time
p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
print(p.pid, flush=True)
time.sleep(600)
"""


def start_orphan(tmp_path: Path, env: dict[str, str]) -> tuple[int, int]:
    """Start a job (and its child) the way a driver that died since would have.

    Returns the job's pid and its child's pid; neither is our child.
    """
    starter = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', sys.argv[1]], start_new_session=True,\n"
        "                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, p.stdout.readline().decode().strip(), flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", starter, ORPHAN],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    return int(out[0]), int(out[1])


def orphan_spec(tmp_path: Path) -> JobSpec:
    run_dir = tmp_path / "results" / "jobs" / "0" / "run_0.0-0"
    run_dir.mkdir(parents=True)
    env = {"HPOPTIM_JOB_ID": "0_0.0-0", "HPOPTIM_RUN_DIR": str(run_dir)}
    return JobSpec("0_0.0-0", (sys.executable, "-c", "pass"), tmp_path, JobPaths(run_dir), env)


@pytest.mark.parametrize(
    "give_pid", [pytest.param(True, id="pid"), pytest.param(False, id="no-pid")]
)
def test_reattach_kills_the_job_of_an_earlier_driver(
    two_slots: LocalLauncher, tmp_path: Path, give_pid: bool
) -> None:
    spec = orphan_spec(tmp_path)
    pid, child = start_orphan(tmp_path, dict(spec.env))
    assert is_running(pid)
    assert is_running(child)
    assert two_slots.reattach(spec, str(pid) if give_pid else "") is False
    assert not is_running(pid)
    assert wait_gone(child)
    assert two_slots.poll(0.05) == []


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no-marker"),
        pytest.param(
            {"HPOPTIM_JOB_ID": "0_0.0-0", "HPOPTIM_RUN_DIR": "/elsewhere"}, id="other-run"
        ),
        pytest.param({"HPOPTIM_JOB_ID": "1_0.0-0"}, id="other-job"),
    ],
)
def test_reattach_never_kills_an_unrelated_process(
    two_slots: LocalLauncher, tmp_path: Path, env: dict[str, str]
) -> None:
    spec = orphan_spec(tmp_path)
    if "HPOPTIM_JOB_ID" in env and "HPOPTIM_RUN_DIR" not in env:
        env = {**env, "HPOPTIM_RUN_DIR": spec.env["HPOPTIM_RUN_DIR"]}
    pid, child = start_orphan(tmp_path, env)
    try:
        assert two_slots.reattach(spec, str(pid)) is False
        time.sleep(0.1)
        assert is_running(pid)
        assert is_running(child)
    finally:
        for p in (pid, child):
            os.kill(p, signal.SIGKILL)


# -- a driver killed with SIGKILL ----------------------------------------------------------------
DRIVER = """\
import json, sys, time
from pathlib import Path
from hpoptim.jobspec import JobPaths, JobResources, JobSpec
from hpoptim.launchers import node
from hpoptim.launchers.local import LocalLauncher
specs = [
    JobSpec(j["id"], tuple(j["argv"]), Path(j["dir"]), JobPaths(Path(j["dir"])), j["env"],
            JobResources(time_limit_min=j["timeout_min"], signal_lead_s=j["lead_s"]))
    for j in json.loads(sys.argv[1])
]
launcher = LocalLauncher(n_parallel_jobs=len(specs))
print(json.dumps(launcher.submit(specs)), flush=True)
time.sleep(600)
"""


def run_killed_driver(specs: list[JobSpec]) -> dict[str, str]:
    """Submit ``specs`` from a driver process, SIGKILL it, return the native ids."""
    jobs = [
        {
            "id": s.job_id,
            "argv": s.argv,
            "dir": str(s.paths.run_dir),
            "env": dict(s.env),
            "timeout_min": s.resources.time_limit_min,
            "lead_s": s.resources.signal_lead_s,
        }
        for s in specs
    ]
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(jobs)], env=env, stdout=subprocess.PIPE
    )
    assert driver.stdout is not None
    try:
        native: dict[str, str] = json.loads(driver.stdout.readline())
        for spec in specs:  # the jobs run: now the driver dies
            TestLocalLauncher().wait_for_file(spec.paths.run_dir / "started")
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()
    return native


def wait_for_exit_file(spec: JobSpec, timeout_s: float = 30.0) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout_s
    while (record := read_exit_file(spec.paths.run_dir)) is None:
        assert time.monotonic() < deadline, f"no exit status recorded for {spec.job_id}"
        time.sleep(0.02)
    return record


def test_jobs_of_a_killed_driver_are_supervised_and_adopted(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    go = f"while not {RUN_DIR}.joinpath('go').exists(): time.sleep(0.01)\n"
    trap = f"signal.signal(signal.SIGTERM, lambda *_: {RUN_DIR}.joinpath('term').touch())\n"
    specs = [
        contract.spec(tmp_path, "ends", COUNT_START + STARTED + go + "sys.exit(3)"),
        contract.spec(
            tmp_path, "hangs", trap + COUNT_START + STARTED + "time.sleep(600)", timeout_min=0.05
        ),
        contract.spec(tmp_path, "runs", COUNT_START + STARTED + go),
    ]
    ends, hangs, runs = specs
    native = run_killed_driver(specs)
    who = {s.job_id: read_process_file(s.paths.run_dir) for s in specs}
    assert all(w is not None and w.job.is_alive() for w in who.values())
    (ends.paths.run_dir / "go").touch()
    assert wait_for_exit_file(ends) == (3, False)  # recorded with no driver
    assert wait_for_exit_file(hangs) == (128 + signal.SIGKILL, True)  # the limit still holds
    assert (hangs.paths.run_dir / "term").exists()
    assert is_running(int((runs.paths.run_dir / "started").read_text()))
    assert set(native.values()) == {""}  # submit waited for no pid: the run dirs tell
    with LocalLauncher(n_parallel_jobs=3) as later:
        assert all(later.reattach(s, native[s.job_id]) for s in specs)
        assert later.capacity() == 2  # the followed job holds a slot
        (runs.paths.run_dir / "go").touch()
        ended = contract.poll_until_ended(later, {"ends", "hangs", "runs"}, set(native))
        contract.assert_quiet(later, ended)
    assert {k: s.state for k, s in ended.items()} == {
        "ends": JobState.RESUME,
        "hangs": JobState.TIMEOUT,
        "runs": JobState.COMPLETED,
    }
    assert ended["hangs"].signal == signal.SIGKILL
    for spec in specs:
        assert len((spec.paths.run_dir / "starts").read_text().split()) == 1
    supervisor = who["runs"]
    assert supervisor is not None
    assert wait_gone(supervisor.supervisor.pid)  # nothing is left running


def test_a_supervisor_passes_signals_to_its_jobs(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    body = (
        f"signal.signal(signal.SIGTERM, lambda *_: ({RUN_DIR}.joinpath('term').touch(), "
        "os._exit(7)))\n" + STARTED + "time.sleep(600)"
    )
    spec = contract.spec(tmp_path, "j", body)
    with LocalLauncher(n_parallel_jobs=1) as launcher:
        launcher.submit([spec])
        contract.wait_for_file(spec.paths.run_dir / "started")
        who = read_process_file(spec.paths.run_dir)
        assert who is not None
        os.kill(who.supervisor.pid, signal.SIGTERM)
        ended = contract.poll_until_ended(launcher, {"j"}, {"j"})
    assert (ended["j"].state, ended["j"].exit_code) == (JobState.FAILED, 7)
    assert (spec.paths.run_dir / "term").exists()
    assert read_exit_file(spec.paths.run_dir) == (7, False)


def test_reattach_never_takes_a_recycled_pid_for_the_job(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", "pass")
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        stat = Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        # the pids are the same, the start times are not: processes that came later
        record = f"{other.pid} {int(stat) - 1} {other.pid} {int(stat) - 2} {boot}\n"
        (spec.paths.run_dir / PROCESS_FILE_NAME).write_text(record)
        with LocalLauncher(n_parallel_jobs=1) as later:
            assert later.reattach(spec, str(other.pid)) is False
            assert later.capacity() == 1
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_job_whose_supervisor_died_is_killed_and_restarted(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", STARTED + "time.sleep(600)")
    native = run_killed_driver([spec])
    who = read_process_file(spec.paths.run_dir)
    assert who is not None
    os.kill(who.supervisor.pid, signal.SIGKILL)
    assert wait_gone(who.supervisor.pid)
    with LocalLauncher(n_parallel_jobs=1) as later:
        assert later.reattach(spec, native["j"]) is False  # nobody would record its end
        assert wait_gone(who.job.pid)
        assert later.poll(0.05) == []
    assert not (spec.paths.run_dir / EXIT_FILE_NAME).exists()


def test_a_followed_job_whose_supervisor_dies_is_lost_and_killed(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", STARTED + "time.sleep(600)")
    native = run_killed_driver([spec])
    who = read_process_file(spec.paths.run_dir)
    assert who is not None
    with LocalLauncher(n_parallel_jobs=1) as later:
        assert later.reattach(spec, native["j"]) is True
        os.kill(who.supervisor.pid, signal.SIGKILL)
        ended = contract.poll_until_ended(later, {"j"}, {"j"})
        assert ended["j"].state is JobState.LOST
        assert "supervisor died" in ended["j"].reason
        assert wait_gone(who.job.pid)


def test_records_go_into_the_run_dir_even_after_it_was_moved(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    go = f"while not {RUN_DIR}.joinpath('go').exists(): time.sleep(0.01)\n"
    spec = contract.spec(tmp_path, "j", STARTED + go + "sys.exit(3)")
    with LocalLauncher(n_parallel_jobs=1) as launcher:
        launcher.submit([spec])
        contract.wait_for_file(spec.paths.run_dir / "started")
        launcher.detach()
    moved = tmp_path / "moved aside"
    spec.paths.run_dir.rename(moved)
    spec.paths.run_dir.mkdir()  # a new run's directory of the same name
    (spec.paths.run_dir / "go").touch()
    deadline = time.monotonic() + 30.0
    while read_exit_file(moved) is None:
        assert time.monotonic() < deadline, "no exit status recorded"
        time.sleep(0.02)
    assert read_exit_file(moved) == (3, False)
    assert read_process_file(moved) is not None
    assert sorted(p.name for p in spec.paths.run_dir.iterdir()) == ["go"]


def test_a_supervisor_starts_nothing_once_its_driver_died(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    """A start request still in the pipe when the driver died is not acted on."""
    spec = contract.spec(tmp_path, "j", STARTED)
    read_end, write_end = os.pipe()
    middle = (  # plays the driver: starts the supervisor on our pipe, then dies
        "import os, subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-S', '-I', sys.argv[1], str(os.getpid())],\n"
        "                     stdin=int(sys.argv[2]),\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,\n"
        "                     start_new_session=True,\n"
        "                     pass_fds=[int(sys.argv[2])])\n"
        "print(p.pid)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", middle, node.__file__, str(read_end)],
        capture_output=True,
        text=True,
        check=True,
        pass_fds=[read_end],
    ).stdout
    os.close(read_end)
    supervisor = int(out)
    request = {
        "op": "start",
        "job": "j",
        "argv": list(spec.argv),
        "cwd": str(spec.cwd),
        "env": {**os.environ, **spec.env},
        "stdout": str(spec.paths.stdout),
        "stderr": str(spec.paths.stderr),
        "run_dir": str(spec.paths.run_dir),
        "limit_s": None,
    }
    os.write(write_end, json.dumps(request).encode() + b"\n")
    os.close(write_end)
    assert wait_gone(supervisor)  # it read the request and the end of input, and left
    assert not (spec.paths.run_dir / "started").exists()
    assert not (spec.paths.run_dir / PROCESS_FILE_NAME).exists()


# -- containers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image_exists", "state"),
    [pytest.param(True, JobState.COMPLETED, id="image"), pytest.param(False, None, id="no-image")],
)
def test_container_jobs_run_through_the_runtime(
    two_slots: LocalLauncher,
    contract: TestLocalLauncher,
    tmp_path: Path,
    fake_container_runtime: FakeContainerRuntime,
    image_exists: bool,
    state: JobState | None,
) -> None:
    image = fake_container_runtime.image if image_exists else tmp_path / "missing.sif"
    body = f"{RUN_DIR}.joinpath('inside').write_text(os.environ.get('APPTAINER_CONTAINER', ''))"
    spec = contract.spec(tmp_path, "j", body)
    spec = dataclasses.replace(spec, container=ContainerOptions(image=image))
    if state is None:
        with pytest.raises(LaunchError, match="does not exist"):
            two_slots.submit([spec])
        assert fake_container_runtime.calls() == []
        return
    assert contract.run_jobs(two_slots, [spec])["j"].state is state
    assert (spec.paths.run_dir / "inside").read_text()  # set by the runtime inside the image
    (call,) = fake_container_runtime.calls()
    assert call["argv"][1] == "exec"
    # the driver's interpreter is not in the image: the image's python3 runs the job
    assert call["argv"][-len(spec.argv) :] == ["python3", *spec.argv[1:]]


def test_stop_leftovers_stops_the_jobs_a_dead_drivers_supervisor_still_runs(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    """``run --overwrite``: the old run's jobs must not write into the new run."""
    run = tmp_path / "run"
    ended = contract.spec(run, "ended", "pass")
    running = contract.spec(run, "running", STARTED + "time.sleep(600)\n")
    with LocalLauncher(n_parallel_jobs=2) as launcher:
        launcher.submit([ended, running])
        contract.wait_for_file(running.paths.run_dir / "started")
        deadline = time.monotonic() + 30.0
        while read_exit_file(ended.paths.run_dir) is None:
            assert time.monotonic() < deadline, "the short job recorded no end"
            time.sleep(0.02)
        launcher.detach()  # as a driver that dies: the supervisor goes on
    record = read_process_file(running.paths.run_dir)
    assert record is not None
    assert record.job.is_alive()

    assert LocalLauncher.stop_leftovers(run / "local") == 1
    assert not record.job.is_alive()
    assert LocalLauncher.stop_leftovers(run / "local") == 0  # nothing left to stop


@pytest.mark.parametrize(
    ("left", "adopted"),
    [
        pytest.param("5 0\n", True, id="whole-record-in-temporary"),
        pytest.param("5 0", False, id="record-cut-short"),
        pytest.param("", False, id="temporary-created-empty"),
    ],
)
def test_a_supervisor_killed_before_renaming_the_exit_record(
    contract: TestLocalLauncher, tmp_path: Path, left: str, adopted: bool
) -> None:
    """A SIGKILL between writing slurm_exit_status.tmp and renaming it loses no result
    that was written whole, and never takes a partial record for one."""
    go = f"while not {RUN_DIR}.joinpath('go').exists(): time.sleep(0.01)\n"
    spec = contract.spec(tmp_path, "j", STARTED + go + "sys.exit(5)")
    native = run_killed_driver([spec])
    who = read_process_file(spec.paths.run_dir)
    assert who is not None
    (spec.paths.run_dir / "go").touch()
    assert wait_for_exit_file(spec) == (5, False)
    assert wait_gone(who.supervisor.pid)  # its driver gone and its job ended, it exits
    # what a SIGKILL of the supervisor at each point of its write would have left
    (spec.paths.run_dir / EXIT_FILE_NAME).unlink()
    (spec.paths.run_dir / node.EXIT_TEMP_NAME).write_text(left)
    with LocalLauncher(n_parallel_jobs=1) as later:
        assert later.reattach(spec, native["j"]) is adopted  # False: the loop runs it again
        if adopted:
            ended = contract.poll_until_ended(later, {"j"}, {"j"})
            assert (ended["j"].state, ended["j"].exit_code) == (JobState.FAILED, 5)


def test_a_new_start_in_a_run_directory_removes_old_exit_temporaries(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    spec = contract.spec(tmp_path, "j", STARTED + "time.sleep(600)")
    for name in node.TEMPORARY_NAMES:  # an earlier start's, written whole
        (spec.paths.run_dir / name).write_text("0 0\n")
    with LocalLauncher(n_parallel_jobs=1) as launcher:
        launcher.submit([spec])
        contract.wait_for_file(spec.paths.run_dir / "started")
        assert read_exit_file(spec.paths.run_dir) is None  # it runs: no status yet
        assert not any((spec.paths.run_dir / n).exists() for n in node.TEMPORARY_NAMES)


# A grandchild that leaves the job's session (setsid) and loses its parent, as a daemon does.
DAEMON = (
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    f"        {RUN_DIR}.joinpath('daemon.tmp').write_text(str(os.getpid()))\n"
    f"        {RUN_DIR}.joinpath('daemon.tmp').rename({RUN_DIR}.joinpath('daemon'))\n"
    "        time.sleep(600)\n"
    "    os._exit(0)\n"
    "os.wait()\n"
    f"while not {RUN_DIR}.joinpath('daemon').exists(): time.sleep(0.01)\n"
)


@contextlib.contextmanager
def daemons_killed_afterwards(*specs: JobSpec) -> Iterator[None]:
    try:
        yield
    finally:
        for spec in specs:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((spec.paths.run_dir / "daemon").read_text()), signal.SIGKILL)


def _daemon(spec: JobSpec) -> int:
    pid = int((spec.paths.run_dir / "daemon").read_text())
    session = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    assert session != int((spec.paths.run_dir / "started").read_text())  # not the job's
    return pid


@pytest.mark.parametrize(
    ("how", "state"),
    [
        pytest.param("ends", JobState.COMPLETED, id="job-ends"),
        pytest.param("limit", JobState.TIMEOUT, id="time-limit"),
        pytest.param("cancel", JobState.CANCELLED, id="cancel"),
    ],
)
def test_descendants_that_left_the_jobs_session_end_with_it(
    contract: TestLocalLauncher, tmp_path: Path, how: str, state: JobState
) -> None:
    # the job that ends waits until the test saw its daemon: it could be gone already
    go = f"while not {RUN_DIR}.joinpath('go').exists(): time.sleep(0.01)\n"
    tail = go if how == "ends" else "time.sleep(600)"
    timeout = 0.03 if how == "limit" else None  # 1.8 s
    spec = contract.spec(tmp_path, "j", DAEMON + STARTED + tail, timeout_min=timeout)
    with daemons_killed_afterwards(spec), LocalLauncher(n_parallel_jobs=1) as launcher:
        launcher.submit([spec])
        contract.wait_for_file(spec.paths.run_dir / "started")
        daemon = _daemon(spec)
        assert is_running(daemon)
        (spec.paths.run_dir / "go").touch()
        if how == "cancel":
            launcher.cancel(["j"])
            ended = {s.job_id: s for s in launcher.poll(0.0)}
        else:
            ended = contract.poll_until_ended(launcher, {"j"}, {"j"})
        assert ended["j"].state is state
        assert not is_running(daemon)  # gone before the job's end was reported


def test_a_jobs_escaped_descendants_are_told_from_another_jobs(
    contract: TestLocalLauncher, tmp_path: Path
) -> None:
    go = f"while not {RUN_DIR}.joinpath('go').exists(): time.sleep(0.01)\n"
    first, second = (contract.spec(tmp_path, n, DAEMON + STARTED + go) for n in ("a", "b"))
    with daemons_killed_afterwards(first, second), LocalLauncher(n_parallel_jobs=2) as launcher:
        launcher.submit([first, second])
        for spec in (first, second):
            contract.wait_for_file(spec.paths.run_dir / "started")
        daemons = [_daemon(first), _daemon(second)]
        (first.paths.run_dir / "go").touch()
        contract.poll_until_ended(launcher, {"a"}, {"a", "b"})
        assert [is_running(pid) for pid in daemons] == [False, True]
        (second.paths.run_dir / "go").touch()
        contract.poll_until_ended(launcher, {"b"}, {"b"})
        assert not is_running(daemons[1])
