from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpoptim.errors import StorageError
from hpoptim.state.events import EventKind
from hpoptim.state.storage import (
    Journal,
    LockHolder,
    RunLock,
    probe_lock,
    read_journal,
    write_text_atomic,
)


def test_journal_appends_and_reads_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.open()
    for i in range(5):
        journal.append(EventKind.ASKED, sid=i, params={"x": i / 3})
    journal.close()
    events = list(read_journal(tmp_path / "j.jsonl"))
    assert [e["sid"] for e in events] == [0, 1, 2, 3, 4]
    assert events[1]["params"] == {"x": 1 / 3}  # full float precision


@pytest.mark.parametrize(
    ("tail", "n_expected"),
    [
        pytest.param(b'{"e":"asked","sid":2', 2, id="torn-json"),
        pytest.param(b'{"e":"asked","sid":2}', 2, id="complete-json-no-newline"),
        pytest.param(b"", 2, id="clean"),
    ],
)
def test_torn_last_line_is_ignored_and_cut_on_reopen(
    tmp_path: Path, tail: bytes, n_expected: int
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"e":"asked","sid":0}\n{"e":"asked","sid":1}\n' + tail)
    assert [e["sid"] for e in read_journal(path)] == list(range(n_expected))
    journal = Journal(path)
    journal.open()
    journal.append(EventKind.ASKED, sid=99)
    journal.close()
    assert [e["sid"] for e in read_journal(path)] == [*range(n_expected), 99]


def test_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"e":"a"}\nnot json\n{"e":"b"}\n')
    with pytest.raises(StorageError, match="journal line 2 is corrupt"):
        list(read_journal(path))


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    assert list(read_journal(tmp_path / "none.jsonl")) == []


def test_journal_survives_sigkill_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from hpoptim.state.events import EventKind\n"
        "from hpoptim.state.storage import Journal\n"
        "j = Journal(Path(sys.argv[1])); j.open()\n"
        "for i in range(1000): j.append(EventKind.ASKED, sid=i)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert [e["sid"] for e in read_journal(path)] == list(range(1000))


def _hold_lock(path: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    lock = RunLock(Path(path))
    lock.acquire()
    ready.set()
    signal.pause()


def test_second_driver_is_refused_until_the_holder_dies(tmp_path: Path) -> None:
    lock_path = tmp_path / "run" / ".lock"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(lock_path), ready))
    holder.start()
    try:
        assert ready.wait(10)
        host = socket.gethostname()
        with pytest.raises(
            StorageError, match=rf"another hpoptim driver \(pid {holder.pid}\) on {host} "
        ):
            RunLock(lock_path).acquire()
        seen = probe_lock(lock_path)
        assert seen is not None
        assert (seen.pid, seen.host) == (holder.pid, host)
        assert seen.since == pytest.approx(time.time(), abs=60)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # type: ignore[arg-type]
        holder.join()
    assert probe_lock(lock_path) is None  # the holder died; its file is still there
    with RunLock(lock_path):  # released by the holder's death
        assert LockHolder.parse(lock_path.read_text()).pid == os.getpid()
        assert probe_lock(lock_path) == LockHolder.parse(lock_path.read_text())


@pytest.mark.parametrize(
    ("text", "holder"),
    [
        pytest.param("4242", LockHolder(4242), id="bare-pid-of-older-versions"),
        pytest.param('{"pid": 7, "host": "n1", "since": 5}', LockHolder(7, "n1", 5.0), id="json"),
        pytest.param("", LockHolder(None), id="empty"),
    ],
)
def test_lock_file_content(text: str, holder: LockHolder) -> None:
    assert LockHolder.parse(text) == holder


def test_probe_lock_holds_nothing(tmp_path: Path) -> None:
    assert probe_lock(tmp_path / "missing") is None
    lock_path = tmp_path / ".lock"
    lock_path.write_text("1")  # an old-format file naming a pid, nobody holds it
    assert probe_lock(lock_path) is None
    with RunLock(lock_path):  # probing left no lock behind
        pass


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.json"
    write_text_atomic(target, json.dumps({"v": 1}))
    write_text_atomic(target, json.dumps({"v": 2}))
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_journal_is_private_and_sync_reaches_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal holds stderr tails of failed jobs: owner-only whatever the umask."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    old = os.umask(0o022)
    try:
        journal = Journal(tmp_path / "j.jsonl")
        journal.open()
    finally:
        os.umask(old)
    assert (tmp_path / "j.jsonl").stat().st_mode & 0o777 == 0o600
    n_dir_syncs = len(synced)  # the new file's directory entry
    assert n_dir_syncs == 1
    journal.append(EventKind.ASKED, sid=0)
    journal.append(EventKind.ASKED, sid=1)
    assert len(synced) == n_dir_syncs  # appending alone does not fsync
    journal.sync()
    journal.sync()  # nothing new: no second fsync
    assert len(synced) == n_dir_syncs + 1
    journal.append(EventKind.ASKED, sid=2)
    journal.close()  # close syncs what is pending
    assert len(synced) == n_dir_syncs + 2
    assert journal.n_syncs == 2


def test_a_world_readable_journal_of_an_older_run_becomes_private(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"e":"asked","sid":0}\n')
    path.chmod(0o644)
    journal = Journal(path)
    journal.open()
    journal.close()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("reader", ["acquire", "probe"])
def test_a_holder_that_has_not_written_its_record_yet_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    """A driver writes who it is just after taking the lock: one that reads the lock
    file in between waits for that record instead of saying "pid unknown"."""
    lock_path = tmp_path / ".lock"
    with open(lock_path, "a+", encoding="utf-8") as taken:
        fcntl.flock(taken.fileno(), fcntl.LOCK_EX)  # its record is not written yet
        parse = LockHolder.parse
        seen: list[str] = []

        def the_holder_writes_after_this_read(text: str) -> LockHolder:
            if not seen:
                taken.write(json.dumps({"pid": 4242, "host": socket.gethostname()}))
                taken.flush()
            seen.append(text)
            return parse(text)

        monkeypatch.setattr(LockHolder, "parse", the_holder_writes_after_this_read)
        if reader == "acquire":
            with pytest.raises(StorageError, match=r"another hpoptim driver \(pid 4242\)"):
                RunLock(lock_path).acquire()
        else:
            seen_holder = probe_lock(lock_path)
            assert seen_holder is not None
            assert seen_holder.pid == 4242
    assert seen[0] == ""  # the first read came before the record
