"""Read what a finished job left in its run directory.

A job is not trusted: its metrics file may be a FIFO, a symlink to a device, huge,
or hold values that are not numbers. It is read only if it is a regular file, with
a size and a key-count cap, and anything unusable becomes a one-line ``problem``
that fails the attempt (it is never raised, and never hangs the driver).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpoptim.contract import MAX_METRICS_BYTES as MAX_METRICS_BYTES
from hpoptim.contract import MAX_METRICS_KEYS as MAX_METRICS_KEYS
from hpoptim.contract import METRICS_FILE_NAME

if TYPE_CHECKING:  # the results side reads files without the config models
    from hpoptim.jobspec import JobPaths

STDERR_TAIL_LINES = 20


@dataclass(frozen=True)
class RunOutput:
    """Metrics a job reported, or why none could be read.

    Attributes:
        metrics: The numeric metrics from the metrics file (empty if none).
        problem: Why the metrics file is missing or unusable ("" if fine).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    problem: str = ""


class _Unusable(Exception):
    """The metrics file exists but cannot be used; the message says why."""


def read_metrics(paths: JobPaths) -> RunOutput:
    """Parse the job's metrics file: a JSON object whose values are all finite numbers.

    A missing, unreadable, oversized or non-regular file, a non-object, too many
    keys, or any value that is not a finite number (NaN, Infinity, a string, a
    boolean, a list) is reported as a problem, never raised.
    """
    path = paths.metrics_file
    try:
        data = json.loads(_read_regular_file(path, MAX_METRICS_BYTES))
    except FileNotFoundError:
        return RunOutput(problem=f"no metrics file {path.name} was written")
    except _Unusable as exc:
        return RunOutput(problem=str(exc))
    except OSError as exc:
        return RunOutput(problem=f"cannot read {path.name}: {exc.strerror or exc}")
    except (ValueError, RecursionError) as exc:
        return RunOutput(problem=f"{path.name} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return RunOutput(problem=f"{path.name} must hold a JSON object, got {type(data).__name__}")
    if len(data) > MAX_METRICS_KEYS:
        return RunOutput(
            problem=f"{path.name} holds {len(data)} keys, more than the {MAX_METRICS_KEYS} allowed"
        )
    numbers: dict[str, float] = {}
    bad: list[str] = []
    for key, value in data.items():
        number = _finite_float(value)
        if number is None:
            bad.append(f"{str(key)[:40]!r} is {_describe_value(value)}")
        else:
            numbers[str(key)] = number
    if bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        return RunOutput(
            metrics=numbers,
            problem=f"{path.name}: every value must be a finite number, but {shown}",
        )
    return RunOutput(metrics=numbers)


def _read_regular_file(path: Path, max_bytes: int) -> str:
    """The text of ``path`` if it is a regular file of at most ``max_bytes``.

    Opened without blocking (a FIFO does not hang the caller) and checked with
    ``fstat`` after opening (what a symlink points to is what counts).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        _Unusable: It is not a regular file, too large, or not UTF-8.
        OSError: It cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _Unusable(f"{path.name} is not a regular file ({_file_kind(mode)})")
        data = os.read(fd, max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise _Unusable(f"{path.name} is larger than the {max_bytes} bytes allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unusable(f"{path.name} is not UTF-8 text") from None


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
        stat.S_ISDIR: "a directory",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a plain file")


def _describe_value(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, float):
        name = "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
        return f"{name}, not a finite number"
    if isinstance(value, int):
        return "an integer too large for a float"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    if value is None:
        return "null"
    return f"a {'list' if isinstance(value, list) else 'JSON object'}, not a number"


def _finite_float(value: object) -> float | None:
    """``value`` as a float if it is a finite number (an int too large for a float is not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def metric_problem(output: RunOutput, metric: str | None) -> str:
    """Why ``output`` has no usable value of ``metric`` ("" if it has one); without a
    metric to optimise, why it has no metric at all."""
    if output.problem:
        return output.problem
    if metric is None:
        return "" if output.metrics else "metrics.json holds no metric"
    if metric not in output.metrics:
        names = ", ".join(sorted(output.metrics)) or "none"
        return f"metric {metric!r} missing from {METRICS_FILE_NAME} (reported: {names})"
    return ""


def stderr_tail(paths: JobPaths, n_lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``n_lines`` of the job's stderr ("" if there is none)."""
    return tail(paths.stderr, n_lines)


def tail(path: Path, n_lines: int) -> str:
    """The last ``n_lines`` lines of a regular text file, read from its end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ""
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            lines: deque[bytes] = deque(fh.read(64 * 1024).splitlines(), maxlen=n_lines)
    except OSError:
        return ""
    return "\n".join(line.decode("utf-8", "replace") for line in lines)
