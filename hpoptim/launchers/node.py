"""The node-side protocol: what runs next to a job and the files it leaves behind.

Both launchers record a job's end in its run directory the same way, so that a
driver learns it even when it was not there to see it:

* :data:`EXIT_FILE_NAME` (``EXIT_STATUS_FILE_NAME`` of :mod:`hpoptim.contract`) holds
  ``"<status> <signalled>"``: the job's exit status (``128 + N`` for death by
  signal ``N``, as a shell reports it) and ``1`` if the time-limit signal had been
  sent. The Slurm batch script writes it; so does the local supervisor below.
* :data:`PROCESS_FILE_NAME` (local jobs only; declared in :mod:`hpoptim.contract`) holds
  ``"<job pid> <job start> <supervisor pid> <supervisor start> <boot id>"``: who
  runs the job, with each process's start time in clock ticks since boot, so that
  a recycled pid is never mistaken for the job.

Run as a script, this module is the local supervisor: one process, in a session
of its own, that starts the jobs a :class:`~hpoptim.launchers.local.LocalLauncher`
asks for, each in its own session, enforces their time limits, passes signals on
to their process groups and records their exit statuses. It is a child subreaper
(Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): a job's descendant that left the job's
process group and session (``setsid``) and lost its parent becomes the supervisor's
child instead of init's, and is killed when the job ends, at its time limit or on
cancel, before the job's end is recorded. It outlives its driver:
when the driver dies (end of input), it keeps following the jobs it started until
the last one ended, then exits. Requests and replies are JSON lines on its stdin
and stdout; nothing is unpickled.

Standard library only, and of hpoptim only :mod:`hpoptim.contract`: the supervisor is
started as ``python -S -I node.py DRIVER_PID``, which costs one small interpreter per
driver; with ``-I`` nothing but the standard library is on ``sys.path``, so the script
appends the directory that holds the hpoptim package itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time

TYPE_CHECKING = False  # typing, dataclasses and pathlib would double the start-up time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

if not __package__:  # run as a script: find the package this file belongs to
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from hpoptim.contract import EXIT_STATUS_FILE_NAME  # noqa: E402
from hpoptim.contract import PROCESS_FILE_NAME as PROCESS_FILE_NAME  # noqa: E402

EXIT_FILE_NAME = EXIT_STATUS_FILE_NAME
_PROC = "/proc"
_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36
MARKER_VARS = ("HPOPTIM_JOB_ID", "HPOPTIM_RUN_DIR")
"""Variables in every local job's environment that tell its processes from other jobs'."""
PathLike = str | os.PathLike[str]


# -- the exit-status file -------------------------------------------------------------
EXIT_TEMP_NAME = EXIT_FILE_NAME + ".tmp"
"""Where both writers put the record before renaming it into place."""
TEMPORARY_NAMES = (EXIT_TEMP_NAME, EXIT_FILE_NAME + ".job", PROCESS_FILE_NAME + ".tmp")
"""The temporaries this protocol may leave in a run directory when a writer is killed."""


def read_exit_file(run_dir: PathLike) -> tuple[int, bool] | None:
    """The ``(status, signalled)`` recorded in ``run_dir``, if a complete record is there.

    A writer killed between writing :data:`EXIT_TEMP_NAME` and renaming it leaves the
    whole record there: the record is one line written at once, so a temporary that
    ends with its line break is complete, and counts as written.
    """
    record = _exit_record_at(os.path.join(run_dir, EXIT_FILE_NAME), whole_line=False)
    if record is None:
        record = _exit_record_at(os.path.join(run_dir, EXIT_TEMP_NAME), whole_line=True)
    return record


def _exit_record_at(path: str, *, whole_line: bool) -> tuple[int, bool] | None:
    try:
        text = _read(path)
        words = text.split()
        if whole_line and (not text.endswith("\n") or len(words) != 2):
            return None
        return int(words[0]), len(words) > 1 and words[1] == "1"
    except (OSError, ValueError, IndexError):
        return None


def exit_record(status: int, signalled: bool) -> str:
    """The contents of :data:`EXIT_FILE_NAME` for a job's status."""
    return f"{status} {int(signalled)}\n"


