"""The run configuration: typed, frozen sections with their keys, defaults and rules.

:func:`build` checks a plain dict against :class:`RunConfig` and collects every
problem at once, each naming its dotted key path (``slurm.mem_gb``,
``optimized_params[2].bounds``), the rule and the offending value. Unknown keys
are problems too, with a "did you mean" and the list of valid keys. The
generic checking lives in :mod:`hpoptim.config.validate`.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from hpoptim.config.validate import Invalid, Section, build_section, key, knows
from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.space import SearchSpace, did_you_mean, flatten, nest

__all__ = [
    "SECTIONS",
    "SYNONYMS",
    "GitParams",
    "LocalConfig",
    "RunConfig",
    "SingularityConfig",
    "SlurmConfig",
    "build",
    "schema_knows",
]

#: Names used by cluster_utils (and likely slips) -> the key meant here; for "did you mean".
SYNONYMS: dict[str, str] = {
    "num_best_jobs_whose_data_is_kept": "n_best_jobs_to_keep",
    "cluster_requirements": "slurm",
    "environment_setup": "environment",
    "run_local": "launcher",
    "num_samples": "number_of_samples",
    "n_samples": "number_of_samples",
    "num_jobs_per_iteration": "n_jobs_per_iteration",
    "num_reruns": "n_reruns",
    "learning_runs_per_job": "n_reruns",
    "restarts": "n_reruns",
    "request_cpus": "n_cpus_per_job",
    "request_gpus": "n_gpus_per_job",
    "memory_in_mb": "mem_gb",
    "request_time": "time_limit_min",
    "args": "options",
}

# ---------------------------------------------------------------- field rules


def _directory_name(value: str) -> str:
    if value in ("", ".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise Invalid(
            f"must be usable as one directory name (no '/', not '.' or '..'), got {value!r}"
        )
    return value


def canonical_signal_name(value: str) -> str:
    """``"SIGTERM"`` for ``"SIGTERM"``, ``"TERM"`` or ``"term"`` (not checked to exist)."""
    upper = value.upper()
    return upper if upper.startswith("SIG") else f"SIG{upper}"


def signal_number(value: str) -> int:
    """The number of a signal named as ``timeout_signal`` allows, e.g. ``"USR1"``."""
    return int(signal.Signals[canonical_signal_name(value)])


def _signal_name(value: str) -> str:
    name = canonical_signal_name(value)
    if name not in signal.Signals.__members__:
        raise Invalid(
            f"must be a signal name such as 'SIGTERM', 'TERM' or 'USR1', got {value!r}"
            + did_you_mean(name, list(signal.Signals.__members__))
        )
    return value


def _existing_image(value: Path) -> Path:
    if not value.exists():
        raise Invalid(f"image file {str(value)!r} does not exist")
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _env_vars(value: Mapping[str, str]) -> Mapping[str, str]:
    """Environment variables a process (and a shell, on Slurm) can take."""
    bad = tuple(
        ConfigProblem(
            name,
            "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL character, "
            f"got {name!r}={text!r}",
        )
        for name, text in value.items()
        if not _ENV_NAME.match(name) or "\0" in text
    )
    if bad:
        raise Invalid(problems=bad)
    return value


def _non_empty(value: tuple[Any, ...]) -> tuple[Any, ...]:
    if not value:
        raise Invalid("must be a non-empty list, got []")
    return value


def _nested_params(value: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return nest(flatten(value))
    except ConfigError as exc:
        raise Invalid(problems=exc.problems) from None


def _search_space(value: tuple[Mapping[str, Any], ...]) -> tuple[Mapping[str, Any], ...]:
    _non_empty(value)
    try:
        SearchSpace.from_config(value, path="optimized_params")
    except ConfigError as exc:
        relative = tuple(
            ConfigProblem(p.path.removeprefix("optimized_params"), p.message) for p in exc.problems
        )
        raise Invalid(problems=relative) from None
    return value


# ------------------------------------------------------------------- sections


class _Section(Section):
    synonyms: ClassVar[Mapping[str, str]] = SYNONYMS


@dataclass(frozen=True, kw_only=True)
class GitParams(_Section):
    """Where to clone the training code from (``git_params``)."""

    url: str = key(doc="Repository URL or local path to clone.")
    branch: str | None = key(None, "Branch to check out (at most one of branch/tag/commit).")
    tag: str | None = key(None, "Tag to check out.")
    commit: str | None = key(None, "Commit to check out.")
    depth: int | None = key(None, "Shallow-clone depth; null: full history.", ge=1)
    submodules: bool = key(False, "Also check out submodules.")
    cache_dir: Path | None = key(None, "Where clones are cached; null: inside the results dir.")

    @classmethod
    def cross_check(cls, values: Mapping[str, Any]) -> list[ConfigProblem]:
        given = {k: values[k] for k in ("branch", "tag", "commit") if values.get(k) is not None}
        if len(given) > 1:
            shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
            return [ConfigProblem("", f"give at most one of branch, tag, commit; got {shown}")]
        return []


@dataclass(frozen=True, kw_only=True)
class LocalConfig(_Section):
    """The local launcher (``local``)."""

    n_parallel_jobs: int | None = key(
        None, "Jobs run at once on this machine; null: the number of CPUs.", ge=1
    )


@dataclass(frozen=True, kw_only=True)
class SlurmConfig(_Section):
    """The Slurm launcher (``slurm``); also gives every job's CPUs, GPUs and memory."""

    partition: str | None = key(None, "Partition (sbatch --partition).")
    account: str | None = key(None, "Account (sbatch --account).")
    qos: str | None = key(None, "Quality of service (sbatch --qos).")
    n_cpus_per_job: int = key(1, "CPUs per job.", ge=1)
    n_gpus_per_job: int = key(0, "GPUs per job.", ge=0)
    gres: str | None = key(None, "Generic resources (sbatch --gres), instead of n_gpus_per_job.")
    mem_gb: float | None = key(None, "Memory per job in GB; null: the cluster's default.", gt=0)
    time_limit_min: float | None = key(
        None, "Wall time per job in minutes (also the job timeout on Slurm).", gt=0
    )
    extra_sbatch_options: tuple[str, ...] = key(
        factory=tuple, doc="Extra sbatch options, e.g. ['--constraint=a100']."
    )
    poll_interval_s: float = key(2.0, "First interval between sacct polls.", gt=0)
    max_poll_interval_s: float = key(30.0, "Longest interval between polls (backoff).", gt=0)
    use_job_arrays: bool = key(True, "Submit jobs started together as one job array.")
    n_max_queued_jobs: int | None = key(None, "Most jobs queued at once; null: no limit.", ge=1)

    @classmethod
    def cross_check(cls, values: Mapping[str, Any]) -> list[ConfigProblem]:
        lo, hi = values.get("poll_interval_s"), values.get("max_poll_interval_s")
        if lo is not None and hi is not None and hi < lo:
            return [
                ConfigProblem(
                    "max_poll_interval_s",
                    f"must be >= poll_interval_s ({lo!r}), got {hi!r}",
                )
            ]
        return []


