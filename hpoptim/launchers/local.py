"""Run jobs as subprocesses of the driver, honouring Slurm's contract.

Each job runs in its own session (so its whole process group can be signalled),
with stdout/stderr appended to the files of its run directory. A waiter thread
per job blocks until the process exits and queues its terminal state, so
:meth:`LocalLauncher.poll` wakes the moment a job ends. A job with a wall time
gets a watchdog thread that sends ``spec.timeout_signal`` ``spec.signal_lead_s``
before the limit and SIGKILL at it, as Slurm would.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpoptim.errors import ConfigError, LaunchError
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher, check_settings_keys
from hpoptim.log import get_logger

if TYPE_CHECKING:
    from typing import Self

logger = get_logger(__name__)

JOB_ID_VAR = "HPOPTIM_JOB_ID"
RUN_DIR_VAR = "HPOPTIM_RUN_DIR"
_PROC = "/proc"


class _Job:
    """A started job: its process and what the driver did to it."""

    def __init__(self, spec: JobSpec, proc: subprocess.Popen[bytes]) -> None:
        self.spec = spec
        self.proc = proc
        self.reaped = False  # once True the group id may be reused: never signal again
        self.timed_out = False  # the timeout signal was sent
        self.cancelled = False
        self.ended = threading.Event()

    @property
    def limit_s(self) -> float | None:
        minutes = self.spec.resources.timeout_min
        return None if minutes is None else minutes * 60.0


class LocalLauncher(BaseLauncher):
    """Runs jobs on this machine, at most ``n_parallel_jobs`` at a time.

    Exit code 0 is ``COMPLETED``, 3 ``RESUME``, any other code or a signal
    ``FAILED``. With ``spec.resources.timeout_min`` set, the job's process group
    gets ``spec.timeout_signal`` ``spec.signal_lead_s`` seconds before the limit
    and SIGKILL at it; unless it then exits with 0 or 3 it ends ``TIMEOUT``.
    Jobs submitted beyond the free slots wait in a queue and start as slots free
    up. :meth:`close` kills jobs that still run.

    Args:
        n_parallel_jobs: How many jobs run at once (``None``: the number of CPUs).
        cancel_grace_s: Seconds between SIGTERM and SIGKILL when cancelling.
    """

    name = "local"

    def __init__(self, n_parallel_jobs: int | None = None, *, cancel_grace_s: float = 5.0) -> None:
        n = n_parallel_jobs if n_parallel_jobs is not None else (os.cpu_count() or 1)
        if n < 1:
            raise ConfigError.single(
                "local.n_parallel_jobs", f"must be at least 1 (or null for all CPUs), got {n}"
            )
        self.n_parallel_jobs = n
        self.cancel_grace_s = cancel_grace_s
        self._cond = threading.Condition()
        self._running: dict[str, _Job] = {}
        self._queued: deque[JobSpec] = deque()
        self._events: list[JobStatus] = []
        self._n_threads = 0  # waiter and watchdog threads still running
        self._finalizer = weakref.finalize(self, _kill_groups, self._running)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, work_dir: Path, name: str) -> Self:
        """Build the launcher from the ``local`` config section (``n_parallel_jobs``).

        ``work_dir`` and ``name`` are not used: local jobs need no files of the
        launcher's own, and nothing on this machine is named after the run.

        Raises:
            ConfigError: An unknown key, or ``n_parallel_jobs`` below 1.
        """
        check_settings_keys(cls.name, settings, ("n_parallel_jobs",))
        return cls(n_parallel_jobs=settings.get("n_parallel_jobs"))

    # -- BaseLauncher --------------------------------------------------------------
    def capacity(self) -> int:
        """Free slots: ``n_parallel_jobs`` minus running and queued jobs."""
        with self._cond:
            return max(0, self.n_parallel_jobs - len(self._running) - len(self._queued))

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        """Start ``specs`` (queue those beyond the free slots); return ``{job_id: pid}``.

        A queued job's native id is ``""``. A job that cannot be started (missing
        executable or directory) is reported ``FAILED`` by :meth:`poll`.

        Raises:
            LaunchError: a job id is already active, or no job could be started.
        """
        with self._cond:
            seen = {*self._running, *(s.job_id for s in self._queued)}
            for spec in specs:
                if spec.job_id in seen:
                    raise LaunchError(
                        f"job id {spec.job_id!r} is already active; ids must be unique"
                    )
                seen.add(spec.job_id)
            self._queued.extend(specs)
            started, errors = self._start_queued()
            if specs and all(s.job_id in errors for s in specs):
                ours = {s.job_id for s in specs}
                self._events = [e for e in self._events if e.job_id not in ours]
                spec = specs[0]
                raise LaunchError(
                    f"could not start job {spec.job_id}: {errors[spec.job_id]}", argv=spec.argv
                )
        native = {s.job_id: "" for s in specs if s.job_id not in errors}
        native.update(started)
        return native

    def poll(self, timeout_s: float) -> list[JobStatus]:
        """Return the jobs that ended since the last call, waiting up to ``timeout_s``."""
        with self._cond:
            self._start_queued()
            if not self._events:
                self._cond.wait_for(lambda: bool(self._events), timeout=max(0.0, timeout_s))
            events, self._events = self._events, []
        return events

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        """SIGTERM the jobs' process groups, SIGKILL them after ``cancel_grace_s``.

        Returns once the processes are gone; unknown or finished jobs are ignored.
        """
        wanted = None if job_ids is None else set(job_ids)
        with self._cond:
            for spec in [s for s in self._queued if wanted is None or s.job_id in wanted]:
                self._queued.remove(spec)
                self._events.append(
                    JobStatus(
                        spec.job_id,
                        JobState.CANCELLED,
                        "",
                        reason="cancelled before it started",
                        time=time.time(),
                    )
                )
            jobs = [j for k, j in self._running.items() if wanted is None or k in wanted]
            for job in jobs:
                job.cancelled = True
                self._signal(job, signal.SIGTERM)
            if not self._cond.wait_for(lambda: all(j.reaped for j in jobs), self.cancel_grace_s):
                for job in jobs:
                    self._signal(job, signal.SIGKILL)
                if not self._cond.wait_for(lambda: all(j.reaped for j in jobs), 30.0):
                    left = [j.spec.job_id for j in jobs if not j.reaped]
                    raise LaunchError(f"jobs {left} did not die after SIGKILL")
            self._cond.notify_all()

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        """Make sure a job started by an earlier driver no longer runs; return False.

        The earlier driver's processes are not our children, so their exit codes
        are lost: the job is killed and the loop starts it afresh. Processes are
        recognised by ``HPOPTIM_JOB_ID`` and ``HPOPTIM_RUN_DIR`` in their initial
        environment, so a process that merely reused the pid is never touched.

        Raises:
            LaunchError: the old processes could not be stopped.
        """
        marker = _marker(spec)
        if not os.path.isdir(_PROC):
            logger.warning("cannot look for old processes of job %s: no %s", spec.job_id, _PROC)
            return False
        hint = [int(native_id)] if native_id.isdigit() else []
        pids = [p for p in hint if _environ_matches(p, marker)] or _find_processes(marker)
        if not pids:
            return False
        logger.info("killing processes %s of job %s left by an earlier driver", pids, spec.job_id)
        deadline = time.monotonic() + 10.0
        while pids:
            for pid in pids:
                _kill_verified(pid, marker)
            if time.monotonic() > deadline:
                raise LaunchError(f"processes {pids} of job {spec.job_id} do not die")
            time.sleep(0.01)
            pids = _find_processes(marker)
        return False

    def close(self) -> None:
        """Kill jobs that still run and wait for the helper threads to end."""
        with self._cond:
            running = list(self._running)
            self._queued.clear()
        if running:
            logger.warning("closing the local launcher: killing %d running job(s)", len(running))
            self.cancel(running)
        with self._cond:
            self._cond.wait_for(lambda: self._n_threads == 0, timeout=5.0)

    # -- starting ------------------------------------------------------------------
    def _start_queued(self) -> tuple[dict[str, str], dict[str, str]]:
        """Start queued jobs while slots are free (lock held); return pids and errors."""
        started: dict[str, str] = {}
        errors: dict[str, str] = {}
        while self._queued and len(self._running) < self.n_parallel_jobs:
            spec = self._queued.popleft()
            try:
                job = self._start(spec)
            except (OSError, LaunchError) as exc:
                errors[spec.job_id] = str(exc)
                _note_start_failure(spec, exc)
                self._events.append(
                    JobStatus(
                        spec.job_id,
                        JobState.FAILED,
                        "",
                        reason=f"could not start: {exc}",
                        time=time.time(),
                    )
                )
                continue
            started[spec.job_id] = str(job.proc.pid)
        return started, errors

    def _start(self, spec: JobSpec) -> _Job:
        env = {**os.environ, JOB_ID_VAR: spec.job_id, RUN_DIR_VAR: str(spec.paths.run_dir)}
        env.update(spec.env)
        with open(spec.paths.stdout, "ab") as out, open(spec.paths.stderr, "ab") as err:
            proc = subprocess.Popen(
                _argv(spec),
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        job = _Job(spec, proc)
        self._running[spec.job_id] = job
        self._spawn(self._wait, job)
        if job.limit_s is not None:
            self._spawn(self._watch, job)
        return job

    def _spawn(self, target: Callable[[_Job], None], job: _Job) -> None:
        # A bare thread: threading.Thread.start() waits for the thread to run, which
        # costs about a millisecond per job on a busy machine. Like a daemon thread
        # it never holds up the driver's exit.
        self._n_threads += 1
        _thread.start_new_thread(self._run_thread, (target, job))

    def _run_thread(self, target: Callable[[_Job], None], job: _Job) -> None:
        try:
            target(job)
        except BaseException:
            logger.exception("internal error while following job %s", job.spec.job_id)
        finally:
            with self._cond:
                self._n_threads -= 1
                self._cond.notify_all()

    # -- following -----------------------------------------------------------------
    def _wait(self, job: _Job) -> None:
        pid = job.proc.pid
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        with self._cond:
            # The unreaped leader keeps its group id reserved: kill what it left behind.
            self._signal(job, signal.SIGKILL)
            status = JobStatus(job.spec.job_id, JobState.LOST, str(pid), time=time.time())
            try:
                status = _final_status(job, job.proc.wait())
            finally:  # whatever happens, the job is reported once
                job.reaped = True
                job.ended.set()
                del self._running[job.spec.job_id]
                self._events.append(status)
                self._cond.notify_all()

    def _watch(self, job: _Job) -> None:
        limit = job.limit_s
        assert limit is not None  # only started for jobs with a wall time
        start = time.monotonic()
        signal_at = max(0.0, limit - job.spec.signal_lead_s)
        if job.ended.wait(signal_at):
            return
        with self._cond:
            if not job.reaped:
                job.timed_out = True
                self._signal(job, job.spec.timeout_signal)
        if job.ended.wait(max(0.0, start + limit - time.monotonic())):
            return
        with self._cond:
            job.timed_out = True
            self._signal(job, signal.SIGKILL)

    @staticmethod
    def _signal(job: _Job, signum: int) -> None:
        """Signal the job's process group (lock held, so the leader is not reaped meanwhile)."""
        if not job.reaped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.proc.pid, signum)


