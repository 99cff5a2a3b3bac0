"""What the loop is told by the config: budget, parallelism, stopping, the shared job part."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpoptim.config.stopping import EarlyStopping
from hpoptim.jobspec import DEFAULT_RESOURCES, ContainerOptions, JobResources
from hpoptim.state.history import Lifecycle, RunHistory, SettingRecord

if TYPE_CHECKING:
    from hpoptim.config import RunConfig


@dataclass(frozen=True)
class LoopSettings:
    """How many settings to run, how many at once, and when to stop.

    A run builds it from its config with :meth:`from_config`; the defaults here serve
    tests that build a loop by hand.
    """

    n_samples: int
    n_in_flight: int
    n_completed_before_resubmit: int = 1
    minimize: bool = True
    max_failed_fraction: float = 0.5
    n_settings_before_failure_check: int = 5
    poll_timeout_s: float = 0.5
    seed: int = 0
    deterministic_order: bool = False

    @classmethod
    def from_config(cls, cfg: RunConfig, seed: int) -> LoopSettings:
        """The loop settings of ``cfg`` for a run drawn with ``seed``."""
        deterministic = cfg.deterministic_order
        return cls(
            n_samples=cfg.number_of_samples,
            n_in_flight=cfg.n_jobs_per_iteration,
            n_completed_before_resubmit=cfg.n_completed_jobs_before_resubmit,
            minimize=cfg.lower_is_better,
            max_failed_fraction=cfg.max_failed_fraction,
            n_settings_before_failure_check=cfg.n_settings_before_failure_check,
            seed=seed,
            deterministic_order=cfg.seed is not None if deterministic is None else deterministic,
        )


@dataclass(frozen=True)
class JobTemplate:
    """What every job of the run shares; the loop adds the per-job parts.

    Attributes:
        command: argv prefix; the params file path is appended (e.g. python, script).
        cwd: Working directory of every job (the checkout root or working dir).
        fixed_params: Nested fixed parameters, overlaid by the sampled ones.
        env: Extra environment variables.
        resources: CPUs, GPUs, memory, wall time of each job and the signal before it.
        container: Optional Singularity/Apptainer wrapping.
        binds: Extra host paths the container must see.
    """

    command: tuple[str, ...]
    cwd: Path
    fixed_params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    resources: JobResources = DEFAULT_RESOURCES
    container: ContainerOptions | None = None
    binds: tuple[Path, ...] = ()


@dataclass(frozen=True)
class RunPlan:
    """Everything the loop needs to know that comes from the config."""

    settings: LoopSettings
    lifecycle: Lifecycle
    template: JobTemplate
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)


ProgressHook = Callable[[RunHistory, SettingRecord], None]
EventHook = Callable[[RunHistory, Mapping[str, Any]], None]
"""Told of every event the loop journals, after the history has applied it (the
console's progress display); it must be cheap, it runs inside the loop."""
