"""The job side of an HTCondor job: run one task, enforce its time limit, record its end.

HTCondor starts ``python -S -I condor_job.py TASK_FILE`` for each job of a submission;
``TASK_FILE`` (JSON, written by the driver before it submitted) holds the job's argv,
environment, working directory, run directory and time limit. This script

* starts the job in a process group of its own, its stdout/stderr appended to the
  run directory's files, its environment the one HTCondor gave (``getenv``) with the
  task's laid over it;
* sends ``signal`` ``lead_s`` seconds before ``limit_s`` and SIGKILL at ``limit_s``
  (HTCondor has no signal before a limit, so the job side keeps the contract every
  launcher keeps);
* passes on the signals HTCondor sends (SIGTERM from ``condor_rm``, a hold or an
  eviction) to the job's group;
* records the job's exit status in the run directory (``"<status> <signalled>"``,
  the protocol of :mod:`hpoptim.launchers.node`) and exits with it.

Standard library only, and no import of hpoptim: it runs on the execute node.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_NO_PROGRAM = 127


def _write_atomic_at(dir_fd: int, name: str, text: str) -> None:
    tmp = name + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666, dir_fd=dir_fd)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _start(task: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    run_dir = task["run_dir"]
    with (
        open(os.path.join(run_dir, task["stdout"]), "ab") as out,
        open(os.path.join(run_dir, task["stderr"]), "ab") as err,
    ):
        try:
            return subprocess.Popen(
                task["argv"],
                cwd=task["cwd"],
                env={**os.environ, **task["env"]},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=os.setpgrp,  # a group of its own, in HTCondor's session
            )
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            err.write(f"hpoptim: cannot start {task['argv'][0]!r}: {exc}\n".encode())
            return None


def _killpg(proc: subprocess.Popen[bytes], signum: int) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)


def _install_handlers() -> tuple[int, list[int]]:
    """Route SIGCHLD and the forwarded signals to a wake-up pipe; return its read end and
    the list the forwarded signals are noted in. Done before the job starts, so that
    no signal is missed."""
    received: list[int] = []
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for forwarded in _FORWARDED:
        signal.signal(forwarded, lambda signum, _: received.append(signum))
    return wake_r, received


def _follow(
    proc: subprocess.Popen[bytes], task: dict[str, Any], wake: int, received: list[int]
) -> bool:
    """Wait for the job, enforcing its limit; return whether the limit's signal was sent."""
    limit = task.get("limit_s")
    started = time.monotonic()
    signal_at = None if limit is None else started + max(0.0, limit - float(task["lead_s"]))
    kill_at = None if limit is None else started + limit
    signalled = False
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        times = [t for t in (signal_at, kill_at) if t is not None]
        timeout = None if not times else max(0.0, min(times) - time.monotonic())
        select.select([wake], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            os.read(wake, 4096)
        for signum in received:
            _killpg(proc, signum)
        received.clear()
        now = time.monotonic()
        if kill_at is not None and now >= kill_at:
            signalled = True
            _killpg(proc, signal.SIGKILL)
            kill_at = signal_at = None
        elif signal_at is not None and now >= signal_at:
            signalled = True
            _killpg(proc, int(task["signal"]))
            signal_at = None
    return signalled


def main(argv: list[str]) -> int:
    """Run the task of ``argv[0]``; return its status (``128 + N``: killed by signal N)."""
    with open(argv[0], encoding="utf-8") as fh:
        task = json.load(fh)
    dir_fd = os.open(task["run_dir"], os.O_RDONLY | os.O_DIRECTORY)
    exit_name = task["exit_file"]
    with contextlib.suppress(FileNotFoundError):  # left by an earlier (evicted) attempt
        os.unlink(exit_name, dir_fd=dir_fd)
    signalled = False
    wake, received = _install_handlers()
    proc = _start(task)
    if proc is None:
        status = _NO_PROGRAM
    else:
        signalled = _follow(proc, task, wake, received)
        # the unreaped leader keeps its group id reserved: kill what it left behind
        _killpg(proc, signal.SIGKILL)
        code = proc.wait()
        status = 128 - code if code < 0 else code
    _write_atomic_at(dir_fd, exit_name, f"{status} {int(signalled)}\n")
    os.close(dir_fd)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