def _argv(spec: JobSpec) -> list[str]:
    if spec.container is None:
        return list(spec.argv)
    from hpoptim.launchers.container import container_argv

    return container_argv(spec)


def _final_status(job: _Job, code: int) -> JobStatus:
    exit_code, sig = (code, None) if code >= 0 else (None, -code)
    state = JobState.from_exit_code(code) if code >= 0 else JobState.FAILED
    reason = ""
    if job.cancelled:
        state, reason = JobState.CANCELLED, "cancelled"
    elif job.timed_out and state not in (JobState.COMPLETED, JobState.RESUME):
        state = JobState.TIMEOUT
        reason = f"timeout: wall time limit of {job.limit_s:g} s reached"
    native = str(job.proc.pid)
    return JobStatus(job.spec.job_id, state, native, exit_code, sig, reason, time.time())


def _note_start_failure(spec: JobSpec, exc: BaseException) -> None:
    with contextlib.suppress(OSError), open(spec.paths.stderr, "a", encoding="utf-8") as fh:
        fh.write(f"hpoptim: could not start {list(spec.argv)}: {exc}\n")


def _kill_groups(running: Mapping[str, _Job]) -> None:
    """Kill jobs left running when the driver exits without closing the launcher."""
    for job in list(running.values()):
        LocalLauncher._signal(job, signal.SIGKILL)


