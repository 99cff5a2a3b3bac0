"""Run jobs on a Slurm cluster through sbatch, squeue and scancel.

How the launcher talks to Slurm (every command is an argv list, run through a
:data:`CommandRunner` that tests may replace with an in-memory fake):

* **Submit.** Jobs that share resources, working directory and signal timing go
  out as one job array with one ``sbatch`` call (``use_job_arrays``); others as
  one batch script each. Scripts, task files and a manifest (job name and job ids
  of each submission) are written to ``script_dir`` before ``sbatch`` runs, so a
  driver that dies right after ``sbatch`` finds its jobs again by name.
* **Poll.** One ``squeue --states=all`` call covers every job in flight; the
  interval grows from ``poll_interval_s`` to ``max_poll_interval_s`` while nothing
  changes and starts over when something does. Between calls only the jobs' exit
  status files are looked at (a ``stat`` each), so a job that ends is noticed at
  once. A failed ``squeue`` is logged as a warning and retried at the next poll.
* **States and exit codes.** ``squeue`` forgets a job ``MinJobAge`` seconds after
  it ends, and clusters without slurmdbd have no ``sacct``. So the batch script
  records the job's exit status, and whether the time-limit signal came, in the
  run directory (see :mod:`hpoptim.launchers.slurm_script`). The Slurm state
  decides CANCELLED/TIMEOUT/OUT_OF_MEMORY/NODE_FAIL/PREEMPTED; the recorded status
  decides the rest. For a job squeue has forgotten and that left no status (it was
  cancelled before it started, or killed at its time limit), one ``sacct`` call
  gives its state, where accounting works. A job none of them knows is ``LOST``.
* **Time limit.** ``--signal=B:USR2@lead`` reaches the batch shell, which passes
  ``spec.resources.timeout_signal`` to the job. A job that then exits 3 is ``RESUME``;
  one that exits with another failure, or is killed at the limit, is ``TIMEOUT``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpoptim.contract import EXIT_STATUS_FILE_NAME
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
from hpoptim.launchers.node import TEMPORARY_NAMES
from hpoptim.launchers.slurm_commands import (
    DEFAULT_MAX_ARRAY_SIZE,
    SUBMIT_RETRY_DELAYS_S,
    CommandResult,
    CommandRunner,
    is_transient,
    may_have_acted,
    parse_max_array_size,
    run_command,
    run_retrying,
)
from hpoptim.launchers.slurm_outage import Clock, Outage, SystemClock, Unreachable, Unsubmitted
from hpoptim.launchers.slurm_script import (
    SlurmOptions,
    SlurmSettings,
    array_key,
    job_name,
    render_array,
    render_single,
    task_files,
)
from hpoptim.launchers.slurm_states import (
    ACTIVE_STATES,
    SQUEUE_FORMAT,
    Listing,
    parse_sacct,
    parse_squeue,
    read_exit,
    sacct_argv,
    terminal_status,
)
from hpoptim.log import get_logger
from hpoptim.sections import Section
from hpoptim.state.storage import fsync_dir

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "CommandResult",
    "CommandRunner",
    "SlurmLauncher",
    "SlurmOptions",
    "SlurmSettings",
    "run_command",
]

logger = get_logger(__name__)

_EXIT_CHECK_S = 0.25


@dataclass
class _Job:
    spec: JobSpec
    native: str
    state: JobState = JobState.PENDING
    cancelled: bool = False
    exit_seen: bool = False


class SlurmLauncher(BaseLauncher):
    """Submits jobs with sbatch and follows them with one squeue call per poll.

    Args:
        options: Partition, resources, polling and submission settings.
        runner: Runs a command; default :func:`run_command` (real subprocesses).
        clock: Where time comes from (tests pass a fake clock).
        cancel_on_close: Cancel jobs still in flight in :meth:`close` (by default they
            keep running on the cluster, and a resumed driver re-attaches to them).

    Attributes:
        n_calls: How often each Slurm command ran (``sbatch``, ``squeue``, ...).
    """

    name = "slurm"

    def __init__(
        self,
        options: SlurmOptions | None = None,
        *,
        runner: CommandRunner | None = None,
        cancel_on_close: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.options = options or SlurmOptions()
        self._runner = runner or run_command
        self._clock = clock or SystemClock()
        self._outage = Outage(self.options.outage_tolerance_min * 60, self._clock)
        self._unsubmitted: list[Unsubmitted] = []
        self.cancel_on_close = cancel_on_close
        self.n_calls: Counter[str] = Counter()
        self._run_key = ""
        self._max_array_size: int | None = None
        self._jobs: dict[str, _Job] = {}
        self._events: list[JobStatus] = []
        self._interval = self.options.poll_interval_s
        self._next_query = 0.0
        self._next_exit_check = 0.0
        self._sacct_works = True
        self._listing: Listing | None = None
        self._manifests: dict[str, tuple[str, int | None]] | None = None

    settings_model = SlurmSettings

    @classmethod
    def from_settings(cls, settings: Section, *, work_dir: Path, name: str) -> Self:
        """Build the launcher from the ``slurm`` section (a :class:`SlurmSettings`).

        Batch scripts go to ``work_dir`` and job names start with ``name``.
        """
        assert isinstance(settings, SlurmSettings), "the registry passes the section's model"
        return cls(SlurmOptions.from_settings(settings, script_dir=work_dir, job_name_prefix=name))

    @classmethod
    def stop_leftovers(
        cls, work_dir: Path, *, runner: CommandRunner | None = None, wait_s: float = 120.0
    ) -> int:
        """scancel the jobs named in ``work_dir``'s manifests that are queued or running,
        and wait up to ``wait_s`` until Slurm reports them ended; return how many.

        Raises:
            LaunchError: scancel failed, or the jobs were still there after ``wait_s``.
        """
        names = {name for name, _ in read_manifests(work_dir).values()}
        launcher = cls(SlurmOptions(script_dir=work_dir), runner=runner)
        active = launcher._active_named(names)
        if not active:
            return 0
        result = launcher._run_retrying(["scancel", *active])
        if result.returncode != 0:
            raise LaunchError(
                f"cannot stop the jobs {', '.join(active)} of the run in {work_dir.parent}: "
                f"scancel: {result.stderr.strip()}",
                argv=["scancel", *active],
                stderr=result.stderr,
            )
        wait_until_gone(
            lambda: launcher._active_named(names),
            wait_s,
            lambda left: (
                f"the Slurm jobs {', '.join(left)} of the run in {work_dir.parent} "
                f"are still running {wait_s:g} s after scancel; try again once they ended"
            ),
        )
        return len(active)

    def _active_named(self, names: set[str]) -> list[str]:
        """Slurm ids (of whole arrays) of this user's unfinished jobs named ``names``."""
        if not names:
            return []
        self._listing = None
        purpose = (
            f"of the run in {self.options.script_dir.parent}, which must be stopped before "
            "it is moved aside (run where Slurm answers, or stop them and move it yourself)"
        )
        rows = self._fresh_listing(purpose).rows.items()
        found = {
            n.split("_")[0]
            for n, (state, _, name) in rows
            if name in names and state in ACTIVE_STATES
        }
        return sorted(found, key=int)

    # -- BaseLauncher ------------------------------------------------------------------
    def capacity(self) -> int | None:
        """Free queue slots under ``n_max_queued_jobs`` (``None``: no limit)."""
        limit = self.options.n_max_queued_jobs
        return None if limit is None else max(0, limit - len(self._jobs))

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        """Queue ``specs`` with as few sbatch calls as possible; return their Slurm ids.

        A group whose sbatch call fails is reported ``FAILED`` by the next :meth:`poll`
        (its native id is ``""``) when another group went through.

        Raises:
            LaunchError: a job id is already in flight, a spec cannot be written as a
                batch script, or no job could be submitted.
        """
        ids = [s.job_id for s in specs]
        clash = [i for i in ids if i in self._jobs]
        if clash or len(set(ids)) != len(ids):
            raise LaunchError(f"job ids must be unique among jobs in flight, got {clash or ids}")
        argvs = {s.job_id: job_argv(s) for s in specs}
        self.options.script_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.options.script_dir.chmod(0o700)  # batch scripts hold the jobs' environment
        native: dict[str, str] = {}
        first_error: LaunchError | None = None
        for group in self._groups(specs):
            try:
                native.update(self._submit_group(group, argvs))
            except LaunchError as exc:
                first_error = first_error or exc
                logger.warning("could not submit %d job(s): %s", len(group), exc)
                now = time.time()
                for spec in group:
                    native[spec.job_id] = ""
                    self._events.append(
                        JobStatus(spec.job_id, JobState.FAILED, "", reason=str(exc), time=now)
                    )
        if first_error is not None and not any(native.values()):
            self._events = [e for e in self._events if e.job_id not in native]
            raise first_error
        self._interval = self.options.poll_interval_s
        self._next_query = self._clock.monotonic() + self._interval
        return native

    def poll(self, timeout_s: float) -> list[JobStatus]:
        """State changes since the last call; waits up to ``timeout_s`` for one.

        While Slurm's controller is out of reach, jobs whose exit status appears are
        still reported, and submissions that wait for it are tried again.

        Raises:
            LaunchError: The controller has been out of reach for longer than
                ``outage_tolerance_min``.
        """
        deadline = self._clock.monotonic() + max(0.0, timeout_s)
        while True:
            news, self._events = self._events, []
            now = self._clock.monotonic()
            news += self._resubmit(now)
            if not news and self._jobs and (now >= self._next_query or self._exit_appeared(now)):
                news = self._query()
            self._outage.check()
            now = self._clock.monotonic()
            if news or now >= deadline:
                return news
            wake = min(deadline, now + _EXIT_CHECK_S, *self._resubmit_times())
            if self._jobs:  # with none, a query in the past would spin until the deadline
                wake = min(wake, self._next_query)
            self._clock.sleep(max(0.0, wake - now))

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        """scancel the given jobs (all in flight if ``None``) with one call."""
        chosen = list(self._jobs) if job_ids is None else [j for j in job_ids if j in self._jobs]
        self._drop_unsubmitted(set(chosen))
        natives = []
        for job_id in [j for j in chosen if j in self._jobs]:
            job = self._jobs[job_id]
            job.cancelled = True
            if job.native:
                natives.append(job.native)
        if not natives:
            return
        result = self._run_retrying(["scancel", *natives])
        if result.returncode != 0:
            logger.warning("scancel %s: %s", " ".join(natives), result.stderr.strip())
        self._interval = self.options.poll_interval_s
        self._next_query = self._clock.monotonic()

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        """Follow a job of an earlier driver, found by its id or else by its job name.

        A job that slurmctld has forgotten is still followed (and its end reported by
        the next :meth:`poll`) if it left its exit status or if accounting (``sacct``)
        knows it by the job name this run gave it.
        """
        listing = self._fresh_listing()
        native = native_id or self._find_by_name(spec.job_id, listing)
        known = bool(native) and native in listing.rows
        if not known and read_exit(spec) is None and not self._accounted(spec, native):
            return False  # Slurm no longer knows it and it left no exit status
        self._jobs[spec.job_id] = _Job(spec, native or "")
        self._next_query = self._clock.monotonic()
        return True

    def close(self) -> None:
        """Cancel jobs in flight if ``cancel_on_close``; otherwise leave them running."""
        if self.cancel_on_close and self._jobs:
            self.cancel()

    def detach(self) -> None:
        """Stop following jobs but leave them running, as a driver that dies would.

        Slurm ends them at their time limits and the batch scripts record their ends, so
        a later launcher can :meth:`reattach` to them; this one reports nothing more
        about them and :meth:`close` cancels none of them.
        """
        self._jobs.clear()
        self._events.clear()
        self._unsubmitted.clear()

    # -- submitting ----------------------------------------------------------------------
    def _groups(self, specs: Sequence[JobSpec]) -> list[list[JobSpec]]:
        arrays_possible = "\\" not in str(self.options.script_dir)
        if not (self.options.use_job_arrays and arrays_possible) or len(specs) < 2:
            return [[s] for s in specs]
        groups: dict[tuple[object, ...], list[JobSpec]] = {}
        for spec in specs:
            groups.setdefault(array_key(spec), []).append(spec)
        size = self.max_array_size()
        return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]

    def max_array_size(self) -> int:
        """The cluster's ``MaxArraySize`` (from ``scontrol show config``): the most tasks
        of one job array, indices ``0 .. MaxArraySize - 1``."""
        if self._max_array_size is None:
            result = self._run_retrying(["scontrol", "show", "config"])
            found = parse_max_array_size(result.stdout) if result.returncode == 0 else None
            if found is None:
                logger.warning(
                    "cannot read MaxArraySize from 'scontrol show config' (%s); assuming %d",
                    result.stderr.strip() or "not in its output",
                    DEFAULT_MAX_ARRAY_SIZE,
                )
            self._max_array_size = max(1, found or DEFAULT_MAX_ARRAY_SIZE)
        return self._max_array_size

    def run_key(self) -> str:
        """A random key of this run, kept in ``script_dir``, that every job name holds:
        a run started afresh in the same place (``--overwrite``, or deleted and
        re-created) gets a new key, so resume-by-name never finds an older run's job."""
        if not self._run_key:
            self._run_key = run_key(self.options.script_dir)
        return self._run_key

    def _submit_group(self, group: list[JobSpec], argvs: dict[str, list[str]]) -> dict[str, str]:
        first = group[0]
        tag = first.job_id if len(group) == 1 else f"{first.job_id}+{len(group) - 1}"
        name = job_name(self.options.job_name_prefix, self.run_key(), tag)
        base = self.options.script_dir / tag  # job ids are safe as file names
        for spec in group:  # a status left by an earlier submission must not count
            for file in (EXIT_STATUS_FILE_NAME, *TEMPORARY_NAMES):
                (spec.paths.run_dir / file).unlink(missing_ok=True)
        if len(group) == 1:
            text = render_single(first, argvs[first.job_id], self.options, name)
        else:
            tasks = base.with_name(base.name + ".tasks")
            entries = [(s, *task_files(s, argvs[s.job_id])) for s in group]
            write_tasks(tasks, entries)
            text = render_array(group, self.options, name, tasks)
        script = base.with_name(base.name + ".sh")
        write_private(script, text.encode("utf-8"), 0o700)
        manifest = manifest_bytes(name, group, array=len(group) > 1)
        # durable before sbatch: after a crash, resume finds the job by this name
        write_private(base.with_name(base.name + ".json"), manifest, 0o600)
        fsync_dir(self.options.script_dir)
        try:
            if self._outage.since is not None:  # sbatch would only wait: try it from poll
                raise Unreachable(self._outage.error)
            slurm_id = self._sbatch(script, SUBMIT_RETRY_DELAYS_S)
        except Unreachable as exc:
            waiting = Unsubmitted(group, script, name, may_be_queued=exc.may_have_acted)
            waiting.retry_later(self._clock.monotonic())
            self._unsubmitted.append(waiting)
            for spec in group:
                self._jobs[spec.job_id] = _Job(spec, "")
            logger.warning("%s waits for Slurm's controller to be submitted", tag)
            return {spec.job_id: "" for spec in group}
        return self._submitted(group, slurm_id, script)

    def _submitted(self, group: list[JobSpec], slurm_id: str, script: Path) -> dict[str, str]:
        if len(group) == 1:
            natives = {group[0].job_id: slurm_id}
        else:
            natives = {s.job_id: f"{slurm_id}_{i}" for i, s in enumerate(group)}
        for spec in group:
            self._jobs[spec.job_id] = _Job(spec, natives[spec.job_id])
        logger.debug("submitted %s as Slurm job %s", script, slurm_id)
        return natives

    def _sbatch(self, script: Path, delays: Sequence[float]) -> str:
        argv = ["sbatch", "--parsable", str(script)]
        result = self._run(argv)
        for delay in delays:  # not after a time-out: the job may be queued; see _resubmit
            if result.returncode == 0 or not is_transient(result) or may_have_acted(result):
                break
            logger.warning("sbatch failed (%s); retrying in %g s", result.stderr.strip(), delay)
            self._clock.sleep(delay)
            result = self._run(argv)
        slurm_id = result.stdout.strip().split(";")[0]
        if result.returncode != 0 and is_transient(result):
            unreachable = Unreachable(result.stderr.strip(), argv=argv, stderr=result.stderr)
            unreachable.may_have_acted = may_have_acted(result)
            raise unreachable
        if result.returncode != 0 or not slurm_id.isdigit():
            raise LaunchError(
                f"sbatch refused {script}: exit code {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()}",
                argv=argv,
                stderr=result.stderr,
            )
        return slurm_id

    # -- polling ---------------------------------------------------------------------------
    def _exit_appeared(self, now: float) -> bool:
        if now < self._next_exit_check:
            return False
        self._next_exit_check = now + _EXIT_CHECK_S
        appeared = False
        for job in self._jobs.values():
            if not job.exit_seen and (job.spec.paths.run_dir / EXIT_STATUS_FILE_NAME).exists():
                job.exit_seen = appeared = True
        return appeared

    def _query(self) -> list[JobStatus]:
        natives = [j.native for j in self._jobs.values() if j.native]
        listing = self._squeue(natives) if natives else Listing(at=self._clock.monotonic())
        news: list[JobStatus] = []
        if listing is not None:
            missing = [j for j in self._jobs.values() if j.native not in listing.rows]
            sacct = self._sacct([j.native for j in missing if j.native and not read_exit(j.spec)])
            listing.rows.update(sacct)
        for job_id, job in list(self._jobs.items()):
            if not job.native:
                continue  # waits to be submitted
            if listing is None:  # Slurm does not answer: what the run dirs tell still counts
                if read_exit(job.spec) is None:
                    continue
                status = self._status(job, None)
            else:
                status = self._status(job, listing.rows.get(job.native))
            if status is not None:
                news.append(status)
                if status.state.is_terminal:
                    del self._jobs[job_id]
        pending_exit = any(j.exit_seen for j in self._jobs.values())
        if news or pending_exit:
            self._interval = self.options.poll_interval_s
        else:
            self._interval = min(self._interval * 1.5, self.options.max_poll_interval_s)
        self._next_query = self._clock.monotonic() + self._interval
        return news

    def _status(self, job: _Job, row: tuple[str, int | None, str] | None) -> JobStatus | None:
        if row is not None and row[0] in ACTIVE_STATES:
            state = JobState.PENDING if row[0] == "PENDING" else JobState.RUNNING
            if state is job.state:
                return None
            job.state = state
            return JobStatus(job.spec.job_id, state, job.native, reason=row[0], time=time.time())
        slurm_state, raw = (row[0], row[1]) if row is not None else ("", None)
        return terminal_status(job.spec, job.native, slurm_state, raw, job.cancelled)

    def _squeue(self, natives: Iterable[str]) -> Listing | None:
        arrays = sorted({n.split("_")[0] for n in natives}, key=int)
        argv = ["squeue", "--noheader", "--array", "--states=all", f"--Format={SQUEUE_FORMAT}"]
        argv.append(f"--jobs={','.join(arrays)}")
        result = self._run(argv)
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return Listing(at=self._clock.monotonic())  # none of them is known any more
            logger.warning("squeue failed (exit code %d): %s", result.returncode, result.stderr)
            return None
        return parse_squeue(result.stdout)

    def _sacct(self, natives: list[str]) -> dict[str, tuple[str, int | None, str]]:
        if not natives or not self._sacct_works:
            return {}
        result = self._run(sacct_argv(natives))
        if result.returncode != 0:
            if "accounting storage is disabled" in result.stderr:
                self._sacct_works = False
            else:
                logger.warning("sacct failed: %s", result.stderr.strip())
            return {}
        return parse_sacct(result.stdout)

    # -- re-attaching ----------------------------------------------------------------------
    def _fresh_listing(self, purpose: str = "to re-attach") -> Listing:
        if self._listing is None or self._clock.monotonic() - self._listing.at > 5.0:
            user = f"--user={os.getuid()}"
            argv = ["squeue", user, "--noheader", "--array", "--states=all"]
            result = self._run_retrying([*argv, f"--Format={SQUEUE_FORMAT}"])
            if result.returncode != 0:
                raise LaunchError(
                    f"cannot list Slurm jobs {purpose}: {result.stderr.strip()}",
                    argv=argv,
                    stderr=result.stderr,
                )
            self._listing = parse_squeue(result.stdout)
        return self._listing

    def _manifest(self, job_id: str) -> tuple[str, int | None]:
        """The Slurm job name of ``job_id`` and its array index (``("", None)``: unknown)."""
        if self._manifests is None or job_id not in self._manifests:
            self._manifests = read_manifests(self.options.script_dir)
        return self._manifests.get(job_id, ("", None))

    def _accounted(self, spec: JobSpec, native: str) -> bool:
        """Whether sacct knows ``native`` as the job this run submitted for ``spec``."""
        row = self._sacct([native]).get(native) if native else None
        if row is None:
            return False
        name, _ = self._manifest(spec.job_id)
        return row[2] == name or not name  # a job id Slurm gave out again is not ours

    def _find_by_name(self, job_id: str, listing: Listing) -> str:
        name, index = self._manifest(job_id)
        for native, (_, _, row_name) in listing.rows.items():
            if name and row_name == name:
                base, _, task = native.partition("_")
                if index is None:
                    return base
                if task == str(index):
                    return native
        return ""

    def _run(self, argv: Sequence[str]) -> CommandResult:
        self.n_calls[argv[0]] += 1
        result = self._runner(argv)
        if result.returncode == 0:
            self._outage.answered()
        elif is_transient(result):
            self._outage.failed(result.stderr or result.stdout)
        return result

    # -- submissions that wait for the controller ------------------------------------------
    def _resubmit_times(self) -> list[float]:
        return [u.next_try for u in self._unsubmitted]

    def _resubmit(self, now: float) -> list[JobStatus]:
        """Try the submissions that wait for the controller and are due; report those
        that went through (``PENDING``, with their Slurm ids) or were refused."""
        news: list[JobStatus] = []
        for waiting in [u for u in self._unsubmitted if now >= u.next_try]:
            try:
                queued = self._already_queued(waiting) if waiting.may_be_queued else ""
                slurm_id = queued or self._sbatch(waiting.script, ())
            except Unreachable as exc:
                waiting.may_be_queued |= exc.may_have_acted
                waiting.retry_later(now)
                continue
            except LaunchError as exc:
                self._unsubmitted.remove(waiting)
                for spec in waiting.specs:
                    del self._jobs[spec.job_id]
                    news.append(
                        JobStatus(
                            spec.job_id, JobState.FAILED, "", reason=str(exc), time=time.time()
                        )
                    )
                continue
            self._unsubmitted.remove(waiting)
            for job_id, native in self._submitted(waiting.specs, slurm_id, waiting.script).items():
                news.append(
                    JobStatus(
                        job_id, JobState.PENDING, native, reason="submitted", time=time.time()
                    )
                )
            self._next_query = now
        return news

    def _already_queued(self, waiting: Unsubmitted) -> str:
        """The Slurm id of ``waiting`` if an earlier sbatch whose answer was lost (a
        time-out) queued it after all, else ""."""
        argv = ["squeue", f"--user={os.getuid()}", "--noheader", "--array", "--states=all"]
        result = self._run([*argv, f"--Format={SQUEUE_FORMAT}"])
        if result.returncode != 0:
            raise Unreachable(result.stderr.strip())
        for native, (_, _, name) in parse_squeue(result.stdout).rows.items():
            if name == waiting.name:
                return native.split("_")[0]
        return ""

    def _drop_unsubmitted(self, job_ids: set[str]) -> None:
        """Cancel submissions that wait for the controller: reported ``CANCELLED``."""
        for waiting in [u for u in self._unsubmitted if u.job_ids & job_ids]:
            self._unsubmitted.remove(waiting)
            for spec in waiting.specs:
                del self._jobs[spec.job_id]
                self._events.append(
                    JobStatus(
                        spec.job_id,
                        JobState.CANCELLED,
                        "",
                        reason="never submitted",
                        time=time.time(),
                    )
                )

    def _run_retrying(self, argv: list[str]) -> CommandResult:
        return run_retrying(self._run, argv, sleep=self._clock.sleep)
