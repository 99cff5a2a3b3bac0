"""The stand-in schedd and execute machine: starts, follows and kills the queued jobs.

One loop, every 20 ms, under the queue's lock: applies removals and injected faults,
records the ends of jobs, and starts idle jobs while their ``request_cpus`` fit in the
free slots, writing each event to the job's user log. A job's processes are all those
of its session, as HTCondor tracks a job's process family; removal, holds and
evictions send SIGTERM to them, then SIGKILL after ``KILL_GRACE_S``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from fakecondor import (
    COMPLETED,
    HELD,
    IDLE,
    REMOVED,
    RUNNING,
    _bytes,
    _usage,
    locked,
    split_arguments,
    terminated_body,
    write_event,
)

KILL_GRACE_S = 1.0
_FAULTS = ("_remove", "_vanish", "_hold", "_evict")
_HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618>"


def session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:
                    pids.append(int(entry))
    return pids


def kill_session(sid: int, signum: int) -> None:
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


class Schedd:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kill_at: dict[str, float] = {}

    def step(self, state: dict[str, Any]) -> None:
        jobs = state["jobs"]
        for native, ad in list(jobs.items()):
            proc = self.procs.get(native)
            fault = next((f for f in _FAULTS if ad.get(f)), None)
            if proc is not None and proc.poll() is None:
                if fault:
                    self.stop(native, proc)
                continue
            if proc is not None:
                del self.procs[native]
                self.kill_at.pop(native, None)
                kill_session(proc.pid, signal.SIGKILL)
                if fault is None:
                    self.ended(state, native, ad, proc.returncode)
                    continue
            self.fault(state, native, ad, fault, was_running=proc is not None)
        self.start_idle(jobs, state["envs"])

    def stop(self, native: str, proc: subprocess.Popen[bytes]) -> None:
        if native not in self.kill_at:
            self.kill_at[native] = time.monotonic() + KILL_GRACE_S
            kill_session(proc.pid, signal.SIGTERM)
        elif time.monotonic() >= self.kill_at[native]:
            kill_session(proc.pid, signal.SIGKILL)

    def ended(self, state: dict[str, Any], native: str, ad: dict[str, Any], code: int) -> None:
        write_event(ad, 5, "Job terminated.", terminated_body(code))
        ad["JobStatus"] = COMPLETED
        ad["ExitBySignal"] = code < 0
        ad["ExitCode" if code >= 0 else "ExitSignal"] = abs(code)
        state["history"].append(ad)
        del state["jobs"][native]

    def fault(
        self,
        state: dict[str, Any],
        native: str,
        ad: dict[str, Any],
        fault: str | None,
        *,
        was_running: bool,
    ) -> None:
        if fault == "_remove":
            write_event(ad, 9, "Job was aborted.", "\tvia condor_rm (by user tester)\n")
            ad["JobStatus"] = REMOVED
            state["history"].append(ad)
            del state["jobs"][native]
        elif fault == "_vanish":
            del state["jobs"][native]
        elif fault == "_hold":
            reason = ad.pop("_hold")
            reason = "Job held by the test" if reason is True else str(reason)
            write_event(ad, 12, "Job was held.", f"\t{reason}\n\tCode 1 Subcode 0\n")
            ad.update(JobStatus=HELD, HoldReason=reason, HoldReasonCode=1)
        elif fault == "_evict":
            ad.pop("_evict")
            if was_running:
                body = "\t(0) Job was not checkpointed.\n" + _usage(("Run Remote", "Run Local"))
                write_event(ad, 4, "Job was evicted.", body + _bytes(False))
                ad["JobStatus"] = IDLE

    def start_idle(self, jobs: dict[str, Any], envs: dict[str, Any]) -> None:
        used = sum(jobs[n]["RequestCpus"] for n in self.procs if n in jobs)
        for native, ad in jobs.items():
            if ad["JobStatus"] != IDLE or native in self.procs:
                continue
            if ad["RequestCpus"] > self.slots - used:
                continue
            try:
                with open(ad["Out"], "wb") as out, open(ad["Err"], "wb") as err:
                    proc = subprocess.Popen(
                        [ad["Cmd"], *split_arguments(ad["Args"])],
                        cwd=ad["Iwd"],
                        env=envs[str(ad["ClusterId"])],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        start_new_session=True,
                    )
            except OSError as exc:
                reason = f"Error from slot1@localhost: Failed to execute '{ad['Cmd']}': {exc}"
                write_event(ad, 12, "Job was held.", f"\t{reason}\n\tCode 6 Subcode 2\n")
                ad.update(JobStatus=HELD, HoldReason=reason, HoldReasonCode=6)
                continue
            self.procs[native] = proc
            used += ad["RequestCpus"]
            ad["JobStatus"] = RUNNING
            ad["NumJobStarts"] += 1
            write_event(ad, 1, f"Job executing on host: {_HOST}")

    def shutdown(self) -> None:
        for proc in self.procs.values():
            kill_session(proc.pid, signal.SIGKILL)
            proc.wait()


def serve(directory: Path, slots: int) -> int:
    """Run the schedd on the state in ``directory`` until SIGTERM."""
    schedd = Schedd(slots)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stop.append(signum))
    (directory / "schedd.ready").touch()
    while not stop:
        with locked(directory) as state:
            schedd.step(state)
        time.sleep(0.02)
    schedd.shutdown()
    return 0
