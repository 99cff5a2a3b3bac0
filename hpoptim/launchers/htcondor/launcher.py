"""Run jobs on an HTCondor pool: one ``condor_submit`` per batch, followed by its event log.

* **Submit.** Ready jobs that share their resources go out as one submit description
  with ``queue N`` and one ``condor_submit`` (``condor_submit_bid BID`` with a bid);
  job ``$(Process)`` reads its task file (see
  :mod:`~hpoptim.launchers.htcondor.description`). Task files, the description and
  a manifest (the submission's jobs, later its cluster id) are written to the
  launcher's directory before the call, so a driver that dies right after it finds
  its jobs again by the run's key (``+HpoptimRun``) and the submission's tag
  (``+HpoptimTag``). Job ids are ``cluster.proc``.
* **Follow.** Every submission logs to one job event log per run, read incrementally
  with HTCondor's own parser; no ``condor_q`` per poll. Executing -> RUNNING;
  terminated -> the job's end, decided by the exit status the job side recorded
  (so time limits, their signal and exit 3 mean what they mean on every launcher);
  aborted -> CANCELLED. An eviction, a failed reconnect or a shadow exception puts
  the job back in the queue and HTCondor starts it again: that is the same attempt
  restarting (reported PENDING), up to ``max_restarts`` times, after which the job
  is removed and FAILED. **Held jobs are removed** (``condor_rm``) and reported
  FAILED with the hold reason: a held job waits for a person, and the run's own
  retries (``max_attempts``) decide whether it runs again.
* **Vanished jobs.** Every ``queue_check_interval_s`` one ``condor_q`` lists the
  run's jobs; one the queue and the log both lost is LOST.
* **Outages.** A command that cannot reach the schedd is retried with backoff for
  ``outage_tolerance_s``, the event log read meanwhile.
* **Re-attach.** A later driver reads the whole log; for a job the log has not
  settled it asks ``condor_q`` (and ``condor_history``) once.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher, job_argv
from hpoptim.launchers.htcondor.description import (
    EVENT_LOG_NAME,
    Submission,
    check_description,
    render,
    resources_key,
    tag_attribute,
    task_record,
    write_private,
)
from hpoptim.launchers.htcondor.events import Event, EventKind, EventLog, bindings
from hpoptim.launchers.htcondor.queue import (
    end_in_history,
    manifest_entry,
    run_constraint,
    run_jobs,
    stop_run,
    submitted_already,
)
from hpoptim.launchers.htcondor.schedd import CommandResult, CommandRunner, Schedd
from hpoptim.launchers.htcondor.settings import HTCondorSettings
from hpoptim.launchers.htcondor.states import aborted_status, terminated_status
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.log import get_logger
from hpoptim.sections import Section
from hpoptim.state.storage import fsync_dir

if TYPE_CHECKING:
    from typing import Self

__all__ = ["HTCondorLauncher"]

logger = get_logger(__name__)

_RUN_KEY_FILE = "run_key"
_LOG_CHECK_S = 0.1
_CANCEL_TOLERANCE_S = 60.0
_SUBMITTED = re.compile(r"(\d+) job\(s\) submitted to cluster (\d+)")
_RESTARTS = {
    EventKind.EVICTED: "evicted",
    EventKind.RECONNECT_FAILED: "lost its execute node (reconnect failed)",
    EventKind.SHADOW_EXCEPTION: "shadow exception",
}


@dataclass
class _Job:
    spec: JobSpec
    native: str
    state: JobState = JobState.PENDING
    cancelled: bool = False
    restarts: int = 0


class HTCondorLauncher(BaseLauncher):
    """Submits batches with condor_submit and follows them through the job event log.

    Args:
        settings: The ``htcondor`` section.
        work_dir: Where submit descriptions, task files, manifests and the event log go.
        run_name: The run's name (in the batch name ``condor_q`` shows).
        runner: Runs a command; default: real subprocesses.
        cancel_on_close: Remove jobs still in flight in :meth:`close`.
    """

    name = "htcondor"
    settings_model = HTCondorSettings

    def __init__(
        self,
        settings: HTCondorSettings | None = None,
        *,
        work_dir: Path,
        run_name: str = "hpoptim",
        runner: CommandRunner | None = None,
        cancel_on_close: bool = False,
    ) -> None:
        self.settings = settings or HTCondorSettings()
        self.work_dir = work_dir
        self.run_name = run_name
        self.cancel_on_close = cancel_on_close
        self.schedd = Schedd(runner, between_attempts=self._read_log)
        self._log = EventLog(work_dir / EVENT_LOG_NAME)
        self._jobs: dict[str, _Job] = {}
        self._by_native: dict[str, str] = {}
        self._unfollowed: dict[str, list[Event]] = {}
        self._ended: set[str] = set()
        self._cluster_sizes: dict[str, int] = {}  # jobs of each cluster this launcher queued
        self._events: list[JobStatus] = []
        self._run_key = ""
        self._queue: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._next_check = time.monotonic() + self.settings.queue_check_interval_s

    @classmethod
    def from_settings(cls, settings: Section, *, work_dir: Path, name: str) -> Self:
        """Build the launcher from the ``htcondor`` section (a :class:`HTCondorSettings`)."""
        assert isinstance(settings, HTCondorSettings), "the registry passes the section's model"
        return cls(settings, work_dir=work_dir, run_name=name)

    @property
    def n_calls(self) -> dict[str, int]:
        """How often each HTCondor command ran."""
        return dict(self.schedd.n_calls)

    # -- BaseLauncher --------------------------------------------------------------------
    def capacity(self) -> int | None:
        """No limit: the pool queues what it cannot run yet."""
        return None

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        """Queue ``specs``, one condor_submit per group of equal resources; return ids.

        Raises:
            LaunchError: A job id is already in flight, a job cannot be described, or
                the schedd refused a submission (jobs of groups submitted before stay).
        """
        clash = [s.job_id for s in specs if s.job_id in self._jobs]
        if clash:
            raise LaunchError(f"jobs already in flight: {', '.join(clash)}")
        bindings()  # fail before anything is queued if the log cannot be read
        records = {s.job_id: task_record(s, job_argv(s)) for s in specs}
        groups: dict[object, list[JobSpec]] = {}
        for spec in specs:
            groups.setdefault(resources_key(spec), []).append(spec)
        # every description is rendered and checked before the first is submitted
        described = [self._describe(group) for group in groups.values()]
        native: dict[str, str] = {}
        first_error: LaunchError | None = None
        for submission, text in described:
            try:
                native.update(self._submit_group(submission, text, records))
            except LaunchError as exc:
                first_error = first_error or exc
                logger.warning("submission %s failed: %s", submission.tag, exc)
                for spec in submission.specs:
                    native[spec.job_id] = ""
                    failed = JobState.FAILED
                    now = time.time()
                    self._events.append(
                        JobStatus(spec.job_id, failed, "", reason=str(exc), time=now)
                    )
        if first_error is not None and not any(native.values()):
            self._events = [e for e in self._events if e.job_id not in native]
            raise first_error
        return native

    def poll(self, timeout_s: float) -> list[JobStatus]:
        """State changes since the last call; waits up to ``timeout_s`` for one."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            self._read_log()
            if self._jobs and time.monotonic() >= self._next_check:
                self._check_queue()
            news, self._events = self._events, []
            now = time.monotonic()
            if news or now >= deadline:
                return news
            time.sleep(min(_LOG_CHECK_S, deadline - now))

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        """condor_rm the given jobs (all in flight if ``None``) in one call."""
        chosen = list(self._jobs) if job_ids is None else [j for j in job_ids if j in self._jobs]
        natives = []
        for job_id in chosen:
            job = self._jobs[job_id]
            job.cancelled = True
            natives.append(job.native)
        self._remove(natives)

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        """Follow a job of an earlier driver, found by its id or else by its manifest.

        Its events so far are read from the run's event log; a job the log has not
        settled must still be in the queue (``condor_q``) or in ``condor_history``.
        """
        native = native_id or self._find_native(spec.job_id)
        if not native:
            return False
        self._read_log()
        past = self._unfollowed.pop(native, [])
        settled = any(e.kind in (EventKind.TERMINATED, EventKind.ABORTED) for e in past)
        if not settled and native not in self._listing():
            end = end_in_history(self.schedd, native, self.settings.outage_tolerance_s)
            if end is None:
                return False  # neither the queue nor its history knows it: not running
            past.append(end)
        job = _Job(spec, native)
        self._follow(job)
        for event in past:
            if spec.job_id in self._jobs:
                self._apply(job, event)
        return True

    @classmethod
    def stop_leftovers(
        cls, work_dir: Path, *, runner: CommandRunner | None = None, wait_s: float = 120.0
    ) -> int:
        """condor_rm the jobs of the run in ``work_dir`` still queued or running, and wait
        up to ``wait_s`` until they left the queue; return how many.

        Raises:
            LaunchError: condor_rm failed, or the jobs were still queued after ``wait_s``.
        """
        key_file = work_dir / _RUN_KEY_FILE
        if not key_file.exists():
            return 0
        schedd = Schedd(runner)
        constraint = run_constraint(key_file.read_text(encoding="utf-8").strip())
        return stop_run(
            schedd,
            constraint,
            where=work_dir.parent,
            tolerance_s=_CANCEL_TOLERANCE_S,
            wait_s=wait_s,
        )

    def close(self) -> None:
        """Remove jobs in flight if ``cancel_on_close``; otherwise leave them running."""
        if self.cancel_on_close and self._jobs:
            self.cancel()
        self._log.close()

    def detach(self) -> None:
        """Stop following jobs but leave them running, as a driver that dies would."""
        self._jobs.clear()
        self._by_native.clear()
        self._events.clear()
        self._unfollowed.clear()
        self._ended.clear()
        self._log.close()  # a later reattach reads the log from its start again

    # -- submitting ----------------------------------------------------------------------
    def run_key(self) -> str:
        """A random key of this run, kept in the launcher's directory, that every job of
        the run carries as ``HpoptimRun`` (a run started afresh gets a new one)."""
        if not self._run_key:
            self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.work_dir / _RUN_KEY_FILE
            with contextlib.suppress(FileExistsError), open(path, "x", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(4))
            self._run_key = path.read_text(encoding="utf-8").strip()
        return self._run_key

    def description(self, specs: Sequence[JobSpec], tag: str = "preview") -> str:
        """The submit description of ``specs`` (as one submission), without submitting."""
        submission = Submission(self.work_dir, tag, specs)
        return render(submission, self.settings, run_name=self.run_name, run_key="RUNKEY")

    def preview(self, spec: JobSpec) -> str:
        """The submit description of ``spec`` alone, checked by ``htcondor2.Submit`` when
        the bindings are installed (``RUNKEY`` stands for the run's key)."""
        text = self.description([spec], spec.job_id)
        try:
            check_description(text, self.work_dir / f"{spec.job_id}.sub")
        except LaunchError as exc:
            if "cannot parse" in str(exc):
                raise
            return f"{text}# (not checked: {exc})\n"
        return text

    def _describe(self, group: list[JobSpec]) -> tuple[Submission, str]:
        first = group[0]
        tag = first.job_id if len(group) == 1 else f"{first.job_id}+{len(group) - 1}"
        submission = Submission(self.work_dir, tag, group)
        text = render(submission, self.settings, run_name=self.run_name, run_key=self.run_key())
        check_description(text, submission.submit_file)
        return submission, text

    def _submit_group(
        self, submission: Submission, text: str, records: dict[str, bytes]
    ) -> dict[str, str]:
        group, tag = submission.specs, submission.tag
        tasks = submission.tasks_dir
        tasks.mkdir(mode=0o700, exist_ok=True)
        for i, spec in enumerate(group):
            write_private(tasks / f"{i}.json", records[spec.job_id])
            (spec.paths.run_dir / EXIT_FILE_NAME).unlink(missing_ok=True)
        write_private(submission.submit_file, text.encode("utf-8"))
        manifest: dict[str, object] = {
            "tag": tag,
            "jobs": [s.job_id for s in group],
            "cluster": None,
        }
        # durable before condor_submit: after a crash, resume finds the jobs by the tag
        write_private(submission.manifest, json.dumps(manifest).encode())
        fsync_dir(self.work_dir)
        cluster = self._condor_submit(submission)
        manifest["cluster"] = int(cluster)
        write_private(submission.manifest, json.dumps(manifest).encode())
        natives = {s.job_id: f"{cluster}.{i}" for i, s in enumerate(group)}
        self._cluster_sizes[cluster] = len(group)
        for spec in group:
            self._follow(_Job(spec, natives[spec.job_id]))
        logger.debug("submitted %s as HTCondor cluster %s", tag, cluster)
        return natives

    def _condor_submit(self, submission: Submission) -> str:
        argv = self.settings.submit_argv(str(submission.submit_file))
        tolerance = self.settings.outage_tolerance_s
        result = self.schedd.run_tolerant(argv, tolerance, lambda: self._queued(submission))
        found = _SUBMITTED.search(result.stdout)
        if result.returncode != 0 or found is None or int(found[1]) != len(submission.specs):
            raise LaunchError(
                f"{argv[0]} refused {submission.submit_file}: exit code {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()}",
                argv=argv,
                stderr=result.stderr,
            )
        return found[2]

    def _queued(self, submission: Submission) -> CommandResult | None:
        """A ``condor_submit`` answer for ``submission`` if its jobs are queued already (a
        submission whose answer was lost must not be sent again); None if not, or unknown."""
        tag = tag_attribute(submission.tag)
        constraint = run_constraint(self.run_key(), tag)
        answer = submitted_already(self.schedd, constraint, len(submission.specs))
        if answer is not None:
            logger.warning("%s: the schedd queued it before it stopped answering", tag)
        return answer

    # -- following -------------------------------------------------------------------------
    def _follow(self, job: _Job) -> None:
        self._jobs[job.spec.job_id] = job
        self._by_native[job.native] = job.spec.job_id

    def _end(self, job: _Job, status: JobStatus) -> None:
        self._events.append(status)
        self._jobs.pop(job.spec.job_id, None)
        self._by_native.pop(job.native, None)
        self._ended.add(job.native)

    def _read_log(self) -> None:
        for event in self._log.read():
            job_id = self._by_native.get(event.native)
            if job_id is not None:
                self._apply(self._jobs[job_id], event)
            elif event.native not in self._ended:
                self._unfollowed.setdefault(event.native, []).append(event)

    def _apply(self, job: _Job, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.EXECUTING and job.state is not JobState.RUNNING:
            job.state = JobState.RUNNING
            self._report(job, JobState.RUNNING, "executing")
        elif kind in _RESTARTS and job.state is JobState.RUNNING:
            self._restart(job, f"{_RESTARTS[kind]}{': ' + event.reason if event.reason else ''}")
        elif kind is EventKind.HELD and not job.cancelled:
            reason = f"held by HTCondor: {event.reason} (HoldReasonCode {event.hold_code})"
            self._give_up(job, f"{reason}; removed")
        elif kind is EventKind.ABORTED:
            self._end(job, aborted_status(job.spec, event, cancelled=job.cancelled))
        elif kind is EventKind.TERMINATED:
            self._end(job, terminated_status(job.spec, event, cancelled=job.cancelled))

    def _report(self, job: _Job, state: JobState, reason: str) -> None:
        self._events.append(
            JobStatus(job.spec.job_id, state, job.native, reason=reason, time=time.time())
        )

    def _restart(self, job: _Job, what: str) -> None:
        job.restarts += 1
        job.state = JobState.PENDING
        limit = self.settings.max_restarts
        if job.restarts > limit:
            self._give_up(job, f"{what}; restarted {limit} times already (htcondor.max_restarts)")
        else:
            self._report(
                job, JobState.PENDING, f"{what}; HTCondor runs it again ({job.restarts}/{limit})"
            )

    def _give_up(self, job: _Job, reason: str) -> None:
        """Remove a job HTCondor keeps (held, or restarted too often) and report it FAILED."""
        self._remove([job.native])
        status = JobStatus(
            job.spec.job_id, JobState.FAILED, job.native, reason=reason, time=time.time()
        )
        self._end(job, status)

    def _remove(self, natives: Sequence[str]) -> None:
        """condor_rm ``natives`` in one call, naming a whole cluster where all its jobs
        are meant."""
        if not natives:
            return
        by_cluster: dict[str, list[str]] = {}
        for native in natives:
            by_cluster.setdefault(native.split(".")[0], []).append(native)
        targets = []
        for cluster, chosen in by_cluster.items():
            whole = self._cluster_sizes.get(cluster) == len(set(chosen))
            targets += [cluster] if whole else chosen
        argv = ["condor_rm", *targets]
        result = self.schedd.run_tolerant(
            argv, min(_CANCEL_TOLERANCE_S, self.settings.outage_tolerance_s)
        )
        if result.returncode != 0:
            logger.warning("condor_rm %s: %s", " ".join(natives), result.stderr.strip())

    def _check_queue(self) -> None:
        """Report LOST the followed jobs that left the queue without an end in the log."""
        self._next_check = time.monotonic() + self.settings.queue_check_interval_s
        try:
            listing = self._listing(fresh=True)
        except LaunchError as exc:
            logger.warning("%s; checking again later", exc)
            return
        self._read_log()  # a job that ended just now left its end in the log first
        for job in [j for j in self._jobs.values() if j.native not in listing]:
            reason = "vanished from the HTCondor queue without an end in the event log"
            self._end(
                job,
                JobStatus(
                    job.spec.job_id, JobState.LOST, job.native, reason=reason, time=time.time()
                ),
            )

    # -- re-attaching ----------------------------------------------------------------------
    def _listing(self, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """The run's jobs in the queue, by ``cluster.proc`` (one condor_q every 5 s at most)."""
        if fresh or self._queue is None or time.monotonic() - self._queue[0] > 5.0:
            constraint = run_constraint(self.run_key())
            jobs = run_jobs(self.schedd, constraint, self.settings.outage_tolerance_s, "of the run")
            self._queue = (time.monotonic(), jobs)
        return self._queue[1]

    def _find_native(self, job_id: str) -> str:
        """The id of ``job_id`` from its submission's manifest (or, if the driver died
        before it noted the cluster, from the queue by the submission's tag)."""
        entry = manifest_entry(self.work_dir, job_id)
        if entry is None:
            return ""
        tag, index, cluster = entry
        if cluster is not None:
            return f"{cluster}.{index}"
        for native, ad in self._listing().items():
            if ad.get("HpoptimTag") == tag_attribute(tag) and native.endswith(f".{index}"):
                return native
        return ""
