"""Render sbatch scripts for :class:`~hpoptim.launchers.slurm.SlurmLauncher` (pure).

A single job's script holds its argv and environment as shell words quoted with
:func:`shlex.quote`. A job array's script holds none: task ``i`` reads its argv and
environment verbatim from the NUL-separated files ``TASKS/i.argv`` and
``TASKS/i.env``, and ``TASKS/i`` is a symlink to its run directory, where Slurm
writes its stdout/stderr (``--output=TASKS/%a/stdout.log``) and the script its
exit status. Both are rendered from ``templates/slurm_job.sh``.

``#SBATCH`` lines are parsed by sbatch with shell-like quoting, so
:func:`shlex.quote` fits them too; a value holding a newline cannot be written
there and is refused. In file name patterns Slurm expands ``%`` sequences, so a
literal ``%`` is written ``%%`` (unless the path holds a backslash, which turns
the expansion off).
"""

from __future__ import annotations

import math
import re
import shlex
import signal
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import AfterValidator, Field

from hpoptim.contract import EXIT_STATUS_FILE_NAME
from hpoptim.errors import ConfigProblem, LaunchError
from hpoptim.jobspec import JobSpec
from hpoptim.launchers.base import poll_backoff_problems
from hpoptim.messages import ENV_NAME
from hpoptim.sections import Section, Strings, cross_rule, rule_error

if TYPE_CHECKING:
    from typing import Self