# -- processes of earlier drivers -------------------------------------------------
def _marker(spec: JobSpec) -> tuple[bytes, bytes]:
    job_id = spec.env.get(JOB_ID_VAR, spec.job_id)
    run_dir = spec.env.get(RUN_DIR_VAR, str(spec.paths.run_dir))
    return f"{JOB_ID_VAR}={job_id}".encode(), f"{RUN_DIR_VAR}={run_dir}".encode()


def _environ_matches(pid: int, marker: tuple[bytes, bytes]) -> bool:
    """True if process ``pid`` lives (not a zombie) and its environment has ``marker``."""
    if pid == os.getpid():
        return False
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as fh:
            entries = set(fh.read().split(b"\0"))
    except OSError:
        return False
    return all(m in entries for m in marker)  # a zombie's environ reads empty


def _find_processes(marker: tuple[bytes, bytes]) -> list[int]:
    return [int(d) for d in _pids() if _environ_matches(int(d), marker)]


def _pids() -> Iterable[str]:
    try:
        return [d for d in os.listdir(_PROC) if d.isdigit()]
    except OSError:
        return []


def _kill_verified(pid: int, marker: tuple[bytes, bytes]) -> None:
    """SIGKILL ``pid`` and its process group if it is still the process we look for."""
    try:
        fd = os.pidfd_open(pid)  # pins the process: the kill below cannot hit a reused pid
    except ProcessLookupError:
        return
    except (OSError, AttributeError):
        fd = -1
    try:
        if not _environ_matches(pid, marker):
            return
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            if pgid == pid or _environ_matches(pgid, marker):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            if fd >= 0:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    finally:
        if fd >= 0:
            os.close(fd)