def split_status(status: int) -> tuple[int | None, int | None]:
    """``(exit code, signal)`` of a recorded status: ``128 + N`` is death by signal ``N``."""
    if 128 < status <= 128 + 64:
        return None, status - 128
    return status, None


def status_of(returncode: int) -> int:
    """The recorded status of a :class:`subprocess.Popen` return code."""
    return 128 - returncode if returncode < 0 else returncode


# -- who runs a job ----------------------------------------------------------------------
class ProcessId:
    """A process that cannot be confused with a later one of the same pid (a value object)."""

    __slots__ = ("boot", "pid", "start")

    def __init__(self, pid: int, start: int, boot: str) -> None:
        self.pid = pid
        self.start = start  # clock ticks since boot
        self.boot = boot

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcessId) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"ProcessId(pid={self.pid}, start={self.start}, boot={self.boot!r})"

    def _key(self) -> tuple[int, int, str]:
        return self.pid, self.start, self.boot

    def is_alive(self) -> bool:
        """True while this very process runs (neither gone nor a zombie)."""
        return self.pid > 0 and identify(self.pid, live=True) == self


def identify(pid: int, *, live: bool = False) -> ProcessId | None:
    """The identity of the process ``pid`` now has, or None if there is none.

    With ``live``, a zombie (exited, not yet reaped) counts as none.
    """
    try:
        stat = _read(f"{_PROC}/{pid}/stat")
        fields = stat.rsplit(")", 1)[1].split()
        boot = _boot_id()
        if live and fields[0] in ("Z", "X"):
            return None
        return ProcessId(pid, int(fields[19]), boot)
    except (OSError, ValueError, IndexError):
        return None


class Supervised:
    """The contents of :data:`PROCESS_FILE_NAME`: a job and its supervisor."""

    __slots__ = ("job", "supervisor")

    def __init__(self, job: ProcessId, supervisor: ProcessId) -> None:
        self.job = job
        self.supervisor = supervisor


def read_process_file(run_dir: PathLike) -> Supervised | None:
    """Who runs (or ran) the job of ``run_dir``, if its supervisor started it."""
    try:
        words = _read(os.path.join(run_dir, PROCESS_FILE_NAME)).split()
        job_pid, job_start, sup_pid, sup_start = (int(w) for w in words[:4])
        boot = words[4]
    except (OSError, ValueError, IndexError):
        return None
    return Supervised(ProcessId(job_pid, job_start, boot), ProcessId(sup_pid, sup_start, boot))


def _write_process_file(dir_fd: int, job: ProcessId, supervisor: ProcessId) -> None:
    text = f"{job.pid} {job.start} {supervisor.pid} {supervisor.start} {job.boot}\n"
    _write_atomic_at(dir_fd, PROCESS_FILE_NAME, text)


_boot: list[str] = []  # the boot id, read once


def _boot_id() -> str:
    if not _boot:
        _boot.append(_read(_BOOT_ID).strip())
    return _boot[0]


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _write_atomic_at(dir_fd: int, name: str, text: str) -> None:
    """Write ``name`` in the directory ``dir_fd`` (wherever it has been moved since)."""
    tmp = name + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666, dir_fd=dir_fd)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


# -- the supervisor ------------------------------------------------------------------------
class _Job:
    def __init__(
        self, request: Mapping[str, Any], proc: subprocess.Popen[bytes], dir_fd: int
    ) -> None:
        self.id: str = request["job"]
        # The run dir is held open: if it is moved aside (a run started over), the
        # records still go into it, never into a new directory of the same name.
        self.dir_fd = dir_fd
        self.proc = proc
        self.started = time.monotonic()
        limit = request.get("limit_s")
        lead = float(request.get("lead_s") or 0.0)
        self.signal_at = None if limit is None else self.started + max(0.0, limit - lead)
        self.kill_at = None if limit is None else self.started + limit
        self.timeout_signal = int(request.get("signal") or signal.SIGTERM)
        self.signalled = False
        env = request.get("env") or {}
        self.marker = {f"{k}={env[k]}".encode() for k in MARKER_VARS if k in env}


