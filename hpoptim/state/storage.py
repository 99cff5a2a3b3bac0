"""The results directory: its file names, its lock and its append-only journal.

The journal is a JSON-lines file: one event per line, appended and flushed at once,
so a driver killed at any moment can be resumed by replaying it. Before the driver
acts outside its own process on what it journaled (creates a job directory, submits
or cancels jobs), it calls :meth:`Journal.sync`, which fsyncs the file: the journal
then survives a power loss up to the last event acted on. Events that only record
what happened (a job ended, a setting finished) are fsynced with the next action,
so a burst of them costs one fsync; losing them in a crash loses nothing, as a
resumed driver learns them again from the jobs' run directories. A torn last line
(the driver died mid-write) is ignored on read.

File modes: derived results are created like any new file under the umask; the
journal (failed jobs' stderr tails) and files written with ``private=True`` (the
saved config, with its environment values) are owner-only. A failed write raises
an ``OSError`` that names the file, also where the operating system names none.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hpoptim.errors import StorageError
from hpoptim.log import get_logger
from hpoptim.state.events import EventKind, encode

logger = get_logger(__name__)

JOURNAL_VERSION = 1


@dataclass(frozen=True)
class ResultsLayout:
    """Every path inside one run's results directory."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def log_file(self) -> Path:
        return self.root / "hpoptim.log"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def checkout_dir(self) -> Path:
        return self.root / "checkout"

    @property
    def jobs_csv(self) -> Path:
        return self.root / "jobs.csv"

    @property
    def settings_csv(self) -> Path:
        return self.root / "settings.csv"

    @property
    def best_params(self) -> Path:
        return self.root / "best_params.json"

    @property
    def best_jobs_dir(self) -> Path:
        return self.root / "best_jobs"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    def setting_dir(self, setting_id: int) -> Path:
        return self.jobs_dir / str(setting_id)


PRIVATE_MODE = 0o600
"""Mode of files that may hold secrets (the journal, the log, the saved config)."""
SHARED_MODE = 0o666
"""Mode asked for derived results; the umask takes its share, as for any new file."""


