"""A working tree as it differs from its commit: what changed, a patch that rebuilds it,
and the rebuild itself.

The changes are what ``git status`` reports, untracked files included and ignored
ones (``.gitignore``) left out. The patch is ``git diff --binary`` of the whole tree
(modified, staged and untracked files) against the commit, made through a temporary
copy of the index and a temporary object store, so neither the user's index nor their
repository's objects are touched. Untracked files over
:data:`MAX_UNTRACKED_FILE_BYTES` are left out of it, and a patch over
:data:`MAX_PATCH_BYTES` is not stored; either is noted in the record, and a rerun
then refuses to rebuild the tree instead of rebuilding another one.

All git work goes through GitPython with argument lists; no shell is involved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import git

from hpoptim.errors import CheckoutError
from hpoptim.source.repo import _git, _last_line
from hpoptim.state.provenance import Patch, WorktreeChanges

__all__ = [
    "MAX_PATCH_BYTES",
    "MAX_UNTRACKED_FILE_BYTES",
    "PATCH_DIR_NAME",
    "patch_sha256",
    "rebuild_tree",
    "worktree_changes",
    "write_patch",
]

MAX_UNTRACKED_FILE_BYTES = 5 << 20
"""Largest untracked file stored in a run's patch (5 MiB); larger ones are left out."""
MAX_PATCH_BYTES = 50 << 20
"""Largest patch stored (50 MiB); a larger one is not stored at all."""
PATCH_DIR_NAME = "provenance"
"""The run directory's owner-only directory holding the patch."""
PATCH_FILE_NAME = "worktree.patch"


def _pathspec(top: Path, exclude: Sequence[Path]) -> list[str]:
    """``.`` without the ``exclude`` paths that lie inside ``top`` (results directories)."""
    spec = ["."]
    for path in exclude:
        try:
            rel = path.resolve().relative_to(top.resolve())
        except ValueError:
            continue
        if rel.parts:
            spec.append(f":(exclude,literal){rel.as_posix()}")
    return spec


def worktree_changes(top: Path, exclude: Sequence[Path] = ()) -> WorktreeChanges:
    """How the working tree at ``top`` differs from its ``HEAD``.

    Args:
        top: The repository's top directory.
        exclude: Paths not counted (the results directory, which usually lies
            untracked inside the tree).

    Raises:
        CheckoutError: git cannot read the repository.
    """
    argv = ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]
    try:
        out = _git(top).execute([*argv, "--", *_pathspec(top, exclude)])
    except git.GitCommandError as exc:
        why = _last_line(exc)
        raise CheckoutError(f"cannot read the state of {top}: {why}", str(top)) from None
    modified: list[str] = []
    staged: list[str] = []
    untracked: list[str] = []
    for entry in str(out).split("\0"):
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code == "??":
            untracked.append(path)
            continue
        if code[0] != " ":
            staged.append(path)
        if code[1] != " ":
            modified.append(path)
    return WorktreeChanges(tuple(modified), tuple(staged), tuple(untracked))


def write_patch(top: Path, changes: WorktreeChanges, exclude: Sequence[Path], dest: Path) -> Patch:
    """Store the tree's changes against ``HEAD`` as ``dest/worktree.patch``.

    ``dest`` is made owner-only (0700) and the patch file is 0600: a working tree may
    hold secrets. The record's ``path`` is relative to ``dest``'s parent (the run
    directory).

    Raises:
        CheckoutError: git cannot make the patch.
    """
    fix = "commit them (or ignore large files) to make the run reproducible"
    try:
        data, too_big = _patch_of(top, changes, exclude)
    except _TooBig as big:
        note = f"the untracked files hold {big.n_bytes} bytes, over the {MAX_PATCH_BYTES}-byte "
        return Patch(None, n_bytes=big.n_bytes, left_out=big.left_out, note=f"{note}cap; {fix}")
    if len(data) > MAX_PATCH_BYTES:
        note = f"the changes make a patch of {len(data)} bytes, over the {MAX_PATCH_BYTES}-byte "
        return Patch(None, n_bytes=len(data), left_out=too_big, note=f"{note}cap; {fix}")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    dest.chmod(0o700)
    target = dest / PATCH_FILE_NAME
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fd, 0o600)
        fh.write(data)
    note = ""
    if too_big:
        note = (
            f"{len(too_big)} untracked file(s) over {MAX_UNTRACKED_FILE_BYTES} bytes "
            "left out of the patch"
        )
    return Patch(
        path=f"{dest.name}/{PATCH_FILE_NAME}",
        sha256=hashlib.sha256(data).hexdigest(),
        n_bytes=len(data),
        left_out=too_big,
        note=note,
    )