@dataclass(frozen=True, kw_only=True)
class SingularityConfig(_Section):
    """Run every job inside a Singularity/Apptainer image (``singularity``)."""

    image: Path = key(doc="Image file ('~' expanded; must exist).", rule=_existing_image)
    executable: Literal["apptainer", "singularity"] | None = key(
        None, "Container binary; null: whichever is on PATH."
    )
    use_run: bool = key(False, "Use 'run' instead of 'exec'.")
    bind: tuple[str, ...] = key(factory=tuple, doc="Extra --bind specs (src[:dst[:opts]]).")
    nv: bool = key(False, "Pass --nv (NVIDIA GPUs).")
    containall: bool = key(False, "Pass --containall.")
    cleanenv: bool = key(False, "Pass --cleanenv.")
    pwd: str | None = key(None, "Working directory inside the container (--pwd).")
    options: tuple[str, ...] = key(factory=tuple, doc="Extra options for exec/run.")
    env: Mapping[str, str] = key(
        factory=dict, doc="Environment variables set in the container.", rule=_env_vars
    )


@dataclass(frozen=True, kw_only=True)
class RunConfig(_Section):
    """A whole, validated run configuration (immutable).

    Build it with :func:`hpoptim.config.load_config` or
    :func:`hpoptim.config.load_config_dict`; :meth:`to_dict` gives the form saved
    as ``config.json``, which loads back equal.
    """

    optimization_procedure_name: str = key(
        doc="Name of the run; results go to results_dir/optimization_procedure_name.",
        rule=_directory_name,
        rule_doc="one directory name",
    )
    results_dir: Path = key(doc="Results root; a relative path is relative to the current dir.")
    script_relative_path: str = key(
        doc="The job script, relative to the checkout root (or the working dir)."
    )
    run_in_working_dir: bool = key(
        False, "Run the script from the current dir instead of a git checkout."
    )
    git_params: GitParams | None = key(
        None, "Repository to check out; required unless run_in_working_dir is true."
    )
    fixed_params: Mapping[str, Any] = key(
        factory=dict,
        doc="Parameters passed to every job; dotted keys and nested mappings, mixed.",
        rule=_nested_params,
    )
    optimized_params: tuple[Mapping[str, Any], ...] = key(
        doc="The search space, one entry per parameter (see above).",
        rule=_search_space,
        rule_doc="non-empty",
    )
    optimizer_str: str = key(
        "tpe_cmaes",
        "Sampler: tpe_cmaes, cem_metaoptimizer, tpe, cmaes, quasirandom, random or gridsearch.",
    )
    optimizer_settings: Mapping[str, Any] = key(factory=dict, doc="The sampler's settings.")
    number_of_samples: int = key(doc="Settings to evaluate in total.", ge=1)
    n_jobs_per_iteration: int = key(doc="Settings in flight at once.", ge=1)
    n_completed_jobs_before_resubmit: int = key(
        1, "Settings to finish before new ones are sampled.", ge=1
    )
    metric_to_optimize: str = key(doc="Key of metrics.json to optimise.")
    minimize: bool = key(doc="Minimise (true) or maximise (false) the metric.")
    n_best_jobs_to_keep: int = key(
        3, "Best settings whose job dirs are copied to best_jobs/.", ge=0
    )
    seed: int | None = key(None, "Seed of the sampler and jobs; null: random (recorded).")
    deterministic_order: bool | None = key(
        None,
        "Tell the sampler results in ask order, so a seeded run repeats whatever order jobs "
        "finish in; null: true when seed is set.",
    )
    n_reruns: int = key(1, "Runs per setting (different seeds); the metric is their mean.", ge=1)
    max_attempts: int = key(3, "Tries per run before it counts as failed.", ge=1)
    training_iterations: int = key(1, "Chained processes per run (exit code 3 continues).", ge=1)
    max_failed_fraction: float = key(
        0.5, "Stop the run when more settings than this fraction failed.", ge=0, le=1
    )
    n_settings_before_failure_check: int = key(
        5, "Finished settings before max_failed_fraction applies.", ge=1
    )
    job_timeout_min: float | None = key(
        None, "Wall time per process in minutes (local launcher); null: none.", gt=0
    )
    timeout_signal: str = key(
        "SIGTERM",
        "Signal sent signal_lead_s before the timeout.",
        rule=_signal_name,
        rule_doc="signal name",
    )
    signal_lead_s: float = key(30.0, "Seconds between timeout_signal and the hard kill.", ge=0)
    interpreter: tuple[str, ...] | None = key(
        None, "Command that runs the script, e.g. ['python3', '-u']; null: by extension."
    )
    environment: Mapping[str, str] = key(
        factory=dict, doc="Environment variables for every job.", rule=_env_vars
    )
    launcher: Literal["local", "slurm"] = key("local", "Where jobs run.")
    local: LocalConfig = key(factory=LocalConfig, doc="Local launcher settings.")
    slurm: SlurmConfig = key(factory=SlurmConfig, doc="Slurm settings and per-job resources.")
    singularity: SingularityConfig | None = key(None, "Run jobs in a container image.")

    @classmethod
    def cross_check(cls, values: Mapping[str, Any]) -> list[ConfigProblem]:
        return cls._check_checkout(values) + cls._check_signal_lead(values)

    @staticmethod
    def _check_signal_lead(values: Mapping[str, Any]) -> list[ConfigProblem]:
        lead = values.get("signal_lead_s")
        slurm = values.get("slurm")
        if values.get("launcher") == "slurm" and isinstance(slurm, SlurmConfig):
            limit, name = slurm.time_limit_min, "slurm.time_limit_min"
        else:
            limit, name = values.get("job_timeout_min"), "job_timeout_min"
        if lead is None or limit is None or lead < limit * 60:
            return []
        return [
            ConfigProblem(
                "signal_lead_s",
                f"must be shorter than the time limit ({name}={limit:g} min = {limit * 60:g} s), "
                f"got {lead:g}: the job would be signalled as soon as it starts",
            )
        ]

    @staticmethod
    def _check_checkout(values: Mapping[str, Any]) -> list[ConfigProblem]:
        in_wd, git = values.get("run_in_working_dir"), values.get("git_params", 0)
        if in_wd is False and git is None:
            return [
                ConfigProblem(
                    "git_params",
                    "required when run_in_working_dir is false: give the repository to check "
                    "out, or set run_in_working_dir: true",
                )
            ]
        if in_wd is True and git not in (None, 0):
            return [
                ConfigProblem(
                    "git_params",
                    "must be null when run_in_working_dir is true (the script runs from the "
                    "current directory); remove one of the two",
                )
            ]
        return []

    def search_space(self) -> SearchSpace:
        """The search space of ``optimized_params`` (built once, then cached)."""
        space: SearchSpace | None = self.__dict__.get("_space")
        if space is None:
            space = SearchSpace.from_config(self.optimized_params, path="optimized_params")
            object.__setattr__(self, "_space", space)
        return space


#: Each section key with its class, in the order of the reference ("" is the top level).
SECTIONS: tuple[tuple[str, type[Section]], ...] = (
    ("", RunConfig),
    ("git_params", GitParams),
    ("local", LocalConfig),
    ("slurm", SlurmConfig),
    ("singularity", SingularityConfig),
)


def build(data: Mapping[str, Any]) -> tuple[RunConfig | None, list[ConfigProblem]]:
    """Check a config dict against :class:`RunConfig`.

    Returns:
        The config (None if any problem was found) and every problem found.
    """
    problems: list[ConfigProblem] = []
    cfg = build_section(RunConfig, data, "", problems)
    return (cfg if not problems else None), problems


def schema_knows(path: tuple[str | int, ...]) -> bool:
    """Whether :class:`RunConfig` defines the key at ``path`` (e.g. ``("slurm", "mem_gb")``)."""
    return knows(RunConfig, path)