class Supervisor:
    """Starts and follows jobs on behalf of one driver (see the module docstring).

    Requests (one JSON object per line on ``fd_in``):

    * ``{"op": "start", "job", "argv", "cwd", "env", "stdout", "stderr", "run_dir",
      "limit_s", "lead_s", "signal"}``: the job gets the supervisor's environment (the
      driver's, inherited when it started the supervisor) with ``env`` laid over it.
    * ``{"op": "signal", "job", "signal"}``: signal the job's process group.

    Replies on ``fd_out``: ``{"e": "started", "job", "pid"}``,
    ``{"e": "not_started", "job", "error"}``, ``{"e": "ended", "job", "status",
    "signalled"}`` and ``{"e": "error", "message"}``.
    """

    def __init__(self, fd_in: int, fd_out: int, driver: int) -> None:
        self.fd_in, self.fd_out = fd_in, fd_out
        self.jobs: dict[str, _Job] = {}
        self.driver = driver  # the parent's pid: once it differs, the driver died
        self.environ = dict(os.environ)  # what each job's env is laid over
        self.me = identify(os.getpid()) or ProcessId(os.getpid(), 0, "")
        self.driver_gone = False
        self.buffer = b""
        self.received: list[int] = []

    def run(self) -> int:
        """Serve requests until the driver is gone and every job has ended."""
        become_subreaper()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for signum in _FORWARDED:
            signal.signal(signum, lambda signum, _: self.received.append(signum))
        with selectors.DefaultSelector() as sel:
            sel.register(wake_r, selectors.EVENT_READ)
            sel.register(self.fd_in, selectors.EVENT_READ)
            while not (self.driver_gone and not self.jobs):
                for key, _ in sel.select(self._timeout()):
                    if key.fd == wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 4096)
                    elif not self._read_requests():
                        sel.unregister(self.fd_in)
                        self.driver_gone = True
                self._forward_signals()
                self._reap()
                self._enforce_limits()
        return 0

    # -- requests ------------------------------------------------------------------
    def _read_requests(self) -> bool:
        data = os.read(self.fd_in, 1 << 16)
        if not data:
            return False
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            try:
                self._handle(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - reported, and the other jobs go on
                self._reply({"e": "error", "message": f"{type(exc).__name__}: {exc}"})
        return True

    def _handle(self, request: Mapping[str, Any]) -> None:
        if request["op"] == "signal":
            job = self.jobs.get(request["job"])
            if job is not None:
                _killpg(job, int(request["signal"]))
        elif request["op"] == "start":
            self._start(request)

    def _start(self, request: Mapping[str, Any]) -> None:
        if os.getppid() != self.driver:
            return  # the driver died after asking: its successor decides about the job
        dir_fd = -1
        try:
            dir_fd = os.open(request["run_dir"], os.O_RDONLY | os.O_DIRECTORY)
            for name in (EXIT_FILE_NAME, PROCESS_FILE_NAME, *TEMPORARY_NAMES):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
            with open(request["stdout"], "ab") as out, open(request["stderr"], "ab") as err:
                proc = subprocess.Popen(
                    request["argv"],
                    cwd=request["cwd"],
                    env={**self.environ, **request["env"]},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            if dir_fd >= 0:
                os.close(dir_fd)
            self._reply({"e": "not_started", "job": request["job"], "error": str(exc)})
            return
        job = _Job(request, proc, dir_fd)
        self.jobs[job.id] = job
        ident = identify(proc.pid) or ProcessId(proc.pid, 0, self.me.boot)
        with contextlib.suppress(OSError):
            _write_process_file(dir_fd, ident, self.me)
        self._reply({"e": "started", "job": job.id, "pid": proc.pid})

    def _reply(self, message: Mapping[str, Any]) -> None:
        if self.fd_out < 0:
            return
        try:
            os.write(self.fd_out, json.dumps(message).encode() + b"\n")
        except OSError:  # the driver is gone; the exit files tell its successor
            self.fd_out = -1

    # -- following -------------------------------------------------------------------
    def _timeout(self) -> float | None:
        times = [t for j in self.jobs.values() for t in (j.signal_at, j.kill_at) if t is not None]
        return None if not times else max(0.0, min(times) - time.monotonic())

    def _forward_signals(self) -> None:
        received, self.received = self.received, []
        for signum in received:
            for job in self.jobs.values():
                _killpg(job, signum)

    def _reap(self) -> None:
        for job in list(self.jobs.values()):
            with contextlib.suppress(ChildProcessError):  # not ours: cannot happen
                if os.waitid(os.P_PID, job.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                    continue  # still running
            # The unreaped leader keeps its group id reserved: kill what it left behind.
            _killpg(job, signal.SIGKILL)
            status = status_of(job.proc.wait())
            del self.jobs[job.id]
            self._kill_strays(job)
            with contextlib.suppress(OSError):
                _write_atomic_at(job.dir_fd, EXIT_FILE_NAME, exit_record(status, job.signalled))
            os.close(job.dir_fd)
            self._reply({"e": "ended", "job": job.id, "status": status, "signalled": job.signalled})

        self._reap_strays()

    def _reap_strays(self) -> None:
        """Reap the orphans this subreaper inherited that have exited (never a job)."""
        leaders = {job.proc.pid for job in self.jobs.values()}
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in leaders:
                return  # a job's leader is reaped by _reap, with its status
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    def _kill_strays(self, ended: _Job) -> None:
        """SIGKILL the descendants of ``ended`` that outlived it outside its group.

        Its orphans are now the supervisor's children; each is ``ended``'s if its
        environment holds ``ended``'s marker, another job's if it holds another
        marker, and, without a marker, killed only once no job runs any more.
        """
        for _ in range(100):  # each round kills what the last one orphaned
            parents = _parents()
            leaders = {job.proc.pid for job in self.jobs.values()}
            roots = [
                pid
                for pid, parent in parents.items()
                if parent == os.getpid() and pid not in leaders and self._owns(ended, pid)
            ]
            if not roots:
                return
            for pid in _with_descendants(roots, parents):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for pid in roots:  # our children: wait until the kill took
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def _owns(self, ended: _Job, pid: int) -> bool:
        try:
            with open(f"{_PROC}/{pid}/environ", "rb") as fh:
                entries = set(fh.read().split(b"\0"))
        except OSError:
            return False
        if ended.marker and ended.marker <= entries:
            return True
        if any(e.startswith(MARKER_VARS[0].encode() + b"=") for e in entries):
            return False  # another job's
        return not self.jobs

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for job in self.jobs.values():
            if job.kill_at is not None and now >= job.kill_at:
                job.signalled = True
                _killpg(job, signal.SIGKILL)
                job.kill_at = job.signal_at = None
            elif job.signal_at is not None and now >= job.signal_at:
                job.signalled = True
                _killpg(job, job.timeout_signal)
                job.signal_at = None


def _killpg(job: _Job, signum: int) -> None:
    """Signal the job's group; safe while the leader is unreaped (it holds the group id)."""
    if job.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.proc.pid, signum)


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux); False where that is not possible."""
    try:
        import ctypes  # only here: a few milliseconds of the supervisor's start

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (ImportError, OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    """``{pid: parent pid}`` of every live process (zombies left out)."""
    found = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            fields = _read(f"{_PROC}/{name}/stat").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            found[int(name)] = int(fields[1])
    return found


def _with_descendants(roots: list[int], parents: Mapping[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def main(argv: list[str]) -> int:
    """Run the supervisor on stdin/stdout, the pipes of the driver whose pid is ``argv[0]``."""
    return Supervisor(sys.stdin.fileno(), sys.stdout.fileno(), int(argv[0])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
