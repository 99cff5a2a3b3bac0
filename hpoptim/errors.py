"""Exception hierarchy of hpoptim.

Every error raised on purpose by hpoptim derives from :class:`HpoptimError` and
carries structured fields (key paths, input strings, file paths) besides its
message, so callers can act on them and ``cli.main`` can render one line each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path


class HpoptimError(Exception):
    """Base class of every error hpoptim raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a configuration.

    Attributes:
        path: Dotted key path of the offending entry (``""`` for the whole config).
        message: What rule is broken and by which value.
        valid_keys: For an unknown key, the keys its section allows. They are not
            part of the message: :class:`ConfigError` lists them once per section.
    """

    path: str
    message: str
    valid_keys: tuple[str, ...] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def at(self, path: str) -> ConfigProblem:
        """The same problem at another key path (e.g. with a prefix added)."""
        return replace(self, path=path)

    @property
    def section(self) -> str:
        """The key path of the mapping holding the key (``""``: the top level)."""
        match = _LAST_KEY.match(self.path)
        return match.group(1) if match else ""


#: ``a.b[2].c`` -> ``a.b[2]`` (the mapping holding the last key).
_LAST_KEY = re.compile(r"(.*?)(?:\.[^.\[\]]*|\[\d+\])\Z")


def valid_key_lines(problems: Iterable[ConfigProblem]) -> list[str]:
    """One line per section with unknown keys among ``problems``, listing its valid keys."""
    lines: dict[str, None] = {}
    for problem in problems:
        if problem.valid_keys is not None:
            where = f"of {problem.section}" if problem.section else "at the top level"
            lines[f"valid keys {where}: {', '.join(problem.valid_keys) or '(none)'}"] = None
    return list(lines)


class ConfigError(HpoptimError):
    """A configuration is invalid; lists every problem found at once.

    The message is a header line, one indented line per problem, then for each
    section with unknown keys one line listing its valid keys.

    Attributes:
        problems: The problems, one per offending key.
        source: The config file, when the problems come from one.
    """

    def __init__(self, problems: Sequence[ConfigProblem], source: Path | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source is not None else ""
        lines = [f"invalid configuration{where} ({len(self.problems)} problem(s)):"]
        lines += [f"  {p}" for p in self.problems]
        lines += valid_key_lines(self.problems)  # not indented: not a problem
        super().__init__("\n".join(lines))

    @classmethod
    def single(cls, path: str, message: str, source: Path | None = None) -> ConfigError:
        """Build an error holding a single problem."""
        return cls([ConfigProblem(path, message)], source)


class OverrideError(HpoptimError):
    """A ``key=value`` override could not be parsed or applied.

    Attributes:
        override: The override string exactly as given.
        index: Its position among the overrides (0-based).
        reason: Why it failed, including how to fix it.
    """

    def __init__(self, override: str, index: int, reason: str) -> None:
        self.override = override
        self.index = index
        self.reason = reason
        super().__init__(f"override #{index + 1} {override!r}: {reason}")


class CheckoutError(HpoptimError):
    """The training repository could not be cloned or checked out at the ref.

    Attributes:
        url: The repository URL or path.
        ref: The ref asked for, if any.
    """

    def __init__(self, message: str, url: str = "", ref: str | None = None) -> None:
        self.url = url
        self.ref = ref
        super().__init__(message)


class LaunchError(HpoptimError):
    """A job could not be submitted, polled or cancelled by a launcher.

    Attributes:
        argv: The command that failed, if a command failed.
        stderr: What that command wrote to stderr.
    """

    def __init__(self, message: str, argv: Sequence[str] | None = None, stderr: str = "") -> None:
        self.argv = tuple(argv) if argv is not None else None
        self.stderr = stderr
        super().__init__(message)


class StorageError(HpoptimError):
    """The results directory or its journal cannot be used.

    Attributes:
        path: The file or directory concerned.
    """

    def __init__(self, message: str, path: Path) -> None:
        self.path = path
        super().__init__(message)


class RunStoppedError(HpoptimError):
    """The run was stopped on purpose (too many failures, or a signal).

    Attributes:
        reason: Why the run stopped.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TooManyFailuresError(RunStoppedError):
    """The run was stopped because more than ``max_failed_fraction`` of its settings failed."""


class JobSetupError(RunStoppedError):
    """The run was stopped because a job could not set itself up (exit code 78)."""


class RunFailedError(HpoptimError):
    """A run spent its budget but no setting succeeded.

    Attributes:
        reason: Why the run counts as failed.
        summary: The end-of-run summary (set once the reports are written).
    """

    def __init__(self, reason: str, summary: str = "") -> None:
        self.reason = reason
        self.summary = summary
        super().__init__(reason)


class RerunRefusedError(HpoptimError):
    """``hpoptim rerun`` cannot run a job again as it ran: the job is unknown, or its
    recorded provenance cannot rebuild its code or environment.

    Attributes:
        job_id: The job asked for.
    """

    def __init__(self, message: str, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(message)
