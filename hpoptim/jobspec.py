"""What the driver knows about one job: its spec (with its ``resources``), files, state."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from hpoptim.contract import (
    METRICS_FILE_NAME,
    PARAMS_FILE_NAME,
    STDERR_FILE_NAME,
    STDOUT_FILE_NAME,
)
from hpoptim.errors import ConfigProblem
from hpoptim.jobstate import JobState as JobState  # re-exported: launchers use it with JobSpec
from hpoptim.messages import did_you_mean, env_problem
from hpoptim.sections import AbsolutePath, Section, Strings, cross_rule, rule_error


@dataclass(frozen=True)
class JobPaths:
    """Every file name of one run directory."""

    run_dir: Path

    @property
    def params_file(self) -> Path:
        return self.run_dir / PARAMS_FILE_NAME

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / METRICS_FILE_NAME

    @property
    def stdout(self) -> Path:
        return self.run_dir / STDOUT_FILE_NAME

    @property
    def stderr(self) -> Path:
        return self.run_dir / STDERR_FILE_NAME


#: Longest wall time accepted (one year, in minutes): longer ones overflow timers.
MAX_TIME_LIMIT_MIN = 525_600.0


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
        raise rule_error(
            f"must be a signal name such as 'SIGTERM', 'TERM' or 'USR1', got {value!r}"
            + did_you_mean(name, list(signal.Signals.__members__))
        )
    return value


class JobResources(Section):
    """What every job asks of the machine or cluster (``resources``), on any launcher."""

    section_path: ClassVar[str] = "resources"
    #: cluster_utils' names of these keys, for "did you mean".
    synonyms: ClassVar[Mapping[str, str]] = {
        "request_cpus": "n_cpus_per_job",
        "request_gpus": "n_gpus_per_job",
        "memory_in_mb": "mem_gb",
        "request_time": "time_limit_min",
    }

    n_cpus_per_job: int = Field(1, ge=1, description="CPUs per job.")
    n_gpus_per_job: int = Field(0, ge=0, description="GPUs per job.")
    mem_gb: float | None = Field(
        None, gt=0, description="Memory per job in GB; null: the launcher's default."
    )
    time_limit_min: float | None = Field(
        None,
        gt=0,
        le=MAX_TIME_LIMIT_MIN,
        description="Wall time per process in minutes, on every launcher; null: none.",
    )
    signal_lead_s: float = Field(
        30.0, ge=0, description="Seconds between timeout_signal and the hard kill."
    )
    timeout_signal: Annotated[str, AfterValidator(_signal_name)] = Field(
        "SIGTERM",
        description="Signal sent signal_lead_s before the time limit.",
        json_schema_extra={"rule_doc": "signal name"},
    )

    @cross_rule("signal_lead_s", "time_limit_min")
    def _lead_below_limit(self) -> JobResources:
        lead, limit = self.signal_lead_s, self.time_limit_min
        if limit is None or lead < limit * 60:
            return self
        raise rule_error(
            problems=[
                ConfigProblem(
                    "signal_lead_s",
                    f"must be shorter than the time limit (time_limit_min={limit:g} min = "
                    f"{limit * 60:g} s), got {lead:g}: the job would be signalled as soon as "
                    "it starts",
                )
            ]
        )

    @property
    def signal(self) -> int:
        """The number of :attr:`timeout_signal`."""
        return signal_number(self.timeout_signal)

    @property
    def time_limit_s(self) -> float | None:
        """:attr:`time_limit_min` in seconds (None: no limit)."""
        return None if self.time_limit_min is None else self.time_limit_min * 60.0


#: The resources of a job that asks for nothing in particular (shared: it is frozen).
DEFAULT_RESOURCES = JobResources()


def _pairs_to_dict(value: Any) -> Any:
    """Environment given as ``(("K", "v"), ...)`` pairs -> a dict (a mapping passes)."""
    if isinstance(value, list | tuple) and all(
        isinstance(p, list | tuple) and len(p) == 2 for p in value
    ):
        return dict(value)
    return value


def _env_vars(value: dict[str, str]) -> dict[str, str]:
    """Environment variables a process (and a shell, on Slurm) can take."""
    bad = [ConfigProblem(k, why) for k, v in value.items() if (why := env_problem(k, v))]
    if bad:
        raise rule_error(problems=bad)
    return value


#: Environment variables: a mapping of names to strings, each name valid for a shell.
EnvVars = Annotated[dict[str, str], BeforeValidator(_pairs_to_dict), AfterValidator(_env_vars)]

RUNTIMES = ("apptainer", "singularity")


class ContainerOptions(Section):
    """Run every job inside a Singularity/Apptainer image (``singularity``).

    The config's ``singularity`` section (which also checks that the image exists)
    and what :mod:`hpoptim.launchers.container` wraps a job with.
    """

    section_path: ClassVar[str] = "singularity"

    image: AbsolutePath = Field(description="Image file ('~' expanded; must exist).")
    executable: str | None = Field(
        None,
        description="Container binary, 'apptainer' or 'singularity' (or a path to one); "
        "null: whichever is on PATH.",
    )
    use_run: bool = Field(False, description="Use 'run' instead of 'exec'.")
    bind: Strings = Field((), description="Extra --bind specs (src[:dst[:opts]]).")
    nv: bool = Field(False, description="Pass --nv (NVIDIA GPUs).")
    containall: bool = Field(False, description="Pass --containall.")
    cleanenv: bool = Field(False, description="Pass --cleanenv.")
    pwd: str | None = Field(None, description="Working directory inside the container (--pwd).")
    options: Strings = Field((), description="Extra options for exec/run.")
    env: EnvVars = Field(
        default_factory=dict, description="Environment variables set in the container."
    )

    @field_validator("executable")
    @classmethod
    def _runtime(cls, value: str | None) -> str | None:
        if value is not None and Path(value).name not in RUNTIMES:
            raise rule_error(f"must be 'apptainer', 'singularity' or null, got {value!r}")
        return value


@dataclass(frozen=True)
class JobSpec:
    """Everything a launcher needs to start one job.

    Attributes:
        job_id: Unique id within the run, safe as a file name (e.g. ``"17/run_0.2-1"``
            is not allowed; use ``"17-r0-i2-a1"``).
        argv: The command, an argv list (never a shell string). The launcher wraps
            it in the container when ``container`` is set.
        cwd: Working directory of the job.
        paths: The run directory and its files (stdout/stderr go there).
        env: Extra environment variables, added to the driver's environment.
        resources: CPUs, GPUs, memory, wall time, and the signal sent
            ``resources.signal_lead_s`` seconds before it (the config's ``resources``
            section itself, shared by every job of a run).
        container: Optional container wrapping.
        binds: Host paths the container must see (run dir, checkout).
    """

    job_id: str
    argv: tuple[str, ...]
    cwd: Path
    paths: JobPaths
    env: Mapping[str, str] = field(default_factory=dict)
    resources: JobResources = DEFAULT_RESOURCES
    container: ContainerOptions | None = None
    binds: tuple[Path, ...] = ()


@dataclass(frozen=True)
class JobStatus:
    """A state change of a job as seen by a launcher.

    Attributes:
        job_id: The job's id (``JobSpec.job_id``).
        state: The new state.
        native_id: The launcher's id for it (pid, Slurm job id).
        exit_code: Exit code once known (``None`` if killed by a signal or lost).
        signal: The signal that killed it, if any.
        reason: Human-readable detail (Slurm state, timeout, ...).
        time: When the change was seen (epoch seconds).
    """

    job_id: str
    state: JobState
    native_id: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    time: float = 0.0
