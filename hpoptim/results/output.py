"""Read what a finished job left in its run directory."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

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


def read_metrics(paths: JobPaths) -> RunOutput:
    """Parse the job's metrics file: a JSON object of finite numbers.

    Non-numeric entries are ignored; a missing, unreadable or non-object file is
    reported as a problem, never raised.
    """
    path = paths.metrics_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RunOutput(problem=f"no metrics file {path.name} was written")
    except OSError as exc:
        return RunOutput(problem=f"cannot read {path.name}: {exc}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return RunOutput(problem=f"{path.name} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return RunOutput(problem=f"{path.name} must hold a JSON object, got {type(data).__name__}")
    numbers = {str(k): _finite_float(v) for k, v in data.items()}
    return RunOutput(metrics={k: v for k, v in numbers.items() if v is not None})


def _finite_float(value: object) -> float | None:
    """``value`` as a float if it is a finite number (an int too large for a float is not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def metric_problem(output: RunOutput, metric: str) -> str:
    """Why ``output`` has no usable value of ``metric`` ("" if it has one)."""
    if output.problem:
        return output.problem
    if metric not in output.metrics:
        names = ", ".join(sorted(output.metrics)) or "none"
        return f"metric {metric!r} missing from metrics.json (reported: {names})"
    return ""


def stderr_tail(paths: JobPaths, n_lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``n_lines`` of the job's stderr ("" if there is none)."""
    return tail(paths.stderr, n_lines)


def tail(path: Path, n_lines: int) -> str:
    """The last ``n_lines`` lines of a text file, read from its end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            lines: deque[bytes] = deque(fh.read().splitlines(), maxlen=n_lines)
    except OSError:
        return ""
    return "\n".join(line.decode("utf-8", "replace") for line in lines)
