"""Temporary files that writers killed mid-write left in a results directory.

Every file hpoptim replaces is first written to a temporary beside it and then
renamed, so a reader sees the old or the new file whole; a writer killed between
the two leaves the temporary. These are removed when a driver, holding the run's
lock, starts or rewrites the reports:

* in the results directory and ``best_jobs/``: hidden ``.NAME.XXXXXXXX.tmp`` files
  (:func:`~hpoptim.state.storage.write_text_atomic`) and ``.setting_N.tmp``
  directories (a copy into ``best_jobs/`` cut short);
* in the run directory of each job that has ended (never of one still in flight,
  whose writer may be at work): the node protocol's temporaries
  (:data:`~hpoptim.launchers.node.TEMPORARY_NAMES`) and the hidden stamped
  temporaries of ``params.json`` and of the job's ``metrics.json`` (``hpoptim.job``).

A file of the user's (not hidden, or not named like these) is never touched.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from hpoptim.launchers.node import TEMPORARY_NAMES
from hpoptim.log import get_logger
from hpoptim.state.history import RunHistory
from hpoptim.state.storage import ResultsLayout

logger = get_logger(__name__)

_STAMPED = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")
_BEST_COPY = re.compile(r"\.setting_\d+\.tmp")


def remove_stale_temporaries(
    layout: ResultsLayout, history: RunHistory, *, root: bool = True
) -> int:
    """Remove the temporaries listed in the module docstring; return how many.

    Args:
        layout: The run's results directory (its lock held by the caller).
        history: The run's history: only ended jobs' run directories are cleaned.
        root: Also clean the results directory itself and ``best_jobs/`` (not while
            this driver's own report writers may be at work).
    """
    found: list[Path] = []
    if root:
        found += _matching(layout.root, _STAMPED)
        found += _matching(layout.best_jobs_dir, _STAMPED)
        found += _matching(layout.best_jobs_dir, _BEST_COPY)
    for job in history.jobs.values():
        if job.active or not job.run_dir:
            continue
        run_dir = Path(job.run_dir)
        found += [run_dir / name for name in TEMPORARY_NAMES if (run_dir / name).exists()]
        found += _matching(run_dir, _STAMPED)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if found:
        logger.info("removed %d temporary file(s) left by interrupted writes", len(found))
    return len(found)


def _matching(directory: Path, pattern: re.Pattern[str]) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if pattern.fullmatch(p.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
