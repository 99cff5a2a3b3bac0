"""Cost of checking every journal event on load, at the scale of a 10,000-job run.

Writes a synthetic journal of N settings (asked, submitted, native_ids, ended,
setting_finished: 5 events each) and times (CPU seconds of this process, which a
shared machine disturbs less than wall time), best of ROUNDS:

* read:     parsing the lines only (``read_journal``), no checks;
* replay:   parsing + folding into a RunHistory (what resume does after loading);
* load:     ``load_events`` (parse + check each event by folding it into a history):
            what ``hpoptim report`` does in total (it reports from that history);
* load+replay: what ``hpoptim resume`` does in total before it starts the loop.

Goal: load+replay <= 2 s at N = 10,000 (the resume_10k.py replay goal).
Usage: python benchmarks/journal_load.py [N] [ROUNDS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hpoptim.state.events import EventKind
from hpoptim.state.history import Lifecycle, RunHistory, load_events
from hpoptim.state.setting import SettingResult
from hpoptim.state.storage import Journal, read_journal


def write_journal(path: Path, n: int) -> None:
    journal = Journal(path)
    journal.open()
    journal.append(EventKind.RUN_STARTED, seed=1, checkout={}, t=0.0)
    for sid in range(n):
        job = f"{sid}_0.0-0"
        journal.append(EventKind.ASKED, sid=sid, params={"x": sid / n, "name": f"s{sid}"})
        journal.append(
            EventKind.SUBMITTED, job=job, sid=sid, rerun=0, it=0, att=0, dir=f"/r/{sid}", t=1.0
        )
        journal.append(EventKind.NATIVE_IDS, ids={job: str(1000 + sid)})
        journal.append(
            EventKind.ENDED,
            job=job,
            state="completed",
            exit_code=0,
            signal=None,
            reason="exit code 0",
            metrics={"loss": float(sid)},
            problem="",
            stderr="",
            t=2.0,
        )
        result = SettingResult(float(sid), 0.0, 1, 0, {"loss": float(sid)})
        journal.append(EventKind.SETTING_FINISHED, sid=sid, result=result.to_dict())
    journal.close()


def best_of(rounds: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    lifecycle = Lifecycle("loss")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        write_journal(path, n)

        def replay() -> None:
            RunHistory(lifecycle).replay(read_journal(path))

        def load_replay() -> None:
            RunHistory(lifecycle).replay(load_events(path, lifecycle))

        rows = {
            "read": best_of(rounds, lambda: list(read_journal(path))),
            "replay": best_of(rounds, replay),
            "load": best_of(rounds, lambda: load_events(path, lifecycle)),
            "load+replay": best_of(rounds, load_replay),
        }
    print(f"N = {n} settings, {5 * n + 1} events, best of {rounds}")
    for name, seconds in rows.items():
        print(f"  {name:<12} {seconds:7.3f} s")
    print(f"  check overhead on resume: {rows['load+replay'] - rows['replay']:.3f} s")


if __name__ == "__main__":
    main()
