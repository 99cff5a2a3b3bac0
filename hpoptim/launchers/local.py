"""Run jobs on this machine under a supervisor that outlives the driver.

The launcher starts one supervisor process (:mod:`hpoptim.launchers.node`, in a
session of its own) and asks it over a pipe to start jobs. The supervisor runs
each job in its own session, with stdout/stderr appended to the files of its run
directory; it sends the job ``spec.resources.timeout_signal``
``spec.resources.signal_lead_s`` before the wall time and SIGKILL at it, as Slurm
would, and records each job's exit status in the run directory the way the Slurm
batch script does. When the driver
dies, the supervisor keeps following its jobs until the last one ended, so a
resumed driver (:meth:`LocalLauncher.reattach`) adopts what they finished and
follows what still runs instead of running it again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from hpoptim.errors import ConfigError, LaunchError
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher, job_argv
from hpoptim.launchers.node import Supervised, read_exit_file, read_process_file, split_status
from hpoptim.launchers.supervision import (
    JOB_ID_VAR,
    RUN_DIR_VAR,
    SupervisorConnection,
    kill_leftovers,
    signal_group,
    stop_supervised_jobs,
    wait_for_record,
    wait_until_gone,
)
from hpoptim.log import get_logger
from hpoptim.sections import Section

if TYPE_CHECKING:
    from typing import Self

logger = get_logger(__name__)

__all__ = ["JOB_ID_VAR", "RUN_DIR_VAR", "LocalLauncher"]


class _Job:
    """A job this launcher follows, and what the driver did to it."""

    def __init__(self, spec: JobSpec, conn: SupervisorConnection | None = None) -> None:
        self.spec = spec
        self.conn = conn  # None: followed after a restart, its supervisor is not ours
        self.followed: Supervised | None = None
        self.argv: Sequence[str] = ()
        self.pid: int | None = None
        self.error = ""  # why the supervisor could not start it
        self.cancelled = False
        self.done = False

    @property
    def limit_s(self) -> float | None:
        return self.spec.resources.time_limit_s

    def request(self) -> dict[str, Any]:
        """The supervisor's ``start`` request for this job.

        Its ``env`` holds only what the job adds to the environment its supervisor
        inherited from the driver: the whole environment is not copied and sent
        again for every job.
        """
        spec = self.spec
        env = {JOB_ID_VAR: spec.job_id, RUN_DIR_VAR: str(spec.paths.run_dir), **spec.env}
        return {
            "op": "start",
            "job": spec.job_id,
            "argv": list(self.argv),
            "cwd": str(spec.cwd),
            "env": env,
            "stdout": str(spec.paths.stdout),
            "stderr": str(spec.paths.stderr),
            "run_dir": str(spec.paths.run_dir),
            "limit_s": self.limit_s,
            "lead_s": spec.resources.signal_lead_s,
            "signal": spec.resources.signal,
        }


class LocalSettings(Section):
    """The local launcher (``local``)."""

    section_path: ClassVar[str] = "local"

    n_parallel_jobs: int | None = Field(
        None, ge=1, description="Jobs run at once on this machine; null: the number of CPUs."
    )


class LocalLauncher(BaseLauncher):
    """Runs jobs on this machine, at most ``n_parallel_jobs`` at a time.

    Exit code 0 is ``COMPLETED``, 3 ``RESUME``, any other code or a signal
    ``FAILED``. With ``spec.resources.time_limit_min`` set, the job's process group
    gets ``spec.resources.timeout_signal`` ``spec.resources.signal_lead_s`` seconds
    before the limit and SIGKILL at it; unless it then exits with 0 or 3 it ends
    ``TIMEOUT``.
    Jobs submitted beyond the free slots wait in a queue and start as slots free
    up. A job's environment is the driver's as it was when the launcher's supervisor
    started (at the first submit), with ``spec.env`` laid over it. :meth:`close`
    kills jobs that still run; a driver that dies without closing leaves them to
    their supervisor, which ends them at their time limit.

    Args:
        n_parallel_jobs: How many jobs run at once (``None``: the number of CPUs).
        cancel_grace_s: Seconds between SIGTERM and SIGKILL when cancelling.
    """

    name = "local"
    settings_model = LocalSettings

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
        self._events: list[JobStatus] = []  # news for poll(), in the order they came
        self._n_ended = 0  # how many of them are terminal
        self._conn: SupervisorConnection | None = None
        self._n_followers = 0
        self._finalizer = weakref.finalize(self, _kill_all, self._running)

    @classmethod
    def from_settings(cls, settings: Section, *, work_dir: Path, name: str) -> Self:
        """Build the launcher from the ``local`` section (a :class:`LocalSettings`).

        ``work_dir`` and ``name`` are not used: local jobs need no files of the
        launcher's own, and nothing on this machine is named after the run.
        """
        assert isinstance(settings, LocalSettings), "the registry passes the section's model"
        return cls(n_parallel_jobs=settings.n_parallel_jobs)

    @classmethod
    def stop_leftovers(cls, work_dir: Path) -> int:
        """Stop the jobs a supervisor of an earlier driver still runs in this run.

        The run's job directories are beside ``work_dir`` (``RUN/jobs``), and each job
        a supervisor started left its record there (``run --overwrite`` calls this
        before moving the old run aside, where those jobs would go on writing).
        """
        return stop_supervised_jobs(work_dir.parent / "jobs")

    # -- BaseLauncher --------------------------------------------------------------
    def capacity(self) -> int:
        """Free slots: ``n_parallel_jobs`` minus running (or followed) and queued jobs."""
        with self._cond:
            return max(0, self.n_parallel_jobs - len(self._running) - len(self._queued))

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        """Start ``specs`` (queue those beyond the free slots); return ``{job_id: ""}``.

        Submitting does not wait for the jobs' processes: a job's native id (its
        pid) is reported by :meth:`poll` once its supervisor started it, with a
        ``RUNNING`` status, and with its terminal status. A job that cannot be
        started is reported ``FAILED`` by :meth:`poll`, unless the driver already
        sees why (no such executable or working directory): such a job is refused
        here, and if no job of ``specs`` is left, :class:`LaunchError` is raised.

        Raises:
            LaunchError: a job id is already active, no job could be started, or
                the supervisor could not be started.
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
            jobs, errors = self._take_queued()
            if specs and all(s.job_id in errors for s in specs):
                ours = {s.job_id for s in specs}
                self._events = [e for e in self._events if e.job_id not in ours]
                self._n_ended = sum(1 for e in self._events if e.state.is_terminal)
                spec = specs[0]
                raise LaunchError(
                    f"could not start job {spec.job_id}: {errors[spec.job_id]}", argv=spec.argv
                )
        self._send_starts(jobs)
        return {s.job_id: "" for s in specs if s.job_id not in errors}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        """Return the state changes seen since the last call, waiting up to ``timeout_s``
        for a job to end.

        A job's start (``RUNNING``, with its pid as native id) is reported by the
        next call that returns, before the job's end; it does not end the wait.
        """
        with self._cond:
            jobs, _ = self._take_queued()
        self._send_starts(jobs)
        with self._cond:
            if not self._n_ended:
                self._cond.wait_for(lambda: self._n_ended > 0, timeout=max(0.0, timeout_s))
            events, self._events, self._n_ended = self._events, [], 0
        return events

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        """SIGTERM the jobs' process groups, SIGKILL them after ``cancel_grace_s``.

        Returns once the processes are gone; unknown or finished jobs are ignored.
        """
        wanted = None if job_ids is None else set(job_ids)
        with self._cond:
            for spec in [s for s in self._queued if wanted is None or s.job_id in wanted]:
                self._queued.remove(spec)
                self._report(
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
            self._cond.notify_all()
        if not jobs:
            return
        _signal_jobs(jobs, signal.SIGTERM)
        with self._cond:
            if self._cond.wait_for(lambda: all(j.done for j in jobs), self.cancel_grace_s):
                return
        _signal_jobs(jobs, signal.SIGKILL)
        with self._cond:
            if not self._cond.wait_for(lambda: all(j.done for j in jobs), 30.0):
                left = [j.spec.job_id for j in jobs if not j.done]
                raise LaunchError(f"jobs {left} did not die after SIGKILL")

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        """Adopt or follow a job started by an earlier driver.

        A job whose supervisor recorded its end is adopted: :meth:`poll` reports
        that end. A job that still runs under its supervisor is followed until it
        ends (its supervisor still enforces its time limit). Processes are told
        apart by pid, start time and boot id, so a process that merely reused the
        pid is never mistaken for the job. Anything else left of the job (a job
        whose supervisor is gone, so nobody would record its end) is killed, and
        False is returned: the loop starts the job afresh.

        Raises:
            LaunchError: the old processes could not be stopped.
        """
        run_dir = spec.paths.run_dir
        who = read_process_file(run_dir)
        if who is not None and read_exit_file(run_dir) is None:
            if who.job.is_alive() and who.supervisor.is_alive():
                self._follow(spec, who)
                return True
            if who.job.is_alive():  # nobody records its end or enforces its limit
                logger.info("killing job %s: its supervisor is gone", spec.job_id)
                signal_group(who.job, signal.SIGKILL)
            elif who.supervisor.is_alive():  # it ended; its supervisor is recording that
                wait_for_record(run_dir, who.supervisor)
        record = read_exit_file(run_dir)
        if record is not None:
            job = _Job(spec)
            native = str(who.job.pid) if who is not None else native_id
            with self._cond:
                self._report(_final_status(job, record, native))
                self._cond.notify_all()
            # the loop says what becomes of it (kept, or restarted if it was cancelled)
            logger.debug("adopting the result of job %s, which ended meanwhile", spec.job_id)
            return True
        kill_leftovers(spec, native_id)
        return False

    def close(self) -> None:
        """Kill jobs that still run, then let the supervisor exit."""
        with self._cond:
            running = list(self._running)
            self._queued.clear()
        if running:
            logger.warning("closing the local launcher: killing %d running job(s)", len(running))
            self.cancel(running)
        with self._cond:
            conn, self._conn = self._conn, None
            self._cond.wait_for(lambda: self._n_followers == 0, timeout=5.0)
        if conn is not None:
            conn.close()

    def detach(self) -> None:
        """Stop following jobs but leave them running, as a driver that dies would.

        Their supervisor ends them at their time limits and records their ends, so a
        later launcher can :meth:`reattach` to them; this launcher reports nothing
        more about them.
        """
        with self._cond:
            conn, self._conn = self._conn, None
            for job in self._running.values():
                job.done = True
            self._running.clear()
            self._queued.clear()
            self._events.clear()
            self._n_ended = 0
        if conn is not None:
            conn.close(wait=False)

    # -- starting ------------------------------------------------------------------
    def _take_queued(self) -> tuple[list[_Job], dict[str, str]]:
        """Move queued jobs to free slots (lock held); return them and refusals."""
        jobs: list[_Job] = []
        errors: dict[str, str] = {}
        while self._queued and len(self._running) < self.n_parallel_jobs:
            spec = self._queued.popleft()
            try:
                job = _Job(spec, None)
                job.argv = job_argv(spec)
                error = _start_problem(job.argv, spec)
                if not error:
                    job.conn = self._connection()
            except (OSError, LaunchError) as exc:
                error = str(exc)
            if error:
                errors[spec.job_id] = error
                self._not_started(spec, error)
                continue
            self._running[spec.job_id] = job
            jobs.append(job)
        return jobs, errors

    def _send_starts(self, jobs: Sequence[_Job]) -> None:
        by_conn: dict[SupervisorConnection, list[dict[str, Any]]] = {}
        for job in jobs:
            assert job.conn is not None  # set for every job this launcher starts
            by_conn.setdefault(job.conn, []).append(job.request())
        for conn, requests in by_conn.items():
            conn.send(requests)

    def _connection(self) -> SupervisorConnection:
        if self._conn is None or not self._conn.alive:
            self._conn = SupervisorConnection(self._on_message, self._on_supervisor_exit)
        return self._conn

    def _not_started(self, spec: JobSpec, error: str) -> None:
        _note_start_failure(spec, error)
        reason = f"could not start: {error}"
        self._report(JobStatus(spec.job_id, JobState.FAILED, "", reason=reason, time=time.time()))

    def _report(self, status: JobStatus) -> None:
        """Pass ``status`` on to :meth:`poll` (lock held)."""
        self._events.append(status)
        if status.state.is_terminal:
            self._n_ended += 1

    # -- news from the supervisor (reader thread) -----------------------------------------
    def _on_message(self, conn: SupervisorConnection, message: Mapping[str, Any]) -> None:
        with self._cond:
            job = self._running.get(str(message.get("job")))
            kind = message.get("e")
            if kind == "error":
                logger.error("local job supervisor: %s", message.get("message"))
            elif job is None or job.conn is not conn:
                pass  # a job this launcher detached from
            elif kind == "started":
                job.pid = int(message["pid"])
                self._report(
                    JobStatus(job.spec.job_id, JobState.RUNNING, str(job.pid), time=time.time())
                )
                return  # news that ends no wait: nobody needs waking
            elif kind == "not_started":
                job.error = str(message["error"])
                self._not_started(job.spec, job.error)
                self._finish(job, None)
            elif kind == "ended":
                record = (int(message["status"]), bool(message["signalled"]))
                self._finish(job, _final_status(job, record, str(job.pid)))
            self._cond.notify_all()

    def _on_supervisor_exit(self, conn: SupervisorConnection) -> None:
        with self._cond:
            if self._conn is conn:
                self._conn = None
            for job in [j for j in self._running.values() if j.conn is conn]:
                who = read_process_file(job.spec.paths.run_dir)
                if who is not None:  # nobody would record its end or enforce its limit
                    signal_group(who.job, signal.SIGKILL)
                if job.pid is None:  # it may have started, but nobody told us
                    job.error = "the job supervisor exited"
                    self._not_started(job.spec, job.error)
                    self._finish(job, None)
                    continue
                reason = "the job supervisor exited before the job ended"
                self._finish(
                    job,
                    JobStatus(
                        job.spec.job_id,
                        JobState.LOST,
                        str(job.pid),
                        reason=reason,
                        time=time.time(),
                    ),
                )
            self._cond.notify_all()

    def _finish(self, job: _Job, status: JobStatus | None) -> None:
        """Report ``job`` ended (lock held)."""
        if job.done:
            return
        job.done = True
        self._running.pop(job.spec.job_id, None)
        if status is not None:
            self._report(status)

    # -- jobs of an earlier driver -----------------------------------------------------------
    def _follow(self, spec: JobSpec, who: Supervised) -> None:
        job = _Job(spec)
        job.pid = who.job.pid
        job.followed = who
        with self._cond:
            self._running[spec.job_id] = job
            self._n_followers += 1
        logger.info("following job %s (pid %d) of an earlier driver", spec.job_id, who.job.pid)
        threading.Thread(target=self._follow_until_end, args=(job, who), daemon=True).start()

    def _follow_until_end(self, job: _Job, who: Supervised) -> None:
        try:
            wait_until_gone(who.job, who.supervisor)
            if who.job.is_alive():  # its supervisor died: nobody would record its end
                signal_group(who.job, signal.SIGKILL)
            record = wait_for_record(job.spec.paths.run_dir, who.supervisor)
            if record is None:
                status = JobStatus(
                    job.spec.job_id,
                    JobState.LOST,
                    str(job.pid),
                    reason="its supervisor died before recording its exit status",
                    time=time.time(),
                )
            else:
                status = _final_status(job, record, str(job.pid))
            with self._cond:
                self._finish(job, status)
        finally:
            with self._cond:
                self._n_followers -= 1
                self._cond.notify_all()


def _start_problem(argv: Sequence[str], spec: JobSpec) -> str:
    """Why the supervisor would fail to start ``argv`` for ``spec``, as far as a few
    ``stat`` calls tell ("" if nothing is seen): a missing working directory or
    executable. Anything else it finds is reported by :meth:`LocalLauncher.poll`."""
    if not os.path.isdir(spec.cwd):
        return f"working directory {str(spec.cwd)!r} does not exist"
    program = argv[0] if argv else ""
    if os.path.dirname(program):  # a path, relative to the job's working directory
        found = shutil.which(os.path.join(spec.cwd, program))
    else:  # looked up on the job's PATH
        path = spec.env.get("PATH", os.environ.get("PATH", os.defpath))
        found = shutil.which(program, path=path) if program else None
    return "" if found else f"no such executable: {program!r}"


def _final_status(job: _Job, record: tuple[int, bool], native: str) -> JobStatus:
    """The terminal status of ``job`` from its recorded ``(status, signalled)``."""
    status, signalled = record
    exit_code, sig = split_status(status)
    state = JobState.FAILED if exit_code is None else JobState.from_exit_code(exit_code)
    reason = ""
    if job.cancelled:
        state, reason = JobState.CANCELLED, "cancelled"
    elif signalled and state not in (JobState.COMPLETED, JobState.RESUME):
        state = JobState.TIMEOUT
        limit = job.limit_s
        reason = "timeout: wall time limit" + (f" of {limit:g} s" if limit else "") + " reached"
    return JobStatus(job.spec.job_id, state, native, exit_code, sig, reason, time.time())


def _note_start_failure(spec: JobSpec, error: str) -> None:
    with contextlib.suppress(OSError), open(spec.paths.stderr, "a", encoding="utf-8") as fh:
        fh.write(f"hpoptim: could not start {list(spec.argv)}: {error}\n")


def _signal_jobs(jobs: Iterable[_Job], signum: int) -> None:
    """Signal the jobs' process groups: through their supervisor, or directly if followed."""
    by_conn: dict[SupervisorConnection, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.conn is not None:
            request = {"op": "signal", "job": job.spec.job_id, "signal": int(signum)}
            by_conn.setdefault(job.conn, []).append(request)
        elif job.followed is not None:
            signal_group(job.followed.job, signum)
    for conn, requests in by_conn.items():
        conn.send(requests)


def _kill_all(running: Mapping[str, _Job]) -> None:
    """Kill jobs left running when the driver exits without closing the launcher."""
    _signal_jobs(list(running.values()), signal.SIGKILL)
