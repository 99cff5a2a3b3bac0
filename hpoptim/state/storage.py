"""The results directory: its file names, its lock and its append-only journal.

The journal is a JSON-lines file: one event per line, appended and flushed before
the driver acts on the event, so a driver killed at any moment can be resumed by
replaying it. A torn last line (the driver died mid-write) is ignored on read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hpoptim.errors import StorageError
from hpoptim.log import get_logger

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


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` so that readers see the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


class RunLock:
    """An exclusive lock on a results directory, released when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StorageError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise StorageError(
                f"another hpoptim driver (pid {holder}) is using {self.path.parent}; "
                "wait for it to finish or stop it first",
                self.path.parent,
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

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


class Journal:
    """Append-only JSON-lines event log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def open(self) -> None:
        """Open for appending; a torn last line left by a killed writer is cut off."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    @property
    def is_open(self) -> bool:
        return self._fh is not None

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and flush it to the operating system; return the record."""
        if self._fh is None:
            raise StorageError("journal is not open for writing", self.path)
        record = {"e": event, **fields}
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        return record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def read(self) -> Iterator[dict[str, Any]]:
        """Yield the events in order, ignoring a torn (incomplete) last line."""
        return read_journal(self.path)


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the events of the journal at ``path``; a torn last line is skipped.

    Raises:
        StorageError: a line other than the last one is not valid JSON.
    """
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with fh:
        pending: str | None = None
        for lineno, line in enumerate(fh, start=1):
            if pending is not None:
                raise StorageError(
                    f"journal line {lineno - 1} is corrupt (not JSON): {pending[:80]!r}", path
                )
            if not line.endswith("\n"):
                return  # torn tail: the writer died mid-line
            try:
                record = json.loads(line)
            except ValueError:
                pending = line
                continue
            if isinstance(record, Mapping):
                yield dict(record)
        if pending is not None:
            logger.warning("ignoring a corrupt last line in %s", path)


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
