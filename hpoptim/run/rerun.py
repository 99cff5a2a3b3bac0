"""``hpoptim rerun RUN JOB``: one job run again exactly as it ran, from its provenance,
and its metrics compared with the original's.

The job's code is rebuilt from the recorded commit and the patch of the uncommitted
changes (checked against its recorded sha256), the container image is checked against
its recorded sha256, and the job runs locally with its original parameters, seed and
environment in a new directory ``RUN/reruns/JOB-N/`` (``tree/`` holds the code,
``job/`` the job's files, ``rerun.json`` the outcome). Nothing of the original run is
written, and no lock is taken: a driver may be running the run meanwhile. When the
record cannot rebuild the job (no commit, a patch missing, capped or changed, another
image), the rerun is refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpoptim import __version__
from hpoptim.config import RunConfig, load_config_dict
from hpoptim.contract import job_env
from hpoptim.errors import LaunchError, RerunRefusedError, RunStoppedError, StorageError
from hpoptim.jobspec import JobPaths, JobSpec, JobState, JobStatus
from hpoptim.messages import did_you_mean
from hpoptim.results.output import read_metrics
from hpoptim.results.provenance import job_python
from hpoptim.state.history import JobRecord
from hpoptim.state.provenance import Provenance, SourceKind
from hpoptim.state.storage import ResultsLayout, write_json_atomic

RERUNS_DIR_NAME = "reruns"
TREE_DIR_NAME = "tree"
DEFAULT_TOLERANCE = 1e-9
UNCOMPARED_METRICS = ("time_elapsed",)
"""Metrics shown but not compared: wall time differs from run to run."""
_POLL_S = 0.5


@dataclass(frozen=True)
class RerunOutcome:
    """A job run again and how its result compares with the original's.

    Attributes:
        job_id: The original job.
        directory: ``RUN/reruns/JOB-N``.
        provenance: The record the job was rebuilt from.
        original_state: The original job's end state.
        state: The rerun's end state.
        reason: Why the rerun failed, if it did.
        original: The original job's metrics.
        metrics: The rerun's metrics.
        differences: One line per metric that differs beyond the tolerance.
        notes: Differences of environment that may explain different metrics.
    """

    job_id: str
    directory: Path
    provenance: Provenance
    original_state: str
    state: str
    reason: str
    original: Mapping[str, float]
    metrics: Mapping[str, float]
    differences: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def matched(self) -> bool:
        return self.state == self.original_state and not self.differences


def rerun_job(
    root: Path, job_id: str, *, tolerance: float = DEFAULT_TOLERANCE, stop: threading.Event
) -> RerunOutcome:
    """Run job ``job_id`` of the run in ``root`` again, locally, and compare its metrics.

    Raises:
        RerunRefusedError: The job is unknown, or its provenance cannot rebuild it.
        CheckoutError: The recorded commit cannot be cloned or the patch does not apply.
        StorageError: The run's config or journal cannot be read.
        RunStoppedError: ``stop`` was set while the job ran.
    """
    layout = ResultsLayout(Path(root).resolve())
    job = _checked_job(layout, job_id)
    directory = _new_directory(layout, job_id)
    tree = directory / TREE_DIR_NAME
    try:
        _rebuild(job, tree)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    source = job.provenance.source
    cwd = tree / job.provenance.subdir if source is SourceKind.WORKING_DIR else tree
    spec = _spec(job, cwd, directory)
    status = _run_locally(spec, stop)
    output = read_metrics(spec.paths)
    state = status.state.value
    if status.state is JobState.COMPLETED and output.problem:
        state = JobState.FAILED.value
    outcome = RerunOutcome(
        job_id=job_id,
        directory=directory,
        provenance=job.provenance,
        original_state=job.rec.state,
        state=state,
        reason=output.problem or status.reason,
        original=dict(job.rec.metrics),
        metrics=output.metrics,
        differences=compare_metrics(job.rec.metrics, output.metrics, tolerance),
        notes=_notes(job.provenance, Path(job.rec.run_dir), spec.paths.run_dir),
    )
    _write_outcome(outcome)
    return outcome


@dataclass(frozen=True)
class _Job:
    """A job of the run with what reruns it: its config, record, provenance, patch and
    parameters file."""

    cfg: RunConfig
    rec: JobRecord
    provenance: Provenance
    patch: Path | None
    document: dict[str, Any]


def _checked_job(layout: ResultsLayout, job_id: str) -> _Job:
    """Everything the rerun needs, checked before anything is written.

    Raises:
        RerunRefusedError: The job is unknown, or its provenance cannot rebuild it.
    """
    from hpoptim.run.session import Session

    cfg = _saved_config(layout)
    history = Session(cfg, layout, [], None, read_only=True).history()
    rec = history.jobs.get(job_id)
    if rec is None:
        raise RerunRefusedError(_unknown_job(job_id, list(history.jobs), layout), job_id)
    provenance = Provenance.from_run_info(history.run_info)
    if provenance is None:
        raise RerunRefusedError(f"{layout.root} records no start of the run", job_id)
    patch = _checked_patch(layout, provenance, job_id)
    _check_image(provenance, job_id)
    return _Job(cfg, rec, provenance, patch, _original_params(rec, job_id))


def compare_metrics(
    original: Mapping[str, float], rerun: Mapping[str, float], tolerance: float
) -> tuple[str, ...]:
    """One line per metric (except :data:`UNCOMPARED_METRICS`) that differs by more than
    ``tolerance``, relative or absolute, or is missing on one side."""
    lines = []
    for name in sorted(set(original) | set(rerun)):
        if name in UNCOMPARED_METRICS:
            continue
        a, b = original.get(name), rerun.get(name)
        if a is None or b is None or not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance):
            lines.append(f"{name}: {_fmt(a)} originally, {_fmt(b)} in the rerun")
    return tuple(lines)


def _fmt(value: float | None) -> str:
    return "none" if value is None else repr(value)


def _saved_config(layout: ResultsLayout) -> RunConfig:
    path = layout.config_file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StorageError(f"{layout.root} holds no hpoptim run (no config.json)", path) from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read the saved config {path}: {exc}", path) from None
    from hpoptim.run.assembly import config_checks

    return load_config_dict(data, check=config_checks, source=path)


def _unknown_job(job_id: str, known: list[str], layout: ResultsLayout) -> str:
    if not known:
        return f"{layout.root} has no jobs yet"
    hint = did_you_mean(job_id, known) or f"; its jobs are listed in {layout.jobs_csv} (job_id)"
    return f"no job {job_id!r} in {layout.root}{hint}"


def _checked_patch(layout: ResultsLayout, provenance: Provenance, job_id: str) -> Path | None:
    """The patch to apply (``None``: the commit alone), checked against its digest."""
    problem = provenance.rebuild_problem()
    if problem:
        raise RerunRefusedError(f"cannot rerun job {job_id}: {problem}", job_id)
    if not provenance.dirty or provenance.patch is None or provenance.patch.path is None:
        return None
    path = layout.root / provenance.patch.path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RerunRefusedError(
            f"cannot rerun job {job_id}: the patch of the uncommitted changes the job ran "
            f"with, {path}, cannot be read ({exc.strerror or exc}), so its code cannot be "
            "rebuilt",
            job_id,
        ) from None
    if hashlib.sha256(data).hexdigest() != provenance.patch.sha256:
        raise RerunRefusedError(
            f"cannot rerun job {job_id}: the patch {path} has changed since the run "
            f"started (its sha256 is not the recorded {provenance.patch.sha256}), so it "
            "does not rebuild the code the job ran",
            job_id,
        )
    return path


def _check_image(provenance: Provenance, job_id: str) -> None:
    if provenance.image is None:
        return
    from hpoptim.launchers.container import image_sha256

    try:
        found = image_sha256(Path(provenance.image))
    except LaunchError as exc:
        raise RerunRefusedError(f"cannot rerun job {job_id}: {exc}", job_id) from None
    if found != provenance.image_sha256:
        raise RerunRefusedError(
            f"cannot rerun job {job_id}: the image {provenance.image} has changed since the "
            f"run started (sha256 {found}, recorded {provenance.image_sha256})",
            job_id,
        )


def _original_params(rec: JobRecord, job_id: str) -> dict[str, Any]:
    path = JobPaths(Path(rec.run_dir)).params_file
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RerunRefusedError(
            f"cannot rerun job {job_id}: its parameters file {path} cannot be read ({exc})",
            job_id,
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("job"), dict):
        raise RerunRefusedError(f"cannot rerun job {job_id}: {path} is not a params file", job_id)
    return document


def _new_directory(layout: ResultsLayout, job_id: str) -> Path:
    parent = layout.root / RERUNS_DIR_NAME
    parent.mkdir(exist_ok=True)
    n = 1
    while True:
        directory = parent / f"{job_id}-{n}"
        try:
            directory.mkdir()
        except FileExistsError:
            n += 1
            continue
        return directory


def _rebuild(job: _Job, tree: Path) -> None:
    from hpoptim.source.snapshot import rebuild_tree

    provenance, source = job.provenance, job.cfg.git_params
    assert provenance.commit is not None  # checked by rebuild_problem()
    submodules = provenance.source is SourceKind.WORKING_DIR or (
        source is not None and source.submodules
    )
    repository = provenance.repository or provenance.root
    rebuild_tree(repository, provenance.commit, job.patch, tree, submodules=submodules)


def _spec(job: _Job, cwd: Path, directory: Path) -> JobSpec:
    """The original job's spec, with its code in ``cwd`` and its files in ``directory/job``."""
    from hpoptim.run.assembly import script_command

    paths = JobPaths(directory / "job")
    paths.run_dir.mkdir()
    cfg = job.cfg
    context = dict(job.document["job"])
    context.update(
        run_dir=str(paths.run_dir),
        setting_dir=str(directory),  # cluster_utils jobs write their working_dir here
        metrics_file=str(paths.metrics_file),
    )
    write_json_atomic(paths.params_file, {**job.document, "job": context})
    env = {**cfg.environment, **job_env(context, str(paths.params_file))}
    return JobSpec(
        job_id=f"rerun-{directory.name}",
        argv=(*script_command(cfg, cwd), str(paths.params_file)),
        cwd=cwd,
        paths=paths,
        env=env,
        resources=cfg.resources,
        container=cfg.singularity,
        binds=(directory / TREE_DIR_NAME, directory.parent.parent),
    )