def patch_sha256(top: Path, changes: WorktreeChanges, exclude: Sequence[Path]) -> str:
    """The sha256 :func:`write_patch` would record for the tree as it is now (``""``
    for a patch too large to be stored).

    Raises:
        CheckoutError: git cannot make the patch.
    """
    try:
        data = _patch_of(top, changes, exclude)[0]
    except _TooBig:
        return ""
    return hashlib.sha256(data).hexdigest() if len(data) <= MAX_PATCH_BYTES else ""


class _TooBig(Exception):
    """The untracked files alone exceed the patch's cap: it is not worth making."""

    def __init__(self, n_bytes: int, left_out: tuple[str, ...]) -> None:
        super().__init__(n_bytes)
        self.n_bytes = n_bytes
        self.left_out = left_out


def _patch_of(
    top: Path, changes: WorktreeChanges, exclude: Sequence[Path]
) -> tuple[bytes, tuple[str, ...]]:
    """The patch of the tree's changes, and the untracked files left out of it.

    Raises:
        _TooBig: The untracked files to store already hold more than
            :data:`MAX_PATCH_BYTES`: git is not asked to read them all (a new text
            file's diff is larger than the file; a binary one's is compressed, so a
            run of very compressible files errs on the side of storing nothing).
    """
    sizes = {name: _size(top / name) for name in changes.untracked}
    too_big = tuple(name for name, size in sizes.items() if size > MAX_UNTRACKED_FILE_BYTES)
    n_bytes = sum(size for size in sizes.values() if size <= MAX_UNTRACKED_FILE_BYTES)
    if n_bytes > MAX_PATCH_BYTES:
        raise _TooBig(n_bytes, too_big)
    spec = _pathspec(top, exclude) + [f":(exclude,literal){name}" for name in too_big]
    return _diff_of_tree(top, spec, with_untracked=bool(changes.untracked)), too_big


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _diff_of_tree(top: Path, pathspec: Sequence[str], *, with_untracked: bool) -> bytes:
    """``git diff --binary HEAD`` of the whole tree, untracked files included if asked."""
    runner = _git(top)
    with tempfile.TemporaryDirectory(prefix="hpoptim-index-") as tmp:
        index = Path(tmp) / "index"
        real = top / str(runner.rev_parse("--git-path", "index"))
        if real.is_file():
            shutil.copyfile(real, index)  # its stat data spares git re-reading every file
        objects = top / str(runner.rev_parse("--git-path", "objects"))
        (Path(tmp) / "objects").mkdir()
        # the blobs of untracked files go to a temporary object store, not the user's
        env = {
            "GIT_INDEX_FILE": str(index),
            "GIT_OBJECT_DIRECTORY": str(Path(tmp) / "objects"),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects.resolve()),
        }
        try:
            which = "--all" if with_untracked else "--update"
            runner.execute(["git", "add", which, "--", *pathspec], env=env)
            out = runner.execute(
                ["git", "diff", "--cached", "--binary", "--no-color", "--no-ext-diff"]
                + ["--no-textconv", "HEAD", "--"],
                env=env,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as exc:
            raise CheckoutError(
                f"cannot record the uncommitted changes of {top}: {_last_line(exc)}", str(top)
            ) from None
    assert isinstance(out, bytes)
    return out


def rebuild_tree(
    repository: str, commit: str, patch: Path | None, target: Path, *, submodules: bool = False
) -> None:
    """Clone ``repository`` into ``target`` at ``commit`` and apply ``patch``.

    With ``submodules``, the submodules are checked out at the commits ``commit`` names
    (changes inside a submodule are not part of a patch).

    Raises:
        CheckoutError: The repository or commit is gone, or the patch does not apply.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _git(target.parent).clone("--no-checkout", "--quiet", "--", repository, str(target))
    except git.GitCommandError as exc:
        raise CheckoutError(
            f"cannot clone {repository} to rebuild the jobs' code: {_last_line(exc)}", repository
        ) from None
    runner = _git(target)
    try:
        runner.checkout("--detach", "--quiet", commit)
    except git.GitCommandError as exc:
        raise CheckoutError(
            f"commit {commit} is no longer in {repository}: {_last_line(exc)}", repository, commit
        ) from None
    if submodules and (target / ".gitmodules").is_file():
        _update_submodules(runner, repository)
    if patch is None:
        return
    try:
        runner.execute(["git", "apply", "--whitespace=nowarn", "--", str(patch)])
    except git.GitCommandError as exc:
        raise CheckoutError(
            f"the recorded patch {patch} does not apply to commit {commit}: {_last_line(exc)}",
            str(patch),
        ) from None


def _update_submodules(runner: git.Git, repository: str) -> None:
    # local submodule URLs (the user's own repositories) need file transport allowed
    argv = ["git", "-c", "protocol.file.allow=always", "submodule", "update", "--init"]
    try:
        runner.execute([*argv, "--recursive", "--quiet"])
    except git.GitCommandError as exc:
        raise CheckoutError(
            f"cannot check out the submodules of {repository}: {_last_line(exc)}", repository
        ) from None
