"""The training code a run's jobs execute: a git checkout at a ref, or the working directory.

With ``git_params`` the repository is cloned once per run (into the results
directory's ``checkout/``, or into a shared cache directory) and checked out,
detached, at the commit the ref resolves to. A local path is cloned itself, not
its ``origin``, so commits that were never pushed can be used. The clone is made
in a temporary directory beside its target and renamed when complete: a driver
killed mid-clone leaves no half-made checkout, and the next run removes its
leftovers. A resumed run passes the commit recorded when it started, so it keeps
running that commit even if the branch has moved since.

Without ``git_params`` (or with ``run_in_working_dir``) jobs run in the working
directory, and the commit of the git repository around it, if any, is recorded with
the tree's changes: modified, staged and untracked files (ignored ones, and the
results directory, left out), so that a commit is never claimed for code it does not
hold (see :mod:`hpoptim.source.snapshot` for the patch that rebuilds such a tree).

All git work goes through GitPython with argument lists; no shell is involved.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path

import git

from hpoptim.errors import CheckoutError
from hpoptim.log import get_logger
from hpoptim.messages import did_you_mean_or_list
from hpoptim.shipped import find_script, shipped_stand_in
from hpoptim.source.git_source import GitSource
from hpoptim.source.repo import (
    _FULL_SHA,
    _LS_REMOTE_TIMEOUT_S,
    _TMP_MARK,
    CheckoutInfo,
    _git,
    _head_sha,
    _install,
    _last_line,
    _local_path,
    _Refs,
    _remove_leftovers,
    _rev_parse,
)
from hpoptim.source.snapshot import worktree_changes
from hpoptim.state.provenance import WorktreeChanges

__all__ = [
    "CACHE_ENV",
    "CheckoutInfo",
    "GitSource",
    "files_at_commit",
    "prepare_checkout",
    "working_dir_info",
]

logger = get_logger(__name__)

CACHE_ENV = "HPOPTIM_CHECKOUT_CACHE"
"""Environment variable naming a directory for checkouts (used when ``cache_dir`` is unset)."""


def prepare_checkout(
    source: GitSource | None,
    *,
    work_dir: Path,
    clone_root: Path,
    run_in_working_dir: bool,
    script_relative_path: str,
    pinned_commit: str | None,
    exclude: Sequence[Path] = (),
) -> CheckoutInfo:
    """Make the training code ready before any job starts.

    Args:
        source: The repository and ref, or ``None`` to run in ``work_dir``.
        work_dir: The working directory (used when not cloning).
        clone_root: Where this run's clone goes (the results directory's ``checkout/``);
            ``source.cache_dir`` or ``$HPOPTIM_CHECKOUT_CACHE`` take precedence.
        run_in_working_dir: Run jobs in ``work_dir``; ``source`` is then ignored.
        script_relative_path: The job script, checked to exist in the clone.
        pinned_commit: The commit recorded when this run started (on resume): it is
            checked out instead of what the ref resolves to now.
        exclude: Paths inside the working tree that are not the jobs' code (the
            results directory): not counted as changes.

    Returns:
        Where jobs run and which commit that is.

    Raises:
        CheckoutError: The repository cannot be read, the ref is unknown, or the
            script does not exist at that ref.
    """
    if run_in_working_dir or source is None:
        return working_dir_info(work_dir, exclude)
    return _Cloner(source, clone_root, script_relative_path, pinned_commit).run()


def resolve_ref(source: GitSource) -> str | None:
    """The commit ``source``'s ref names now, found without cloning.

    Returns:
        The full commit id, or ``None`` when only a clone can tell (a short commit
        id in a remote repository).

    Raises:
        CheckoutError: The repository cannot be read or holds no such ref.
    """
    return _Cloner(source, Path(os.devnull), "", None).resolve()


def missing_script(source: GitSource, sha: str | None, script: str) -> str:
    """Why ``script`` is not at commit ``sha`` of a local repository ("" if it is, if a
    shipped wrapper stands in for it, or if only a clone could tell: a remote one)."""
    local = _local_path(source.url)
    if local is None or sha is None or shipped_stand_in(script) is not None:
        return ""
    path = os.path.normpath(script)
    if path.startswith(".."):
        return ""
    with git.Repo(local) as repo:
        try:
            repo.commit(sha).tree[path]
        except KeyError:
            return (
                f"script_relative_path: {script!r} does not exist at {source.describe_ref()} "
                f"(commit {sha[:12]}) of {local}"
            )
    return ""


@contextmanager
def files_at_commit(source: GitSource, sha: str | None = None) -> Iterator[tuple[Path, str]]:
    """The repository's files at a commit, in a temporary directory removed afterwards.

    Nothing is written anywhere else (no results directory, no checkout cache): a local
    repository's files are read from its object store at the commit, so uncommitted
    changes are not seen; a remote one is cloned into the temporary directory, shallowly
    when the ref allows it. Submodules are not included.

    Args:
        source: The repository and ref.
        sha: The commit, if already resolved; else ``source``'s ref is resolved.

    Yields:
        The directory holding the files, and the full commit id.

    Raises:
        CheckoutError: The repository cannot be read or holds no such ref.
    """
    with tempfile.TemporaryDirectory(prefix="hpoptim-files-") as tmp:
        root = Path(tmp) / "files"
        cloner = _Cloner(source, root, "", None)
        cloner.cache = None
        sha = sha or cloner.resolve()  # None: a short commit id only a clone can tell
        if cloner.local is not None:
            assert sha is not None  # a local ref always resolves
            _write_tree(cloner.local, sha, root)
        else:
            if source.depth is None and sha is not None:
                cloner.source = source.model_copy(update={"depth": 1})
            root.mkdir()
            sha = cloner._clone_into(root, sha)
        yield root, sha


def _write_tree(repo_dir: Path, sha: str, root: Path) -> None:
    """Write the files of commit ``sha`` of the repository at ``repo_dir`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    with git.Repo(repo_dir) as repo:
        for item in repo.commit(sha).tree.traverse():
            path = root / str(item.path)  # type: ignore[union-attr]
            kind = item.type  # type: ignore[union-attr]
            if kind == "tree":
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "blob":
                data = item.data_stream.read()  # type: ignore[union-attr]
                path.parent.mkdir(parents=True, exist_ok=True)
                if item.mode == _SYMLINK_MODE:  # type: ignore[union-attr]
                    path.symlink_to(data.decode())
                else:
                    path.write_bytes(data)
                    path.chmod(item.mode & 0o777)  # type: ignore[union-attr]


_SYMLINK_MODE = 0o120000


def working_dir_info(work_dir: Path, exclude: Sequence[Path] = ()) -> CheckoutInfo:
    """Commit and changes of the git repository around ``work_dir``, if any.

    Args:
        work_dir: Where jobs run.
        exclude: Paths not counted as changes (the results directory).
    """
    try:
        repo = git.Repo(work_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return CheckoutInfo(root=work_dir, commit=None, dirty=False, is_local=True, url=None)
    with repo:
        commit = _head_sha(repo)
        top = Path(str(repo.working_tree_dir))
        changes = WorktreeChanges() if commit is None else worktree_changes(top, exclude)
        branch = None if repo.head.is_detached or commit is None else repo.active_branch.name
        return CheckoutInfo(
            root=work_dir,
            commit=commit,
            dirty=changes.dirty,
            is_local=True,
            url=str(top),
            ref=branch,
            ref_kind=None if branch is None else "branch",
            top=top,
            changes=changes,
        )


class _Cloner:
    """One clone-and-check-out, with its error messages."""

    def __init__(
        self, source: GitSource, clone_root: Path, script: str, pinned: str | None
    ) -> None:
        self.source = source
        self.script = script
        self.pinned = pinned
        self.local = _local_path(source.url)
        self.url = str(self.local) if self.local is not None else source.url
        self.clone_root = clone_root
        self.cache = _cache_dir(source)

    def run(self) -> CheckoutInfo:
        sha = self.pinned or self.resolve()
        target = self._target(sha)
        if target is not None and target.is_dir():
            reused = self._reuse(target, sha)
            if reused is not None:
                return reused
        return self._clone(sha, target)

    # -- resolving the ref --------------------------------------------------

    def resolve(self) -> str | None:
        """The commit to check out, or ``None`` if only a clone can tell."""
        if self.local is not None:
            return self._resolve_local(self.local)
        refs = self._ls_remote()
        s = self.source
        if s.branch is not None:
            return self._pick(refs.branches, s.branch, "branch")
        if s.tag is not None:
            return self._pick(refs.tags, s.tag, "tag")
        if s.commit is not None:
            return s.commit if _FULL_SHA.fullmatch(s.commit) else None
        if refs.head is None:
            raise CheckoutError(f"git_params.url {self.url!r} has no commits", self.url)
        return refs.head

    def _resolve_local(self, path: Path) -> str:
        try:
            repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise CheckoutError(
                f"git_params.url {self.url!r} is not a git repository (give the directory that "
                "holds .git, or a repository URL)",
                self.url,
            ) from None
        with repo:
            if repo.is_dirty(untracked_files=False):
                logger.warning(
                    "%s has uncommitted changes; they are not part of the checkout", path
                )
            s = self.source
            if s.branch is not None:
                return self._pick({h.name: h.commit.hexsha for h in repo.heads}, s.branch, "branch")
            if s.tag is not None:
                return self._pick({t.name: t.commit.hexsha for t in repo.tags}, s.tag, "tag")
            if s.commit is None:
                sha = _head_sha(repo)
                if sha is None:
                    raise CheckoutError(f"git_params.url {self.url!r} has no commits", self.url)
                return sha
            try:
                return str(repo.git.rev_parse("--verify", "--quiet", f"{s.commit}^{{commit}}"))
            except git.GitCommandError:
                names = [h.name for h in repo.heads] + [t.name for t in repo.tags]
                raise self._unknown_commit(names) from None

    def _ls_remote(self) -> _Refs:
        try:
            out = _git().ls_remote(self.source.url, kill_after_timeout=_LS_REMOTE_TIMEOUT_S)
        except git.GitCommandError as exc:
            raise CheckoutError(
                f"cannot read git repository git_params.url {self.url!r}: {_last_line(exc)}",
                self.url,
            ) from None
        return _Refs.from_ls_remote(str(out))

    def _pick(self, names: Mapping[str, str], wanted: str, kind: str) -> str:
        if wanted in names:
            return names[wanted]
        raise CheckoutError(
            f"git_params.{kind}: no {kind} {wanted!r} in {self.url}; "
            + did_you_mean_or_list(wanted, list(names), "branches" if kind == "branch" else "tags"),
            self.url,
            wanted,
        )

    def _unknown_commit(self, names: Sequence[str]) -> CheckoutError:
        wanted = self.source.commit or ""
        return CheckoutError(
            f"git_params.commit: {wanted!r} names no commit in {self.url}; "
            f"{did_you_mean_or_list(wanted, names, 'branches and tags')}",
            self.url,
            wanted,
        )

    # -- where the checkout goes ----------------------------------------------

    def _target(self, sha: str | None) -> Path | None:
        """The checkout's directory, ``None`` when it depends on a commit not yet known."""
        if self.cache is None:
            return self.clone_root
        if sha is None:
            return None
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.url.rstrip("/")).name) or "repo"
        digest = sha256(self.url.encode()).hexdigest()[:12]
        return self.cache / f"{name.removesuffix('.git')}-{digest}" / sha

    def _reuse(self, target: Path, sha: str | None) -> CheckoutInfo | None:
        try:
            repo = git.Repo(target)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            return None
        with repo:
            if sha is None or _head_sha(repo) != sha:
                return None
        found = worktree_changes(target)
        # untracked files in a clone hpoptim made are the jobs' outputs, not code
        changes = WorktreeChanges(modified=found.modified, staged=found.staged)
        self._check_script(target, sha)
        logger.info("using the existing checkout of %s at %s in %s", self.url, sha[:12], target)
        return self._info(target, sha, changes)

    def _info(self, root: Path, sha: str, changes: WorktreeChanges | None = None) -> CheckoutInfo:
        s = self.source
        changes = changes or WorktreeChanges()
        return CheckoutInfo(
            root=root,
            commit=sha,
            dirty=changes.dirty,
            top=root,
            changes=changes,
            is_local=self.local is not None,
            url=self.url,
            ref=s.ref,
            ref_kind=s.ref_kind,
            cloned=True,
        )

    # -- cloning ---------------------------------------------------------------

    def _clone(self, sha: str | None, target: Path | None) -> CheckoutInfo:
        parent = (target.parent if target is not None else self.cache) or self.clone_root.parent
        stem = target.name if target is not None else "clone"
        parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(parent, stem)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stem}{_TMP_MARK}{os.getpid()}-", dir=parent))
        try:
            sha = self._clone_into(tmp, sha)
            self._check_script(tmp, sha)
            target = target or self._target(sha)
            assert target is not None
            # a cached checkout of this commit made meanwhile by another run is kept as it is
            if self.cache is not None and target.is_dir():
                found = self._reuse(target, sha)
                if found is not None:
                    shutil.rmtree(tmp)
                    return found
            _install(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("checked out %s at %s (%s) in %s", self.url, sha[:12], self._what(), target)
        return self._info(target, sha)

    def _what(self) -> str:
        if self.pinned is not None:
            return f"commit {self.pinned[:12]} recorded when the run started"
        return self.source.describe_ref()

    def _clone_into(self, tmp: Path, sha: str | None) -> str:
        s = self.source
        argv: list[str] = ["--no-checkout", "--quiet"]
        url = self.url
        if s.depth is not None:
            argv += ["--depth", str(s.depth)]
            if self.local is not None:
                url = self.local.as_uri()  # --depth is ignored for plain local paths
            if self.pinned is None and (s.branch or s.tag):
                argv += ["--branch", str(s.branch or s.tag)]
        try:
            _git(tmp.parent).clone(*argv, "--", url, str(tmp))
        except git.GitCommandError as exc:
            raise CheckoutError(
                f"cannot clone git_params.url {self.url!r}: {_last_line(exc)}", self.url
            ) from None
        runner = _git(tmp)
        sha = self._ensure_commit(runner, sha)
        try:
            runner.checkout("--detach", "--quiet", sha)
            if s.submodules:
                self._update_submodules(runner)
        except git.GitCommandError as exc:
            raise CheckoutError(
                f"cannot check out {sha} of {self.url}: {_last_line(exc)}", self.url, s.ref
            ) from None
        return sha

    def _ensure_commit(self, runner: git.Git, sha: str | None) -> str:
        """The full SHA to check out, fetching it first if the clone lacks it."""
        if sha is None:  # a short SHA or other ref of a remote: the clone knows
            assert self.source.commit is not None
            found = _rev_parse(runner, self.source.commit) or _rev_parse(
                runner, f"origin/{self.source.commit}"
            )
            if found is None:
                raise self._commit_missing(runner)
            return found
        if _rev_parse(runner, sha) is None:
            depth = [] if self.source.depth is None else ["--depth", str(self.source.depth)]
            try:
                runner.fetch("--quiet", *depth, "origin", sha)
            except git.GitCommandError:
                raise self._commit_missing(runner) from None
        found = _rev_parse(runner, sha)
        if found is None:
            raise self._commit_missing(runner)
        return found

    def _commit_missing(self, runner: git.Git) -> CheckoutError:
        if self.pinned is not None:
            return CheckoutError(
                f"commit {self.pinned}, recorded when this run started, is no longer in "
                f"{self.url}; start a new run (or restore the commit) to continue",
                self.url,
                self.pinned,
            )
        if self.source.depth is not None and not _FULL_SHA.fullmatch(self.source.commit or ""):
            return CheckoutError(
                f"git_params.commit: {self.source.commit!r} with git_params.depth needs the "
                f"full 40-character SHA (or drop depth)",
                self.url,
                self.source.commit,
            )
        names = str(runner.for_each_ref("--format=%(refname:lstrip=2)")).split()
        names = [n.removeprefix("origin/") for n in names if n != "origin/HEAD"]
        return self._unknown_commit(sorted(set(names)))

    def _update_submodules(self, runner: git.Git) -> None:
        options: list[str] = ["submodule"]
        if self.local is not None or self.url.startswith("file:"):
            # git refuses local submodule URLs unless told; they come from the user's own repo
            options = ["-c", "protocol.file.allow=always", "submodule"]
        runner.execute(["git", *options, "update", "--init", "--recursive", "--quiet"])

    def _check_script(self, root: Path, sha: str) -> None:
        if find_script(root, self.script) is not None:
            return
        raise CheckoutError(
            f"script_relative_path: {self.script!r} does not exist at "
            f"{self.source.describe_ref()} (commit {sha[:12]}) of {self.url}",
            self.url,
            self.source.ref,
        )


def _cache_dir(source: GitSource) -> Path | None:
    if source.cache_dir is not None:
        return Path(source.cache_dir).expanduser().resolve()
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else None
