"""The driver's side of local supervision: the supervisor's pipe, and old processes.

:class:`SupervisorConnection` starts a supervisor (:mod:`hpoptim.launchers.node`)
and talks to it. The functions below deal with processes an earlier driver left:
they are told apart by pid, start time and boot id (:class:`~.node.ProcessId`) or,
for jobs no supervisor recorded, by markers in their environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from hpoptim.contract import ENV_JOB_ID, ENV_RUN_DIR
from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobSpec
from hpoptim.launchers import node
from hpoptim.launchers.node import ProcessId, read_exit_file
from hpoptim.log import get_logger

logger = get_logger(__name__)

JOB_ID_VAR = ENV_JOB_ID
RUN_DIR_VAR = ENV_RUN_DIR
_PROC = "/proc"
_RECORD_WAIT_S = 5.0  # how long a supervisor may take to record the end of a job


class SupervisorConnection:
    """The driver's end of one supervisor process (:mod:`hpoptim.launchers.node`).

    A reader thread passes each reply to ``on_message`` and, once the supervisor
    has exited, calls ``on_exit``; both get this connection first.
    """

    def __init__(
        self,
        on_message: Callable[[SupervisorConnection, Mapping[str, Any]], None],
        on_exit: Callable[[SupervisorConnection], None],
    ) -> None:
        self._write_lock = threading.Lock()
        self.alive = True
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-I", node.__file__, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal is for the driver alone
        )
        self._on_message, self._on_exit = on_message, on_exit
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def send(self, requests: Iterable[Mapping[str, Any]]) -> None:
        """Send requests; a supervisor that died meanwhile is reported by the reader."""
        data = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
        assert self.proc.stdin is not None  # a pipe
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def close(self, *, wait: bool = True) -> None:
        """End the input; the supervisor exits once its jobs have ended.

        With ``wait``, return once it has exited (at most 30 s).
        """
        assert self.proc.stdin is not None  # a pipe
        with self._write_lock, contextlib.suppress(OSError):
            self.proc.stdin.close()
        if wait:
            self._reader.join(timeout=30.0)

    def _read(self) -> None:
        assert self.proc.stdout is not None  # a pipe
        try:
            for line in self.proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    logger.error("local job supervisor: unreadable reply %r", line[:200])
                    continue
                self._on_message(self, message)
        finally:
            self.proc.stdout.close()
            self.proc.wait()
            self.alive = False
            self._on_exit(self)


def signal_group(proc: ProcessId, signum: int) -> None:
    """Signal the process group led by ``proc`` if ``proc`` still exists."""
    if proc.is_alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)


def wait_until_gone(proc: ProcessId, supervisor: ProcessId) -> None:
    """Block until ``proc`` has exited, or its ``supervisor`` has (then nobody records it)."""
    fds = []
    for who in (proc, supervisor):
        with contextlib.suppress(OSError):
            fds.append(os.pidfd_open(who.pid))  # readable once that process exited
    try:
        while proc.is_alive() and supervisor.is_alive():
            if len(fds) == 2:
                select.select(fds, [], [], 1.0)
            else:
                time.sleep(0.05)
    finally:
        for fd in fds:
            os.close(fd)


def wait_for_record(run_dir: Path, supervisor: ProcessId) -> tuple[int, bool] | None:
    """The exit status recorded in ``run_dir``, waiting while ``supervisor`` may still write it."""
    deadline = time.monotonic() + _RECORD_WAIT_S
    while (record := read_exit_file(run_dir)) is None:
        if not supervisor.is_alive() or time.monotonic() > deadline:
            return read_exit_file(run_dir)
        time.sleep(0.01)
    return record


def stop_supervised_jobs(jobs_dir: Path, grace_s: float = 5.0) -> int:
    """Stop every job under ``jobs_dir`` that a supervisor started and that still runs.

    Each such job left its ``job_process`` record in its run directory and has not
    recorded its end. Its process group gets SIGTERM, then SIGKILL after ``grace_s``.

    Returns:
        How many jobs were stopped.

    Raises:
        LaunchError: Some of them do not die.
    """
    live = []
    for record in sorted(jobs_dir.rglob(node.PROCESS_FILE_NAME)) if jobs_dir.is_dir() else []:
        supervised = node.read_process_file(record.parent)
        if (
            supervised is not None
            and read_exit_file(record.parent) is None
            and supervised.job.is_alive()
        ):
            live.append(supervised.job)
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        for proc in live:
            signal_group(proc, signum)
        deadline = time.monotonic() + wait_s
        while any(p.is_alive() for p in live) and time.monotonic() < deadline:
            time.sleep(0.05)
    still = [p.pid for p in live if p.is_alive()]
    if still:
        raise LaunchError(f"jobs of the previous run do not die (pids {still})")
    return len(live)


# -- processes of earlier drivers without a supervisor record -------------------------------
def kill_leftovers(spec: JobSpec, native_id: str) -> None:
    """Kill processes of ``spec`` that no supervisor recorded, found by their environment.

    Raises:
        LaunchError: they do not die.
    """
    marker = _marker(spec)
    if not os.path.isdir(_PROC):
        logger.warning("cannot look for old processes of job %s: no %s", spec.job_id, _PROC)
        return
    hint = [int(native_id)] if native_id.isdigit() else []
    pids = [p for p in hint if _environ_matches(p, marker)] or _find_processes(marker)
    if not pids:
        return
    logger.info("killing processes %s of job %s left by an earlier driver", pids, spec.job_id)
    deadline = time.monotonic() + 10.0
    while pids:
        for pid in pids:
            _kill_verified(pid, marker)
        if time.monotonic() > deadline:
            raise LaunchError(f"processes {pids} of job {spec.job_id} do not die")
        time.sleep(0.01)
        pids = _find_processes(marker)


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
