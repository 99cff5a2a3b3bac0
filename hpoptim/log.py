"""Logging helpers: modules call :func:`get_logger`; only the CLI calls :func:`configure`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

_ROOT = "hpoptim"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """Return the logger for module ``name`` (pass ``__name__``)."""
    return logging.getLogger(name)


def configure(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Configure the ``hpoptim`` logger (never the root logger).

    Args:
        verbosity: 0 = INFO, 1 or more = DEBUG, -1 = WARNING, -2 or less = ERROR.
        log_file: If given, a DEBUG log is appended there as well.
    """
    logger = logging.getLogger(_ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(
        max(-2, min(verbosity, 1)), logging.DEBUG
    )
    stream = logging.StreamHandler(sys.stderr)
    stream.setLevel(level)
    stream.setFormatter(logging.Formatter("[hpoptim] %(message)s"))
    logger.addHandler(stream)
    logger.setLevel(logging.DEBUG if log_file is not None else level)
    logger.propagate = False
    if log_file is not None:
        add_log_file(log_file)


class _LogFileHandler(logging.FileHandler):
    """A DEBUG log file that goes quiet when it cannot be written (a full disk, a
    removed directory) instead of printing a traceback for every message; the
    console handler still shows what matters."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.failed = True


def add_log_file(log_file: Path) -> None:
    """Append a DEBUG log of the ``hpoptim`` logger to ``log_file``."""
    logger = logging.getLogger(_ROOT)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # owner-only: it holds the stderr tails of failed jobs, which may show secrets
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also a log written by an older version
    finally:
        os.close(fd)
    handler = _LogFileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def remove_log_file(log_file: Path) -> None:
    """Stop and close the log handler :func:`add_log_file` added for ``log_file``."""
    logger = logging.getLogger(_ROOT)
    target = os.path.abspath(log_file)
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == target:
            logger.removeHandler(handler)
            handler.close()
