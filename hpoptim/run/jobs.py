"""Each job's spec and params file: the per-job part laid over the run's :class:`JobTemplate`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from hpoptim import contract
from hpoptim.errors import StorageError
from hpoptim.jobspec import JobPaths, JobSpec
from hpoptim.run.plan import JobTemplate
from hpoptim.space import flatten, nest
from hpoptim.state.events import EventKind
from hpoptim.state.history import Lifecycle, RunHistory, SettingRecord
from hpoptim.state.storage import ResultsLayout, write_text_atomic


class JobFactory:
    """Builds the :class:`JobSpec` of a (setting, rerun, attempt) and writes its params file.

    Args:
        template: What every job of the run shares.
        layout: The results directory (job directories live under it).
        lifecycle: Reruns, iterations and the metric, told to each job.
        seed: The run's seed, from which each rerun's seed is derived.
    """

    def __init__(
        self, template: JobTemplate, layout: ResultsLayout, lifecycle: Lifecycle, seed: int
    ) -> None:
        self.template = template
        self.layout = layout
        self.lifecycle = lifecycle
        self.run_seed = seed

    def spec(self, setting: SettingRecord, rerun_idx: int, attempt: int) -> JobSpec:
        """The spec of attempt ``attempt`` of rerun ``rerun_idx`` at its current iteration."""
        rerun = setting.reruns[rerun_idx]
        name = f"run_{rerun_idx}.{rerun.iteration}-{attempt}"
        paths = JobPaths(self.layout.setting_dir(setting.setting_id) / name)
        job_id = f"{setting.setting_id}_{rerun_idx}.{rerun.iteration}-{attempt}"
        t = self.template
        context = self.context(job_id, paths, setting, rerun_idx, attempt)
        return JobSpec(
            job_id=job_id,
            argv=(*t.command, str(paths.params_file)),
            cwd=t.cwd,
            paths=paths,
            env={**t.env, **contract.job_env(context, str(paths.params_file))},
            resources=t.resources,
            container=t.container,
            binds=(*t.binds, self.layout.root),
        )

    def preview(self, params: Mapping[str, Any]) -> JobSpec:
        """The spec the first job of a run proposing ``params`` first would get (setting
        0, rerun 0, attempt 0); nothing is journaled or written."""
        scratch = RunHistory(self.lifecycle)
        scratch.apply({"e": EventKind.ASKED, "sid": 0, "params": dict(params)})
        return self.spec(scratch.settings[0], 0, 0)

    def seed(self, setting_id: int, rerun: int) -> int:
        """Seed of a rerun: fixed by the run seed, the setting and the rerun index."""
        key = f"{self.run_seed}:{setting_id}:{rerun}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF

    def write_params(
        self, spec: JobSpec, setting: SettingRecord, rerun_idx: int, attempt: int
    ) -> None:
        """Create the job's directory (never an existing one) and write its params file.

        Raises:
            StorageError: The directory exists already.
        """
        document = {
            "params": deep_merge(self.template.fixed_params, nest(setting.params)),
            "flat_params": {**flatten(self.template.fixed_params), **setting.params},
            "job": self.context(spec.job_id, spec.paths, setting, rerun_idx, attempt),
        }
        spec.paths.run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            spec.paths.run_dir.mkdir()
        except FileExistsError:
            raise StorageError(
                f"job directory {spec.paths.run_dir} already exists; a job directory is "
                "never reused (is another driver writing into this results directory?)",
                spec.paths.run_dir,
            ) from None
        write_text_atomic(spec.paths.params_file, json.dumps(document, indent=1))

    def context(
        self, job_id: str, paths: JobPaths, setting: SettingRecord, rerun_idx: int, attempt: int
    ) -> dict[str, Any]:
        """The params file's ``job`` section, from which the job's environment is made too."""
        rerun = setting.reruns[rerun_idx]
        return {
            "job_id": job_id,
            "setting_id": setting.setting_id,
            "rerun": rerun_idx,
            "iteration": rerun.iteration,
            "attempt": attempt,
            "n_iterations": self.lifecycle.training_iterations,
            "n_reruns": self.lifecycle.n_reruns,
            "metric": self.lifecycle.metric,
            "seed": self.seed(setting.setting_id, rerun_idx),
            "run_dir": str(paths.run_dir),
            "setting_dir": str(paths.run_dir.parent),
            "previous_run_dir": rerun.previous_run_dir,
            "metrics_file": str(paths.metrics_file),
        }


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, merging nested dicts key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
