"""Files a cluster launcher writes before it submits (shared by Slurm and Grid Engine).

* A **run key**: a random word kept in the launcher's directory that every job name
  holds, so a run started afresh in the same place never finds an older run's job.
* **Task files** of a job array: task ``i`` reads its argv and environment verbatim
  from the NUL-separated files ``TASKS/i.argv`` and ``TASKS/i.env``, and ``TASKS/i``
  is a symlink to its run directory (where its output and exit status go).
* A **manifest** per submission (JSON: job name, array or not, job ids), written and
  synced before the submit command runs, so a driver that dies right after it finds
  its jobs again by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobSpec

RUN_KEY_FILE = "run_key"


def run_key(directory: Path) -> str:
    """The run key kept in ``directory`` (created on first use)."""
    path = directory / RUN_KEY_FILE
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(4))
    except FileExistsError:
        pass
    return path.read_text(encoding="utf-8").strip()


def write_private(path: Path, data: bytes, mode: int) -> None:
    """Write and fsync ``path``, readable by its owner only from its creation on (it may
    hold secrets)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, mode)  # whatever the umask


def nul_join(items: Sequence[str]) -> bytes:
    """``items`` as NUL-terminated words (bash reads them with ``mapfile -d ''``)."""
    return b"".join(item.encode("utf-8", "surrogateescape") + b"\0" for item in items)


def write_tasks(
    tasks: Path, entries: Sequence[tuple[JobSpec, bytes, bytes]], first_index: int = 0
) -> None:
    """Write the task files of ``entries`` (spec, argv file, env file) under ``tasks``,
    numbered from ``first_index``."""
    tasks.mkdir(mode=0o700, parents=True, exist_ok=True)
    tasks.chmod(0o700)
    for i, (spec, argv_bytes, env_bytes) in enumerate(entries, start=first_index):
        write_private(tasks / f"{i}.argv", argv_bytes, 0o600)
        write_private(tasks / f"{i}.env", env_bytes, 0o600)
        link = tasks / str(i)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(spec.paths.run_dir.resolve(), link)


def manifest_bytes(name: str, group: Sequence[JobSpec], *, array: bool) -> bytes:
    """The manifest of one submission."""
    return json.dumps({"name": name, "array": array, "jobs": [s.job_id for s in group]}).encode()


def read_manifests(script_dir: Path) -> dict[str, tuple[str, int | None]]:
    """Job id -> (job name, position in its array or ``None``) of every manifest."""
    found: dict[str, tuple[str, int | None]] = {}
    for path in sorted(script_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for i, job_id in enumerate(data["jobs"]):
                found[str(job_id)] = (str(data["name"]), i if data["array"] else None)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def wait_until_gone(
    listing: Callable[[], list[str]],
    wait_s: float,
    still_there: Callable[[list[str]], str],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait up to ``wait_s`` until ``listing()`` (jobs a cluster still has) is empty.

    Raises:
        LaunchError: With ``still_there(jobs)`` once ``wait_s`` has passed.
    """
    deadline = time.monotonic() + wait_s
    while left := listing():
        if time.monotonic() >= deadline:
            raise LaunchError(still_there(left))
        sleep(1.0)
