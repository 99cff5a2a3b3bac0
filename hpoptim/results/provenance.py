"""A run's provenance as the results show it: the journaled record, with the Python
version its jobs reported from inside their environment (``job_env.json``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hpoptim.contract import JOB_ENV_FILE_NAME
from hpoptim.results.output import _read_regular_file, _Unusable
from hpoptim.state.history import RunHistory
from hpoptim.state.provenance import Provenance

MAX_JOB_ENV_BYTES = 16 << 10
N_JOBS_ASKED = 20
"""How many job directories are looked in for a ``job_env.json`` (the first jobs)."""
_VERSION = re.compile(r"[0-9A-Za-z.+_-]{1,40}")


def job_python(run_dir: Path) -> str | None:
    """The Python version a job recorded in its directory (``None``: none, or unusable).

    The file is the job's, so it is read as untrusted: a regular file, size-capped,
    and only a version-like string is taken from it.
    """
    try:
        data = json.loads(_read_regular_file(run_dir / JOB_ENV_FILE_NAME, MAX_JOB_ENV_BYTES))
    except (OSError, ValueError, RecursionError, _Unusable):
        return None
    version = data.get("python") if isinstance(data, dict) else None
    return version if isinstance(version, str) and _VERSION.fullmatch(version) else None


def run_provenance(history: RunHistory) -> Provenance | None:
    """The run's provenance (``None`` before it started), with its jobs' Python version."""
    provenance = Provenance.from_run_info(history.run_info)
    if provenance is None:
        return None
    for rec in list(history.jobs.values())[:N_JOBS_ASKED]:
        if rec.run_dir and (version := job_python(Path(rec.run_dir))) is not None:
            return provenance.with_job_python(version)
    return provenance
