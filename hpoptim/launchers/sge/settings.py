"""The ``sge`` config section: what is specific to a Grid Engine cluster.

Each job's slots, memory and wall time come from the shared ``resources`` section;
this section names how the site spells them (parallel environment, memory
resources), where jobs go (queue, project), and how the launcher polls.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import AfterValidator, Field

from hpoptim.errors import ConfigProblem
from hpoptim.launchers.base import poll_backoff_problems
from hpoptim.sections import Section, Strings, cross_rule, rule_error

if TYPE_CHECKING:
    from typing import Self

#: qsub options the launcher sets itself (a second value would contradict it) or that
#: would break how it follows jobs.
RESERVED_OPTIONS = {
    "-t": "array jobs are how the launcher submits",
    "-N": "the launcher names jobs to find them again",
    "-o": "stdout goes to each job's run directory",
    "-e": "stderr goes to each job's run directory",
    "-j": "stdout and stderr go to separate files",
    "-S": "the job script runs in bash",
    "-shell": "the job script runs in bash, started directly",
    "-cwd": "the working directory is each job's cwd",
    "-wd": "the working directory is each job's cwd",
    "-V": "the launcher passes the driver's environment itself",
    "-v": "set environment variables with the job's env",
    "-terse": "the launcher reads qsub's answer itself",
    "-sync": "the launcher follows jobs itself",
    "-b": "the job script is started as a command (-b y)",
    "-pe": "use sge.parallel_environment and resources.n_cpus_per_job",
    "-q": "use sge.queue",
    "-P": "use sge.project",
}
_NAME = re.compile(r"^[A-Za-z0-9_.@*,!&|()-]+$")


def _valid_options(value: tuple[str, ...]) -> tuple[str, ...]:
    problems = []
    for i, option in enumerate(value):
        words = option_words(option)
        flag = words[0] if words else ""
        if not flag.startswith("-") or "\n" in option or "\0" in option:
            problems.append(
                ConfigProblem(
                    f"[{i}]", f"must be one option such as '-l gpu=1' or '-R y', got {option!r}"
                )
            )
        elif flag in RESERVED_OPTIONS:
            problems.append(
                ConfigProblem(f"[{i}]", f"{flag} is set by the launcher ({RESERVED_OPTIONS[flag]})")
            )
    if problems:
        raise rule_error(problems=problems)
    return value


def option_words(option: str) -> list[str]:
    """The argv words of one ``extra_qsub_options`` entry (``[]`` if it cannot be split)."""
    try:
        return shlex.split(option)
    except ValueError:
        return []


def _resource_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise rule_error(f"must be a Grid Engine resource name such as 'h_vmem', got {value!r}")
    return value


def _object_name(value: str | None) -> str | None:
    if value is not None and not _NAME.match(value):
        raise rule_error(f"must be a Grid Engine name (no spaces or line breaks), got {value!r}")
    return value


class SgeSettings(Section):
    """The Grid Engine launcher (``sge``): what is specific to the cluster."""

    section_path: ClassVar[str] = "sge"

    queue: Annotated[str | None, AfterValidator(_object_name)] = Field(
        None, description="Queue (qsub -q), e.g. 'all.q'; null: the scheduler picks."
    )
    project: Annotated[str | None, AfterValidator(_object_name)] = Field(
        None, description="Project (qsub -P)."
    )
    parallel_environment: Annotated[str, AfterValidator(_object_name)] = Field(
        "smp",
        description="Parallel environment for jobs of more than one CPU (qsub -pe PE N).",
    )
    mem_resources: Annotated[Strings, AfterValidator(lambda v: tuple(map(_resource_name, v)))] = (
        Field(
            ("h_vmem",),
            description="Resources that get resources.mem_gb (per slot, as Grid Engine "
            "counts them), e.g. ['h_vmem'] or ['mem_free', 'h_vmem']; []: none.",
        )
    )
    gpu_resource: Annotated[str | None, AfterValidator(_resource_name)] = Field(
        "gpu", description="Resource that gets resources.n_gpus_per_job (-l NAME=N)."
    )
    extra_qsub_options: Annotated[Strings, AfterValidator(_valid_options)] = Field(
        (), description="Extra qsub options, one each, e.g. ['-l arch=lx-amd64', '-R y']."
    )
    poll_interval_s: float = Field(2.0, gt=0, description="First interval between qstat polls.")
    max_poll_interval_s: float = Field(
        30.0, gt=0, description="Longest interval between polls (backoff)."
    )
    outage_tolerance_min: float = Field(
        15.0,
        ge=0,
        description="How long Grid Engine may not answer (qmaster down) before the run "
        "gives up on its jobs.",
    )
    use_job_arrays: bool = Field(
        True, description="Submit jobs started together as one array job (one qsub)."
    )
    n_max_queued_jobs: int | None = Field(
        None, ge=1, description="Most jobs queued at once; null: no limit."
    )

    @cross_rule("poll_interval_s", "max_poll_interval_s")
    def _poll_backoff(self) -> Self:
        if problems := poll_backoff_problems(self.poll_interval_s, self.max_poll_interval_s):
            raise rule_error(problems=problems)
        return self


class SgeOptions(SgeSettings):
    """The ``sge`` section plus what the run gives the launcher.

    Attributes:
        script_dir: Where job scripts and task files are written.
        job_name_prefix: Start of every Grid Engine job name.
    """

    script_dir: Path = Path("sge")
    job_name_prefix: str = "hpoptim"

    @classmethod
    def from_settings(
        cls, settings: SgeSettings, *, script_dir: Path, job_name_prefix: str
    ) -> SgeOptions:
        """The validated section with the run's directory and name added."""
        return cls(**dict(settings), script_dir=script_dir, job_name_prefix=job_name_prefix)
