"""The ``htcondor`` config section: what only HTCondor reads (pure).

CPUs, GPUs, memory and the time limit come from the launcher-neutral ``resources``
section (``request_cpus``, ``request_gpus``, ``request_memory`` of the submit
description); this section holds the pool's own keys, named as cluster_utils names
them, so that its ``cluster_requirements`` map one to one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field

from hpoptim.errors import ConfigProblem
from hpoptim.sections import Section, Strings, cross_rule, rule_error

if TYPE_CHECKING:
    from typing import Self

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_TAG = re.compile(r"^[A-Za-z0-9_]+$")
_COMMAND = re.compile(r"^\+?[A-Za-z_][A-Za-z0-9_.]*\s*=")
#: Submit commands hpoptim writes itself; an extra option must not change them.
RESERVED_COMMANDS = frozenset(
    {
        "universe", "executable", "arguments", "output", "error", "log", "queue",
        "transfer_executable", "getenv", "batch_name", "initialdir",
        "request_cpus", "request_gpus", "request_memory", "request_disk",
        "requirements", "concurrency_limits", "+hpoptimrun", "my.hpoptimrun",
        "+hpoptimtag", "my.hpoptimtag",
    }
)  # fmt: skip


def _cuda(value: object) -> object:
    """A JSON number is a minimum capability (cluster_utils crashes on it; we do not)."""
    if isinstance(value, bool):
        raise rule_error(f"must be a number or a string such as '<8.0', got {value!r}")
    if isinstance(value, int | float):
        return str(value)
    return value


def _cuda_expression(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        cuda_clause(value)
    except ValueError as exc:
        raise rule_error(str(exc)) from None
    return value


def cuda_clause(value: str) -> str:
    """The ``requirements`` clause of ``cuda_requirement``.

    A number is a lower bound (``CUDACapability >= 7.5``); ``<x`` or ``<=x`` an upper
    bound; anything else is an expression over ``CUDACapability`` kept as given.

    Raises:
        ValueError: The value is empty or holds a line break.
    """
    text = value.strip()
    if not text or "\n" in text or "\r" in text:
        raise ValueError(f"must be a number, '<x', '<=x' or an expression, got {value!r}")
    for prefix in ("<=", "<", ">=", ">"):
        if text.startswith(prefix):
            rest = text[len(prefix) :].strip()
            if not _is_number(rest):
                raise ValueError(f"must be {prefix} followed by a number, got {value!r}")
            return f"CUDACapability {prefix} {rest}"
    if _is_number(text):
        return f"CUDACapability >= {text}"
    return f"({text})"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _hosts(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [
        ConfigProblem(f"[{i}]", f"must be a host name, got {host!r}")
        for i, host in enumerate(value)
        if not _HOST.match(host)
    ]
    if bad:
        raise rule_error(problems=bad)
    return value


def _submit_lines(value: object) -> object:
    """A mapping (cluster_utils' form) becomes ``key = value`` lines."""
    if isinstance(value, dict):
        return tuple(f"{key} = {item}" for key, item in value.items())
    if isinstance(value, list):
        return tuple(value)
    return value


def _one_command_each(value: tuple[str, ...]) -> tuple[str, ...]:
    problems = []
    for i, line in enumerate(value):
        name = line.split("=", 1)[0].strip().lower()
        if "\n" in line or "\r" in line or not _COMMAND.match(line):
            why = "must be one submit command such as 'rank = Memory'"
        elif name in RESERVED_COMMANDS or name.startswith("queue"):
            why = f"sets {name!r}, which hpoptim writes itself (see the htcondor keys)"
        else:
            continue
        problems.append(ConfigProblem(f"[{i}]", f"{why}, got {line!r}"))
    if problems:
        raise rule_error(problems=problems)
    return value


class HTCondorSettings(Section):
    """The HTCondor launcher (``htcondor``): what is specific to the pool.

    Each job's CPUs, GPUs, memory and wall time come from the ``resources`` section.
    """

    section_path: ClassVar[str] = "htcondor"

    bid: int | None = Field(
        None, ge=1, description="Bid of every job (condor_submit_bid BID FILE); null: no bid."
    )
    submit_command: str | None = Field(
        None,
        description="Program that submits; null: condor_submit_bid with a bid, else condor_submit.",
    )
    request_disk_mb: int | None = Field(
        None, ge=1, description="Scratch disk per job in MB (request_disk); null: pool default."
    )
    cuda_requirement: Annotated[
        str | None, BeforeValidator(_cuda), AfterValidator(_cuda_expression)
    ] = Field(
        None,
        description="CUDA capability: a number (minimum), '<x'/'<=x' (maximum) or an "
        "expression over CUDACapability.",
    )
    gpu_memory_mb: int | None = Field(
        None,
        ge=0,
        description="Least GPU memory in MB (requirements on GPUs_GlobalMemoryMb); 0 or null: any.",
    )
    hostname_list: Annotated[Strings, AfterValidator(_hosts)] = Field(
        (), description="Run on any one of these hosts; empty: any host."
    )
    forbidden_hostnames: Annotated[Strings, AfterValidator(_hosts)] = Field(
        (), description="Never run on these hosts."
    )
    concurrency_limit: int | None = Field(
        None, ge=1, description="Most jobs of this user's tag running at once; null: no limit."
    )
    concurrency_limit_tag: str = Field(
        "hpoptim", description="Tag of concurrency_limit (concurrency_limits = user.TAG:N)."
    )
    extra_submission_options: Annotated[
        Strings, BeforeValidator(_submit_lines), AfterValidator(_one_command_each)
    ] = Field((), description="Extra submit commands, one 'key = value' each (or a mapping).")
    getenv: bool = Field(True, description="Jobs get the submitting environment (getenv).")
    max_restarts: int = Field(
        3, ge=0, description="Evictions (and failed reconnects) tolerated per job."
    )
    outage_tolerance_s: float = Field(
        900.0, gt=0, description="How long an unreachable schedd is retried before giving up."
    )
    queue_check_interval_s: float = Field(
        300.0, gt=0, description="Interval of the condor_q check for jobs that vanished."
    )

    @cross_rule("concurrency_limit_tag")
    def _tag(self) -> Self:
        if not _TAG.match(self.concurrency_limit_tag):
            problem = ConfigProblem(
                "concurrency_limit_tag",
                f"must be letters, digits and '_', got {self.concurrency_limit_tag!r}",
            )
            raise rule_error(problems=[problem])
        return self

    def submit_argv(self, submit_file: str) -> list[str]:
        """The command that submits ``submit_file``."""
        if self.bid is None:
            return [self.submit_command or "condor_submit", submit_file]
        return [self.submit_command or "condor_submit_bid", str(self.bid), submit_file]

    def requirements(self) -> str | None:
        """The ``requirements`` expression of every job (None: no requirement)."""
        clauses = []
        if self.cuda_requirement is not None:
            clauses.append(cuda_clause(self.cuda_requirement))
        if self.gpu_memory_mb:
            clauses.append(f"GPUs_GlobalMemoryMb >= {self.gpu_memory_mb}")
        if self.hostname_list:
            clauses.append("(" + " || ".join(f'Machine == "{h}"' for h in self.hostname_list) + ")")
        clauses += [f'Machine != "{h}"' for h in self.forbidden_hostnames]
        return " && ".join(clauses) or None

    def concurrency_limits(self) -> str | None:
        """cluster_utils' ``user.TAG:10000//limit`` (a job takes that share of 10,000)."""
        if self.concurrency_limit is None:
            return None
        return f"user.{self.concurrency_limit_tag}:{10000 // self.concurrency_limit}"