def _run_locally(spec: JobSpec, stop: threading.Event) -> JobStatus:
    from hpoptim.launchers.local import LocalLauncher

    launcher = LocalLauncher(1)
    try:
        launcher.submit([spec])
        while not stop.is_set():
            for status in launcher.poll(_POLL_S):
                if status.state.is_terminal:
                    return status
        launcher.cancel()
        raise RunStoppedError("interrupted")
    finally:
        launcher.close()


def _notes(provenance: Provenance, original_dir: Path, rerun_dir: Path) -> tuple[str, ...]:
    notes = []
    before, now = job_python(original_dir), job_python(rerun_dir)
    if before != now:
        notes.append(f"job Python: {before or 'not recorded'} originally, {now or '?'} now")
    if provenance.hpoptim_version and provenance.hpoptim_version != __version__:
        notes.append(f"hpoptim {provenance.hpoptim_version} originally, {__version__} now")
    return tuple(notes)


def _write_outcome(outcome: RerunOutcome) -> None:
    write_json_atomic(
        outcome.directory / "rerun.json",
        {
            "job_id": outcome.job_id,
            "matched": outcome.matched,
            "original_state": outcome.original_state,
            "state": outcome.state,
            "reason": outcome.reason,
            "original": dict(outcome.original),
            "metrics": dict(outcome.metrics),
            "differences": list(outcome.differences),
            "notes": list(outcome.notes),
            "provenance": outcome.provenance.to_dict(),
        },
    )