def write_text_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Replace ``path`` by ``text`` so that readers see the old or the new file, whole.

    The new file gets the mode any new file gets under the process umask, or
    owner-only access (0600) if ``private``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _create_temp(path, PRIVATE_MODE if private else SHARED_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` about ``path`` (a failed write on an open file names no path)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _create_temp(path: Path, mode: int) -> tuple[Path, int]:
    """A new, exclusively created temporary file beside ``path`` (mode minus the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, mode)
        except FileExistsError:
            continue


def write_json_atomic(path: Path, data: Any, *, private: bool = False) -> None:
    """Write ``data`` as indented JSON, atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n", private=private)


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a results directory's lock, from the lock file.

    Attributes:
        pid: The driver's process id (None if the file does not say).
        host: The machine it runs on ("" for lock files written by hpoptim before
            0.2, which held only the pid).
        since: When it took the lock (epoch seconds; None if unknown).
    """

    pid: int | None
    host: str = ""
    since: float | None = None

    @classmethod
    def parse(cls, text: str) -> LockHolder:
        """Read a lock file's content: a JSON object, or a bare pid (older versions)."""
        text = text.strip()
        with contextlib.suppress(ValueError):
            data = json.loads(text)
            if isinstance(data, Mapping):
                pid, since = data.get("pid"), data.get("since")
                return cls(
                    int(pid) if isinstance(pid, int) else None,
                    str(data.get("host") or ""),
                    float(since) if isinstance(since, (int, float)) else None,
                )
        return cls(int(text) if text.isdigit() else None)

    def describe(self) -> str:
        pid = "pid unknown" if self.pid is None else f"pid {self.pid}"
        return f"{pid} on {self.host}" if self.host else pid

    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def open_regular(path: Path) -> IO[bytes]:
    """Open ``path`` for reading, refusing anything but a regular file.

    The file is opened without blocking (a FIFO put in place of a journal would
    otherwise wait for a writer forever) and checked on the open descriptor.

    Raises:
        FileNotFoundError: There is no such file.
        StorageError: It is a FIFO, a device, a socket or a directory.
        OSError: It cannot be opened.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise StorageError(f"{path} is {kind}, not a regular file; remove it", path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def probe_lock(path: Path) -> LockHolder | None:
    """The driver that holds the lock at ``path`` now, or None if none does.

    Writes nothing and never keeps the lock. A holder on this machine whose process
    is gone is known dead without touching the lock; otherwise a non-blocking shared
    lock is tried and at once released.
    """
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        return None
    with fh:
        holder = LockHolder.parse(fh.read().decode("utf-8", "replace"))
        if holder.on_this_host() and holder.pid is not None and not _pid_alive(holder.pid):
            return None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return holder if holder.pid is not None else _read_holder(fh)
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def fsync_dir(path: Path) -> None:
    """fsync the directory ``path`` so that names created or moved in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on a results directory, released when the holder dies.

    The lock file says who holds it: ``{"pid": ..., "host": ..., "since": ...}``
    (see :class:`LockHolder`, which also reads the bare pid older versions wrote).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StorageError` naming the holder.

        Directories it creates on the way are removed again if the lock file
        cannot be created (a name over 255 bytes leaves no empty ``results/``).
        """
        missing = [d for d in self.path.parents if not os.path.lexists(d)]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        except OSError:
            for directory in missing:  # deepest first; only the empty ones go
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fh)
            fh.close()
            pid = "unknown" if holder.pid is None else holder.pid
            host = f" on {holder.host}" if holder.host else ""
            raise StorageError(
                f"another hpoptim driver (pid {pid}){host} is using {self.path.parent}; "
                "wait for it to finish or stop it first",
                self.path.parent,
            ) from None
        fh.seek(0)
        fh.truncate()
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        fh.write(json.dumps(me))
        fh.flush()
        self._fh = fh

    def renew(self) -> None:
        """Lock a new file at :attr:`path`, then let go of the old one.

        For a locked directory that was moved away (``--overwrite``): the lock moved
        with it, and the new directory at the old place must be locked before the
        old lock is dropped, so that no other driver slips in between.

        Raises:
            StorageError: Another driver took the new lock first (the old one is
                released all the same).
        """
        old, self._fh = self._fh, None
        try:
            self.acquire()
        finally:
            if old is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(old.fileno(), fcntl.LOCK_UN)
                old.close()

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_HOLDER_WRITE_S = 1.0
"""How long a driver that just took the lock may take to write who it is."""


def _read_holder(fh: IO[str] | IO[bytes]) -> LockHolder:
    """Who holds the lock of ``fh``. A driver writes that right after taking the lock,
    so a record without a pid (empty: just taken) is read again for a moment."""
    deadline = time.monotonic() + _HOLDER_WRITE_S
    while True:
        fh.seek(0)
        text = fh.read()
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        holder = LockHolder.parse(text)
        if holder.pid is not None or time.monotonic() > deadline:
            return holder
        time.sleep(0.01)


class Journal:
    """Append-only JSON-lines event log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._dirty = False
        self.n_syncs = 0
        """How often :meth:`sync` reached the disk (for tests and benchmarks)."""

    def open(self) -> None:
        """Open for appending; a torn last line left by a killed writer is cut off."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        created = not self.path.exists()
        # owner-only: events hold the stderr tails of failed jobs, which may show secrets
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # also a journal written by an older version
        self._fh = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._dirty = False
        if created:
            fsync_dir(self.path.parent)  # the new file's name must survive a crash too

    @property
    def is_open(self) -> bool:
        return self._fh is not None

    def append(self, event: EventKind, **fields: Any) -> dict[str, Any]:
        """Append one event and flush it to the operating system; return the record."""
        if self._fh is None:
            raise StorageError("journal is not open for writing", self.path)
        record, line = encode(event, fields)
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
            self._dirty = True
        except OSError as exc:
            # e.g. a full disk: stop writing (a torn line is cut on the next open)
            fh, self._fh = self._fh, None
            with contextlib.suppress(OSError):
                fh.close()
            raise _naming(exc, self.path) from exc
        return record

    def sync(self) -> None:
        """Make every event appended so far survive a power loss (fsync; a no-op if
        nothing was appended since the last call). Call it before acting on them."""
        if self._fh is None or not self._dirty:
            return
        try:
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise _naming(exc, self.path) from exc
        self._dirty = False
        self.n_syncs += 1

    def close(self) -> None:
        """Sync and close."""
        if self._fh is not None:
            try:
                self.sync()
            finally:
                self._fh.close()
                self._fh = None

    def read(self) -> Iterator[dict[str, Any]]:
        """Yield the events in order, ignoring a torn (incomplete) last line."""
        return read_journal(self.path)


@dataclass(frozen=True)
class JournalLine:
    """One complete line of a journal.

    Attributes:
        lineno: Its line number (from 1).
        event: The event, or ``None`` if the line is not a JSON object.
        text: The line as read (without its newline).
        last: No complete line follows it.
    """

    lineno: int
    event: dict[str, Any] | None
    text: str
    last: bool


def scan_journal(path: Path) -> Iterator[JournalLine]:
    """Every complete line of the journal at ``path`` (a torn last line is left out).

    Raises:
        OSError: The journal exists but cannot be read.
    """
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        return
    with fh:
        previous: JournalLine | None = None
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                break  # torn tail: the writer died mid-line
            text = raw[:-1].decode("utf-8", "replace")
            if previous is not None:
                yield previous
            previous = JournalLine(lineno, _parse_event(text), text, last=False)
        if previous is not None:
            yield JournalLine(previous.lineno, previous.event, previous.text, last=True)


def _parse_event(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return dict(record) if isinstance(record, Mapping) else None


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the events of the journal at ``path``; a torn last line is skipped.

    Raises:
        StorageError: a line other than the last one is not a JSON object.
    """
    for line in scan_journal(path):
        if line.event is not None:
            yield line.event
        elif line.last:
            logger.warning("ignoring a corrupt last line in %s", path)
        else:
            raise StorageError(
                f"journal line {line.lineno} is corrupt (not a JSON object): {line.text[:80]!r}",
                path,
            )


def _truncate_torn_tail(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        fh.truncate(keep)
        logger.warning("cut a torn last line (%d bytes) from %s", size - keep, path)
