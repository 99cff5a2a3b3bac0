"""The qsub call and job script of one Grid Engine array job (pure, apart from reading
the template and the driver's environment).

Every batch goes out as one array job (``qsub -t 1-N``), also a batch of one: task
``i`` reads its argv and environment verbatim from the NUL-separated files
``TASKS/i.argv`` and ``TASKS/i.env`` (:mod:`hpoptim.launchers.batch_files`), and
``TASKS/i`` is a symlink to its run directory, where Grid Engine writes its stdout
and stderr (``-o TASKS/$TASK_ID/stdout.log``) and the script its exit status.

All qsub options are argv words, none is written into the script, which Grid Engine
starts as ``/bin/bash --noprofile --norc SCRIPT`` (``-b y -shell no``): never as a login
shell, whatever the queue's ``shell_start_mode`` and ``login_shells``. Grid Engine reads
``-o``/``-e`` values as ``[host:]path[,...]`` and expands ``$`` names in them, so
those paths may hold none of ``:,$``.
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

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobSpec
from hpoptim.launchers.batch_files import nul_join
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.launchers.sge.settings import SgeOptions, option_words
from hpoptim.messages import ENV_NAME

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_PATH_UNSAFE = re.compile(r"[:,$\n\r]")
#: What Grid Engine sets in each job itself; the driver's values would be wrong there.
_JOB_VARS = frozenset(
    {
        "JOB_ID", "JOB_NAME", "JOB_SCRIPT", "NSLOTS", "NHOSTS", "NQUEUES", "PE", "PE_HOSTFILE",
        "QUEUE", "RESTARTED", "REQUEST", "ENVIRONMENT", "TMPDIR", "TMP", "HOSTNAME", "ARC",
        "SHLVL", "PWD", "OLDPWD", "_", "BASHOPTS", "SHELLOPTS", "BASH_ARGV0", "EUID", "UID",
        "PPID",
    }
)  # fmt: skip
_JOB_VAR_PREFIXES = ("SGE_TASK_", "SGE_O_", "SGE_STD", "SGE_CWD", "SGE_JOB_", "SGE_BINARY")


def job_name(prefix: str, run_key: str, tag: str) -> str:
    """A job name unique per run and submission: ``prefix-runkey-tag``, sanitised.

    Grid Engine job names may not start with a digit or hold ``/:@\\*?`` or spaces.
    """
    name = _NAME_UNSAFE.sub("_", f"{prefix}-{run_key}-{tag}")
    return name if not name[:1].isdigit() else f"j{name}"


def array_key(spec: JobSpec) -> tuple[object, ...]:
    """Specs with equal keys can share one array job."""
    return (spec.resources, spec.cwd, spec.paths.stdout.name, spec.paths.stderr.name)


def qsub_argv(
    group: Sequence[JobSpec], options: SgeOptions, *, name: str, tasks: Path, script: Path
) -> list[str]:
    """The ``qsub`` call that submits ``group`` (sharing :func:`array_key`) as one array job."""
    first = group[0]
    _check_path(first, tasks, "the launcher's directory")
    _check_path(first, first.cwd, "the working directory")
    res = first.resources
    argv = ["qsub", "-terse", "-N", name, "-t", f"1-{len(group)}", "-b", "y", "-shell", "no"]
    argv += ["-wd", str(first.cwd), "-r", "n"]
    argv += ["-o", f"{tasks}/$TASK_ID/{first.paths.stdout.name}"]
    argv += ["-e", f"{tasks}/$TASK_ID/{first.paths.stderr.name}"]
    if options.queue:
        argv += ["-q", options.queue]
    if options.project:
        argv += ["-P", options.project]
    slots = max(res.n_cpus_per_job, 1)
    if slots > 1:
        argv += ["-pe", options.parallel_environment, str(slots)]
    if res.mem_gb is not None:
        per_slot_mb = math.ceil(res.mem_gb * 1024 / slots)  # Grid Engine counts per slot
        argv += [w for r in options.mem_resources for w in ("-l", f"{r}={per_slot_mb}M")]
    if res.n_gpus_per_job > 0 and options.gpu_resource:
        argv += ["-l", f"{options.gpu_resource}={res.n_gpus_per_job}"]
    limit = res.time_limit_s
    if limit is not None:
        argv += ["-l", f"h_rt={max(1, math.ceil(limit))}"]
    for option in options.extra_qsub_options:
        argv += option_words(option)
    # bash runs the script itself, not as a login shell: a site's or user's shell start-up
    # files (module systems, pyenv, conda hooks) would slow every job and may hang on a
    # lock a killed job left; the job gets the driver's environment instead
    return [*argv, "/bin/bash", "--noprofile", "--norc", str(script)]


def render_script(group: Sequence[JobSpec], tasks: Path) -> str:
    """The job script of the array job whose task files are under ``tasks``."""
    first = group[0]
    limit = first.resources.time_limit_s
    lead = first.resources.signal_lead_s
    signal_after = "" if limit is None else f"{max(0.0, limit - lead):.3f}"
    ids = ", ".join(s.job_id for s in group)
    what = f"job {ids}" if len(group) == 1 else f"the {len(group)} jobs {ids}"
    values = {
        "what": what.replace("\n", " "),
        "tasks": shlex.quote(str(tasks)),
        "signal": _signal_name(first.resources.signal),
        "lead_s": f"{lead:g}",
        "signal_after_s": signal_after,
        "exit_file_name": EXIT_FILE_NAME,
    }
    # one pass: a value holding "{{tasks}}" (a path, say) stays as it is
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), _template())


def task_files(
    spec: JobSpec, argv: Sequence[str], driver_env: Mapping[str, str]
) -> tuple[bytes, bytes]:
    """The NUL-separated argv and ``KEY=VALUE`` environment files of one task.

    The environment is the driver's (as ``qsub -V`` would pass it, less what Grid
    Engine sets per job) updated with the spec's own variables.
    """
    for key, value in spec.env.items():
        if not ENV_NAME.match(key) or "\0" in value:
            raise LaunchError(
                f"job {spec.job_id}: environment variable {key!r}={value!r} cannot be passed "
                "to a Grid Engine job: names must match [A-Za-z_][A-Za-z0-9_]* and values "
                "hold no NUL"
            )
    env = {k: v for k, v in driver_env.items() if _passed_on(k, v)}
    env.update(spec.env)
    return nul_join(list(argv)), nul_join([f"{k}={v}" for k, v in env.items()])


def _passed_on(key: str, value: str) -> bool:
    return (
        bool(ENV_NAME.match(key))
        and "\0" not in value
        and key not in _JOB_VARS
        and not key.startswith(_JOB_VAR_PREFIXES)
    )


def _check_path(spec: JobSpec, path: Path, what: str) -> None:
    if _PATH_UNSAFE.search(str(path)):
        raise LaunchError(
            f"job {spec.job_id}: {what} {str(path)!r} holds one of ':,$' or a line break, "
            "which Grid Engine reads as part of its path syntax; use a path without them"
        )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name.removeprefix("SIG")
    except ValueError:
        return str(signum)


@cache
def _template() -> str:
    return (
        resources.files("hpoptim.launchers")
        .joinpath("templates/sge_job.sh")
        .read_text(encoding="utf-8")
    )