LIMIT_SIGNAL = "USR2"  # what Slurm sends the batch shell before the time limit
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _one_option_each(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [
        ConfigProblem(f"[{i}]", f"must be one option such as '--constraint=a100', got {option!r}")
        for i, option in enumerate(value)
        if not option.startswith("-") or "\n" in option
    ]
    if bad:
        raise rule_error(problems=bad)
    return value


class SlurmSettings(Section):
    """The Slurm launcher (``slurm``): what is specific to the cluster.

    Each job's CPUs, GPUs, memory and wall time come from the ``resources`` section,
    through each spec's ``resources``.
    """

    section_path: ClassVar[str] = "slurm"

    partition: str | None = Field(None, description="Partition (sbatch --partition).")
    account: str | None = Field(None, description="Account (sbatch --account).")
    qos: str | None = Field(None, description="Quality of service (sbatch --qos).")
    gres: str | None = Field(
        None, description="Generic resources (sbatch --gres), instead of resources.n_gpus_per_job."
    )
    extra_sbatch_options: Annotated[Strings, AfterValidator(_one_option_each)] = Field(
        (), description="Extra sbatch options, e.g. ['--constraint=a100']."
    )
    poll_interval_s: float = Field(2.0, gt=0, description="First interval between squeue polls.")
    max_poll_interval_s: float = Field(
        30.0, gt=0, description="Longest interval between polls (backoff)."
    )
    outage_tolerance_min: float = Field(
        15.0,
        gt=0,
        description="How long Slurm's controller may stay out of reach before the run stops "
        "(resumable); meanwhile ended jobs are still noticed and submissions wait.",
    )
    use_job_arrays: bool = Field(True, description="Submit jobs started together as one job array.")
    n_max_queued_jobs: int | None = Field(
        None, ge=1, description="Most jobs queued at once; null: no limit."
    )

    @cross_rule("poll_interval_s", "max_poll_interval_s")
    def _poll_backoff(self) -> Self:
        if problems := poll_backoff_problems(self.poll_interval_s, self.max_poll_interval_s):
            raise rule_error(problems=problems)
        return self


class SlurmOptions(SlurmSettings):
    """The ``slurm`` section plus what the run gives the launcher.

    Attributes:
        script_dir: Where batch scripts and task files are written.
        job_name_prefix: Start of every Slurm job name.
    """

    script_dir: Path = Path("slurm")
    job_name_prefix: str = "hpoptim"

    @classmethod
    def from_settings(
        cls, settings: SlurmSettings, *, script_dir: Path, job_name_prefix: str
    ) -> SlurmOptions:
        """The validated section with the run's directory and name added."""
        return cls(**dict(settings), script_dir=script_dir, job_name_prefix=job_name_prefix)


def job_name(prefix: str, run_key: str, tag: str) -> str:
    """A Slurm job name unique per run and submission: ``prefix-runkey-tag``, sanitised."""
    return _NAME_UNSAFE.sub("_", f"{prefix}-{run_key}-{tag}")


def sbatch_options(
    spec: JobSpec, options: SlurmOptions, *, name: str, stdout: str, stderr: str
) -> list[str]:
    """The sbatch options of ``spec`` (for an array: of every task), as ``--flag=value``."""
    res = spec.resources
    flags = [
        f"--job-name={name}",
        f"--output={stdout}",
        f"--error={stderr}",
        "--open-mode=append",
        f"--chdir={spec.cwd}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={max(res.n_cpus_per_job, 1)}",
        "--no-requeue",
    ]
    for flag, value in (
        ("partition", options.partition),
        ("account", options.account),
        ("qos", options.qos),
    ):
        if value:
            flags.append(f"--{flag}={value}")
    if options.gres:
        flags.append(f"--gres={options.gres}")
    elif res.n_gpus_per_job > 0:
        flags.append(f"--gres=gpu:{res.n_gpus_per_job}")
    if res.mem_gb is not None:
        flags.append(f"--mem={math.ceil(res.mem_gb * 1024)}M")
    minutes = res.time_limit_min
    if minutes is not None:
        flags.append(f"--time={max(1, math.ceil(minutes))}")
        flags.append(f"--signal=B:{LIMIT_SIGNAL}@{max(1, math.ceil(res.signal_lead_s))}")
    flags.extend(options.extra_sbatch_options)
    return flags


def render_single(spec: JobSpec, argv: Sequence[str], options: SlurmOptions, name: str) -> str:
    """The batch script of one job whose command is ``argv``."""
    flags = sbatch_options(
        spec,
        options,
        name=name,
        stdout=filename_pattern(spec.paths.stdout),
        stderr=filename_pattern(spec.paths.stderr),
    )
    check_env(spec)
    setup = [f"argv=({' '.join(shlex.quote(a) for a in argv)})"]
    setup += [f"export {key}={shlex.quote(value)}" for key, value in spec.env.items()]
    setup.append(f"exit_file={shlex.quote(str(spec.paths.run_dir / EXIT_STATUS_FILE_NAME))}")
    return _fill(spec, flags, "\n".join(setup), f"job {spec.job_id}")


def render_array(specs: Sequence[JobSpec], options: SlurmOptions, name: str, tasks: Path) -> str:
    """The batch script of a job array whose task files are under ``tasks``.

    Every spec must share resources, cwd and signal timing with ``specs[0]``.
    """
    first = specs[0]
    task_pattern = filename_pattern(tasks)
    flags = sbatch_options(
        first,
        options,
        name=name,
        stdout=f"{task_pattern}/%a/{first.paths.stdout.name}",
        stderr=f"{task_pattern}/%a/{first.paths.stderr.name}",
    )
    flags.insert(1, f"--array=0-{len(specs) - 1}")
    setup = "\n".join(
        [
            f'task={shlex.quote(str(tasks))}/"$SLURM_ARRAY_TASK_ID"',
            "mapfile -d '' -t argv <\"$task.argv\"",
            "mapfile -d '' -t env <\"$task.env\"",
            'if [ "${#env[@]}" -gt 0 ]; then export -- "${env[@]}"; fi',
            f'exit_file="$task/{EXIT_STATUS_FILE_NAME}"',
        ]
    )
    ids = ", ".join(s.job_id for s in specs)
    return _fill(first, flags, setup, f"the {len(specs)} jobs {ids} as one job array")


def task_files(spec: JobSpec, argv: Sequence[str]) -> tuple[bytes, bytes]:
    """The NUL-separated argv and ``KEY=VALUE`` environment files of one array task."""
    check_env(spec)
    env = [f"{key}={value}" for key, value in spec.env.items()]
    return _nul_join(argv), _nul_join(env)


def array_key(spec: JobSpec) -> tuple[object, ...]:
    """Specs with equal keys can share one job array."""
    names = (spec.paths.stdout.name, spec.paths.stderr.name)
    return (spec.resources, spec.cwd, names)


def filename_pattern(path: Path) -> str:
    """``path`` as an sbatch ``--output`` value that Slurm does not expand."""
    text = str(path)
    return text if "\\" in text else text.replace("%", "%%")


def check_env(spec: JobSpec) -> None:
    """Refuse environment variable names that a shell cannot export."""
    for key, value in spec.env.items():
        if not ENV_NAME.match(key) or "\0" in value:
            raise LaunchError(
                f"job {spec.job_id}: environment variable {key!r}={value!r} cannot be passed "
                "to a Slurm job: names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL"
            )


def _fill(spec: JobSpec, flags: Sequence[str], setup: str, what: str) -> str:
    lines = []
    for flag in flags:
        if "\n" in flag or "\r" in flag:
            raise LaunchError(
                f"job {spec.job_id}: sbatch option {flag!r} holds a line break; Slurm cannot "
                "take it from a batch script (rename the path or value)"
            )
        lines.append(f"#SBATCH {shlex.quote(flag)}")
    values = {
        "sbatch_options": "\n".join(lines),
        "what": what.replace("\n", " "),
        "signal": _signal_name(spec.resources.signal),
        "exit_file_name": EXIT_STATUS_FILE_NAME,
        "setup": setup,
    }
    # one pass: a value holding "{{setup}}" (a path, say) stays as it is
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), _template())


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name.removeprefix("SIG")
    except ValueError:
        return str(signum)


def _nul_join(items: Sequence[str] | Mapping[str, str]) -> bytes:
    return b"".join(item.encode("utf-8", "surrogateescape") + b"\0" for item in items)


@cache
def _template() -> str:
    return (
        resources.files("hpoptim.launchers")
        .joinpath("templates/slurm_job.sh")
        .read_text(encoding="utf-8")
    )
