"""Run jobs on a Grid Engine cluster through qsub, qstat, qacct and qdel.

How the launcher talks to Grid Engine (every command is an argv list, run through a
:data:`~hpoptim.launchers.slurm_commands.CommandRunner` that tests may replace):

* **Submit.** Jobs that share resources and working directory go out as one array job
  (``qsub -t 1-N``), split at the cluster's ``max_aj_tasks``/``max_aj_instances``
  (``qconf -sconf``). The job script, task files and a manifest (job name and job ids)
  are written before ``qsub`` runs, so a driver that dies right after it finds its jobs
  again by name.
* **Poll.** One ``qstat -xml -g d`` call covers every task in flight; the interval grows
  from ``poll_interval_s`` to ``max_poll_interval_s`` while nothing changes. Between
  calls only the jobs' exit status files are looked at, so a job that ends is noticed
  at once: a job whose script recorded its exit status has ended, whatever qstat shows
  yet. A task that left qstat without one is judged by one ``qacct -j`` call for all
  such tasks of the run (by the run's job-name pattern).
* **Errors.** A task in an error state (``Eqw``) never runs: it is deleted and reported
  ``FAILED`` with Grid Engine's reason. A suspended task is logged.
* **Outages.** While Grid Engine does not answer, polls are warnings and commands are
  retried; only after ``outage_tolerance_min`` without an answer does the launcher
  give up with a :class:`~hpoptim.errors.LaunchError` (the jobs run on; ``resume``
  follows them again).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher, job_argv
from hpoptim.launchers.batch_files import (
    manifest_bytes,
    read_manifests,
    run_key,
    wait_until_gone,
    write_private,
    write_tasks,
)
from hpoptim.launchers.node import EXIT_FILE_NAME, read_exit_file
from hpoptim.launchers.sge.commands import Commands
from hpoptim.launchers.sge.script import (
    array_key,
    job_name,
    qsub_argv,
    render_script,
    task_files,
)
from hpoptim.launchers.sge.settings import SgeOptions, SgeSettings
from hpoptim.launchers.sge.states import Accounted, Task, terminal_status
from hpoptim.launchers.sge.tracking import (
    TrackedJob,
    ended,
    failed_status,
    find_accounted,
    find_task,
    next_status,
)
from hpoptim.launchers.slurm_commands import CommandRunner
from hpoptim.log import get_logger
from hpoptim.state.storage import fsync_dir

if TYPE_CHECKING:
    from typing import Self

    from hpoptim.sections import Section

logger = get_logger(__name__)

_EXIT_CHECK_S = 0.25


class SgeLauncher(BaseLauncher):
    """Submits array jobs with qsub and follows them with one qstat call per poll.

    Args:
        options: Queue, resources, polling and submission settings.
        runner: Runs a command; default: real subprocesses.
        cancel_on_close: Delete jobs still in flight in :meth:`close` (by default they
            keep running, and a resumed driver re-attaches to them).

    Attributes:
        n_calls: How often each Grid Engine command ran (``qsub``, ``qstat``, ...).
    """

    name = "sge"
    settings_model = SgeSettings

    def __init__(
        self,
        options: SgeOptions | None = None,
        *,
        runner: CommandRunner | None = None,
        cancel_on_close: bool = False,
    ) -> None:
        self.options = options or SgeOptions()
        self.cancel_on_close = cancel_on_close
        self._commands = Commands(runner, tolerance_s=self.options.outage_tolerance_min * 60)
        self.n_calls: Counter[str] = self._commands.n_calls
        self._run_key = ""
        self._array_limit: int | None = None
        self._jobs: dict[str, TrackedJob] = {}
        self._events: list[JobStatus] = []
        self._interval = self.options.poll_interval_s
        self._next_query = 0.0
        self._next_exit_check = 0.0
        self._manifests: dict[str, tuple[str, int | None]] | None = None

    @classmethod
    def from_settings(cls, settings: Section, *, work_dir: Path, name: str) -> Self:
        """Build the launcher from the ``sge`` section (a :class:`SgeSettings`).

        Job scripts go to ``work_dir`` and job names start with ``name``.
        """
        assert isinstance(settings, SgeSettings), "the registry passes the section's model"
        return cls(SgeOptions.from_settings(settings, script_dir=work_dir, job_name_prefix=name))

    @classmethod
    def stop_leftovers(
        cls, work_dir: Path, *, runner: CommandRunner | None = None, wait_s: float = 120.0
    ) -> int:
        """qdel the jobs named in ``work_dir``'s manifests that are still in qstat, and
        wait up to ``wait_s`` until they are gone; return how many.

        Raises:
            LaunchError: qdel failed, or the jobs were still there after ``wait_s``.
        """
        names = {name for name, _ in read_manifests(work_dir).values()}
        launcher = cls(SgeOptions(script_dir=work_dir), runner=runner)
        active = launcher._active_named(names)
        if not active:
            return 0
        launcher._commands.qdel(active)
        wait_until_gone(
            lambda: launcher._active_named(names),
            wait_s,
            lambda left: (
                f"the Grid Engine jobs {', '.join(left)} of the run in "
                f"{work_dir.parent} are still there {wait_s:g} s after qdel; try again once "
                "they ended"
            ),
        )
        return len(active)

    def _active_named(self, names: set[str]) -> list[str]:
        """Job numbers of this user's jobs in qstat named ``names``."""
        if not names:
            return []
        tasks = self._commands.qstat_or_raise("to stop the jobs of the run")
        found = {n.split(".")[0] for n, task in tasks.items() if task.name in names}
        return sorted(found, key=int)

    # -- BaseLauncher ------------------------------------------------------------------
    def capacity(self) -> int | None:
        """Free queue slots under ``n_max_queued_jobs`` (``None``: no limit)."""
        limit = self.options.n_max_queued_jobs
        return None if limit is None else max(0, limit - len(self._jobs))

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        """Queue ``specs`` with one qsub per array job; return their ``JOB.TASK`` ids.

        A group whose qsub fails is reported ``FAILED`` by the next :meth:`poll` (its
        native id is ``""``) when another group went through.

        Raises:
            LaunchError: a job id is already in flight, a spec cannot be submitted, or
                no job could be submitted.
        """
        clash = [s.job_id for s in specs if s.job_id in self._jobs]
        if clash:
            raise LaunchError(f"jobs already in flight: {', '.join(clash)}")
        self.options.script_dir.mkdir(parents=True, exist_ok=True)
        driver_env = dict(os.environ)
        files = {s.job_id: task_files(s, job_argv(s), driver_env) for s in specs}  # checks first
        groups = self._groups(specs)
        for group in groups:  # refuses a path Grid Engine cannot take before any qsub
            qsub_argv(
                group, self.options, name="check", tasks=self.options.script_dir, script=Path()
            )
        native: dict[str, str] = {}
        first_error: LaunchError | None = None
        for group in groups:
            try:
                native.update(self._submit_group(group, files))
            except LaunchError as exc:
                first_error = first_error or exc
                logger.warning("qsub failed for %d jobs: %s", len(group), exc)
                for spec in group:
                    native[spec.job_id] = ""
                    self._events.append(
                        JobStatus(
                            spec.job_id, JobState.FAILED, "", reason=str(exc), time=time.time()
                        )
                    )
        if first_error is not None and not any(native.values()):
            self._events = [e for e in self._events if e.job_id not in native]
            raise first_error
        self._interval = self.options.poll_interval_s
        self._next_query = time.monotonic() + self._interval
        return native

    def poll(self, timeout_s: float) -> list[JobStatus]:
        """State changes since the last call; waits up to ``timeout_s`` for one.

        Raises:
            LaunchError: Grid Engine has not answered for ``outage_tolerance_min``.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            news, self._events = self._events, []
            now = time.monotonic()
            if not news and self._jobs and self._exit_appeared(now):
                news = self._ended_by_file()
            if not news and self._jobs and now >= self._next_query:
                news = self._query()
            now = time.monotonic()
            if news or now >= deadline:
                return news
            wake = min(deadline, self._next_query, now + _EXIT_CHECK_S)
            time.sleep(max(0.0, wake - now))

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        """qdel the given jobs (all in flight if ``None``) with one call."""
        chosen = list(self._jobs) if job_ids is None else [j for j in job_ids if j in self._jobs]
        natives = []
        for job_id in chosen:
            job = self._jobs[job_id]
            job.cancelled = True
            if job.native:
                natives.append(job.native)
        if natives:
            self._commands.qdel(natives)
        self._interval = self.options.poll_interval_s
        self._next_query = time.monotonic()

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        """Follow a job of an earlier driver, found by its id or else by its job name.

        A job that left qstat is still followed (and its end reported by the next
        :meth:`poll`) if it left its exit status or accounting knows it by the job name
        this run gave it.
        """
        name, index = self._manifest(spec.job_id)
        if not name:
            return False  # never submitted by this run
        tasks = self._commands.qstat_or_raise("to re-attach")
        native = native_id or find_task(tasks, name, index)
        if not (native in tasks and tasks[native].name == name):
            accounted = self._commands.qacct(name)
            native = native or find_accounted(accounted, name, index)
            known = native in accounted and accounted[native].name == name
            if not native or not (known or ended(spec)):
                return False  # Grid Engine no longer knows it and it left no exit status
        self._jobs[spec.job_id] = TrackedJob(spec, native, name)
        self._next_query = time.monotonic()
        return True

    def close(self) -> None:
        """Delete jobs in flight if ``cancel_on_close``; otherwise leave them running."""
        if self.cancel_on_close and self._jobs:
            self.cancel()

    def detach(self) -> None:
        """Stop following jobs but leave them running, as a driver that dies would."""
        self._jobs.clear()
        self._events.clear()

    # -- submitting ----------------------------------------------------------------------
    def _groups(self, specs: Sequence[JobSpec]) -> list[list[JobSpec]]:
        if not self.options.use_job_arrays or len(specs) < 2:
            return [[s] for s in specs]
        groups: dict[tuple[object, ...], list[JobSpec]] = {}
        for spec in specs:
            groups.setdefault(array_key(spec), []).append(spec)
        size = self.array_limit()
        return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]

    def array_limit(self) -> int:
        """The most tasks of one array job: the cluster's ``max_aj_tasks``, and no more
        than ``max_aj_instances`` so that every task of a batch may run at once."""
        if self._array_limit is None:
            self._array_limit = self._commands.array_limit()
        return self._array_limit

    def run_key(self) -> str:
        """A random key of this run, kept in ``script_dir``, that every job name holds."""
        if not self._run_key:
            self._run_key = run_key(self.options.script_dir)
        return self._run_key

    def _submit_group(
        self, group: list[JobSpec], files: dict[str, tuple[bytes, bytes]]
    ) -> dict[str, str]:
        first = group[0]
        tag = first.job_id if len(group) == 1 else f"{first.job_id}+{len(group) - 1}"
        name = job_name(self.options.job_name_prefix, self.run_key(), tag)
        base = self.options.script_dir / tag  # job ids are safe as file names
        for spec in group:  # a status left by an earlier submission must not count
            for suffix in ("", ".signalled"):
                (spec.paths.run_dir / (EXIT_FILE_NAME + suffix)).unlink(missing_ok=True)
        tasks = base.with_name(base.name + ".tasks")
        write_tasks(tasks, [(s, *files[s.job_id]) for s in group], first_index=1)
        script = base.with_name(base.name + ".sh")
        write_private(script, render_script(group, tasks).encode("utf-8"), 0o700)
        # durable before qsub: after a crash, resume finds the job by this name
        manifest = manifest_bytes(name, group, array=True)
        write_private(base.with_name(base.name + ".json"), manifest, 0o600)
        fsync_dir(self.options.script_dir)
        argv = qsub_argv(group, self.options, name=name, tasks=tasks, script=script)
        number = self._commands.qsub(argv)
        natives = {s.job_id: f"{number}.{i}" for i, s in enumerate(group, start=1)}
        for spec in group:
            self._jobs[spec.job_id] = TrackedJob(spec, natives[spec.job_id], name)
        logger.debug("submitted %s as Grid Engine job %s (%s)", tag, number, script)
        return natives

    # -- polling ---------------------------------------------------------------------------
    def _exit_appeared(self, now: float) -> bool:
        if now < self._next_exit_check:
            return False
        self._next_exit_check = now + _EXIT_CHECK_S
        appeared = False
        for job in self._jobs.values():
            if not job.exit_seen and (job.spec.paths.run_dir / EXIT_FILE_NAME).exists():
                job.exit_seen = appeared = True
        return appeared

    def _ended_by_file(self) -> list[JobStatus]:
        """Jobs whose scripts recorded their exit status: ended, whatever qstat says yet
        (the task leaves it a moment later)."""
        news = []
        for job_id, job in list(self._jobs.items()):
            if job.exit_seen and read_exit_file(job.spec.paths.run_dir) is not None:
                news.append(terminal_status(job.spec, job.native, None, cancelled=job.cancelled))
                del self._jobs[job_id]
        return news

    def _query(self) -> list[JobStatus]:
        tasks = self._commands.qstat()
        news: list[JobStatus] = []
        if tasks is not None:
            news = self._judge(tasks)
        pending_exit = any(j.exit_seen for j in self._jobs.values())
        if news or pending_exit:
            self._interval = self.options.poll_interval_s
        else:
            self._interval = min(self._interval * 1.5, self.options.max_poll_interval_s)
        self._next_query = time.monotonic() + self._interval
        return news

    def _judge(self, tasks: dict[str, Task]) -> list[JobStatus]:
        news: list[JobStatus] = []
        gone = [j for j in self._jobs.values() if j.native not in tasks]
        accounted = self._accounted(gone)
        errors = [j for j in self._jobs.values() if j.native in tasks and tasks[j.native].error]
        if errors:
            news += self._fail_errors(errors)
        for job_id, job in list(self._jobs.items()):
            if job_id not in self._jobs:
                continue
            task = tasks.get(job.native)
            status = next_status(job, task, accounted.get(job.native))
            if status is not None:
                news.append(status)
                if status.state.is_terminal:
                    del self._jobs[job_id]
        return news

    def _accounted(self, gone: Iterable[TrackedJob]) -> dict[str, Accounted]:
        """qacct records of the jobs that left qstat without an exit status (one call)."""
        need = [j for j in gone if j.native and not j.cancelled and not ended(j.spec)]
        if not need:
            return {}
        prefix = job_name(self.options.job_name_prefix, self.run_key(), "")
        pattern = prefix + "*" if all(j.name.startswith(prefix) for j in need) else "*"
        found = self._commands.qacct(pattern)
        return {
            j.native: found[j.native]
            for j in need
            if j.native in found and found[j.native].name == j.name
        }

    def _fail_errors(self, jobs: list[TrackedJob]) -> list[JobStatus]:
        """Delete tasks stuck in an error state and report them failed, with the reason."""
        reasons = {j.native: self._commands.error_reason(j.native) for j in jobs}
        self._commands.qdel([j.native for j in jobs])
        news = []
        for job in jobs:
            del self._jobs[job.spec.job_id]
            reason = f"Grid Engine error state (Eqw), job deleted: {reasons[job.native]}"
            news.append(failed_status(job.spec.job_id, job.native, reason))
        return news

    def _manifest(self, job_id: str) -> tuple[str, int | None]:
        if self._manifests is None or job_id not in self._manifests:
            self._manifests = read_manifests(self.options.script_dir)
        return self._manifests.get(job_id, ("", None))
