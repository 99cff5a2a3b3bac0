"""Git repositories for :mod:`hpoptim.source.checkout`: what a checkout is made from and of, and
the low-level git and directory operations it is made with.

:class:`GitSource` (declared in :mod:`hpoptim.source.git_source`) is the config's
``git_params``; :class:`CheckoutInfo` records where jobs run and which commit that is. The
helpers run git through GitPython with argument lists (never a shell), read ``git ls-remote``
output, and install a finished clone atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import git

from hpoptim.errors import CheckoutError
from hpoptim.log import get_logger
from hpoptim.state.provenance import WorktreeChanges

logger = get_logger(__name__)


_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_TMP_MARK = ".tmp-"
_LS_REMOTE_TIMEOUT_S = 120.0
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}


@dataclass(frozen=True)
class CheckoutInfo:
    """Where jobs run and which code that is.

    Attributes:
        root: Directory jobs run in; ``script_relative_path`` is relative to it.
        commit: Full SHA of the checked-out commit (``None`` outside a git repository).
        dirty: The files jobs run differ from ``commit`` (see ``changes``).
        is_local: The code comes from a local directory rather than a remote URL.
        url: Repository URL or absolute path (``None`` outside a git repository).
        ref: The ref asked for (branch, tag or commit), or ``None``.
        ref_kind: ``"branch"``, ``"tag"``, ``"commit"`` or ``None``.
        cloned: Jobs run in a clone made by hpoptim (not in the working directory).
        top: The repository's top directory (``None`` outside a git repository).
        changes: Modified, staged and untracked files (ignored ones excluded); for a
            clone made by hpoptim, only tracked files are looked at (jobs may write
            their outputs into it).
    """

    root: Path
    commit: str | None
    dirty: bool
    is_local: bool
    url: str | None
    ref: str | None = None
    ref_kind: str | None = None
    cloned: bool = False
    top: Path | None = None
    changes: WorktreeChanges = field(default_factory=WorktreeChanges)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields the journal's ``checkout`` holds."""
        data = asdict(self)
        del data["changes"], data["top"]
        data["root"] = str(self.root)
        return data


def _head_sha(repo: git.Repo) -> str | None:
    try:
        return str(repo.head.commit.hexsha)
    except ValueError:  # unborn HEAD: a repository without commits
        return None


def _git(cwd: Path | None = None) -> git.Git:
    runner = git.Git(cwd)
    env = dict(_GIT_ENV)
    if "GIT_SSH_COMMAND" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    runner.update_environment(**env)
    return runner


def _last_line(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or "").strip().strip("'").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else str(exc)


class _Refs:
    """Branches and tags of a repository, name -> commit SHA."""

    def __init__(
        self, branches: Mapping[str, str], tags: Mapping[str, str], head: str | None
    ) -> None:
        self.branches = dict(branches)
        self.tags = dict(tags)
        self.head = head

    @classmethod
    def from_ls_remote(cls, text: str) -> _Refs:
        branches: dict[str, str] = {}
        tags: dict[str, str] = {}
        head = None
        for line in text.splitlines():
            sha, _, name = line.partition("\t")
            if name == "HEAD":
                head = sha
            elif name.startswith("refs/heads/"):
                branches[name.removeprefix("refs/heads/")] = sha
            elif name.startswith("refs/tags/"):
                tag = name.removeprefix("refs/tags/")
                if tag.endswith("^{}"):  # peeled annotated tag: the commit it points to
                    tags[tag.removesuffix("^{}")] = sha
                else:
                    tags.setdefault(tag, sha)
        return cls(branches, tags, head)


def _rev_parse(runner: git.Git, ref: str) -> str | None:
    try:
        return str(runner.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}"))
    except git.GitCommandError:
        return None


def _local_path(url: str) -> Path | None:
    """The repository's directory if ``url`` names an existing local path."""
    if "://" in url:
        return None
    path = Path(url).expanduser()
    if path.exists():
        return path.resolve()
    if url.startswith(("/", "~", "./", "../")) or re.fullmatch(r"[^:@]+", url):
        raise CheckoutError(f"git_params.url {url!r}: no such directory ({path})", url)
    return None


def _install(tmp: Path, target: Path) -> None:
    """Move the finished clone ``tmp`` to ``target``, replacing an outdated checkout."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        prefix = f".{target.name}{_TMP_MARK}{os.getpid()}-old-"
        old = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        os.replace(target, old / "checkout")
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, target)


def _remove_leftovers(parent: Path, stem: str) -> None:
    """Delete temporary clones of ``stem`` whose driver process is gone."""
    prefix = f".{stem}{_TMP_MARK}"
    for path in parent.glob(f"{prefix}*"):
        pid_text = path.name.removeprefix(prefix).split("-", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        logger.info("removing %s, left by an interrupted clone", path)
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier, failed attempt of this very process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
