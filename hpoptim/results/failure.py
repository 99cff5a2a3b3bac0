"""Why a job failed, in one line a person can act on, from the tail of its stderr.

"failed with exit code 1" says little; the last meaningful line of stderr
(``ModuleNotFoundError: No module named 'torch'``) says what went wrong. For a Python
traceback that is the exception line; otherwise the last line that is neither blank
nor a generic trailer written by a shell, ``srun`` or the scheduler.
"""

from __future__ import annotations

import re

MAX_CAUSE_CHARS = 200
"""A cause longer than this is cut (with an ellipsis): it goes into CSV cells and one
console line."""

_TRAILERS = re.compile(
    r"""^(?:
        srun:\ error:.*(?:Exited\ with\ exit\ code|terminated|Terminating).*
      | srun:\ (?:Job\ step\ aborted|launch/slurm:).*
      | slurmstepd:\ error:\ \*\*\*\ STEP\ .*
      | Command\ exited\ with\ non-zero\ status.*
      | (?:Aborted|Killed|Segmentation\ fault)\ \(core\ dumped\)\s*
      | make(?:\[\d+\])?:\ \*\*\*.*Error\ \d+.*
      | \[\d+\]\s+\d+\ (?:Killed|Aborted).*
      | Error\ in\ atexit\._run_exitfuncs:.*
      | run_learning\.py:\ error:\ learner\ .*\ exited\ with\ code\ -?\d+
    )$""",
    re.VERBOSE,
)
_TRACEBACK = "Traceback (most recent call last):"


def failure_cause(stderr: str, max_chars: int = MAX_CAUSE_CHARS) -> str:
    """The line of ``stderr`` that best says why the job failed ("" if none does).

    Args:
        stderr: The last lines of the job's stderr.
        max_chars: Longer causes are cut to this length, ending in an ellipsis.
    """
    lines = [line.rstrip() for line in stderr.splitlines()]
    lines = [line for line in lines if line.strip() and not _TRAILERS.match(line.strip())]
    if not lines:
        return ""
    cause = _exception_line(lines) or lines[-1].strip()
    if len(cause) > max_chars:
        cause = cause[: max_chars - 1].rstrip() + "…"
    return cause


def _exception_line(lines: list[str]) -> str:
    """The exception line of the last Python traceback in ``lines`` ("" if none).

    It is the first unindented line after the traceback header: frames and the
    ``^^^^`` markers under them are indented. A message spanning several lines
    keeps only its first line.
    """
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not starts:
        return ""
    for line in lines[starts[-1] + 1 :]:
        if line and not line[0].isspace():
            return line.strip()
    return ""


def with_cause(reason: str, stderr: str) -> str:
    """``reason`` followed by the cause found in ``stderr``, if there is one."""
    cause = failure_cause(stderr)
    return f"{reason}: {cause}" if cause else reason
