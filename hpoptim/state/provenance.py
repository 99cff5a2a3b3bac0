"""What a run's jobs ran: the code (commit and the changes on top of it), the image,
and the versions that matter for reproducing a result: :class:`Provenance`.

It is journaled once, in the ``run_started`` event, and read back by the reports,
``hpoptim status``, :func:`hpoptim.load_run` and ``hpoptim rerun``. A commit is never
claimed for code it does not hold: a working tree with changes (modified, staged or
untracked files) is recorded as dirty, with a patch that rebuilds it from the commit,
and a directory outside any git repository is recorded without a commit.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Patch", "Provenance", "SourceKind", "WorktreeChanges"]

N_NAMES_SHOWN = 5


class SourceKind(enum.Enum):
    """Where the jobs' code came from."""

    CLONE = "clone"  # a checkout hpoptim made at a ref: clean by construction
    WORKING_DIR = "working_dir"  # the working tree of a git repository, as it was
    NO_REPOSITORY = "no_repository"  # a directory outside any git repository: no commit


@dataclass(frozen=True)
class WorktreeChanges:
    """How a working tree differs from its commit (paths relative to the repository).

    Attributes:
        modified: Tracked files changed and not staged.
        staged: Files whose staged content differs from the commit.
        untracked: Files git does not track and does not ignore.
    """

    modified: tuple[str, ...] = ()
    staged: tuple[str, ...] = ()
    untracked: tuple[str, ...] = ()

    @property
    def dirty(self) -> bool:
        return bool(self.modified or self.staged or self.untracked)

    def describe(self) -> str:
        """E.g. ``"1 modified (train.py), 2 untracked (a.py, b.py)"``; ``""`` when clean."""
        parts = []
        for kind, names in (
            ("modified", self.modified),
            ("staged", self.staged),
            ("untracked", self.untracked),
        ):
            if names:
                parts.append(f"{len(names)} {kind} ({_names(names)})")
        return ", ".join(parts)


@dataclass(frozen=True)
class Patch:
    """The changes of a dirty working tree, stored in the run directory.

    Applied (``git apply``) to a checkout of the commit, the patch rebuilds the tree
    the jobs ran in, untracked files included, unless something was left out.

    Attributes:
        path: The patch file, relative to the run directory (``None``: not stored).
        sha256: Digest of the patch file, checked before it is applied.
        n_bytes: Size of the patch.
        left_out: Untracked files not stored because they exceed the size cap.
        note: Why the patch is incomplete or missing (``""``: complete).
    """

    path: str | None
    sha256: str | None = None
    n_bytes: int = 0
    left_out: tuple[str, ...] = ()
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.path is not None and not self.left_out and not self.note


@dataclass(frozen=True)
class Provenance:
    """What a run's jobs ran, recorded when the run started.

    Attributes:
        source: A clone at a ref, a repository's working tree, or no repository.
        root: The directory the jobs ran in.
        repository: The repository's URL or top directory (``None`` without one).
        subdir: ``root`` relative to the repository's top directory (``""``: the top).
        commit: The commit the code is based on (``None`` outside a repository).
        changes: How the tree differed from ``commit`` (empty: clean).
        patch: The stored changes, for a dirty tree.
        image: The container image file, resolved (``None``: no container).
        image_sha256: The image's digest.
        hpoptim_version: The driver's hpoptim version.
        driver_python: The driver's Python version.
        job_python: The Python version a job reported from inside its environment
            (filled in when the results are read; ``None`` if no job reported one).
    """

    source: SourceKind
    root: str
    repository: str | None = None
    subdir: str = ""
    commit: str | None = None
    changes: WorktreeChanges = field(default_factory=WorktreeChanges)
    patch: Patch | None = None
    image: str | None = None
    image_sha256: str | None = None
    hpoptim_version: str = ""
    driver_python: str = ""
    job_python: str | None = None

    @property
    def dirty(self) -> bool:
        return self.changes.dirty

    def with_job_python(self, version: str | None) -> Provenance:
        return replace(self, job_python=version)

    def rebuild_problem(self) -> str:
        """Why the jobs' tree cannot be rebuilt from this record (``""``: it can)."""
        if self.commit is None:
            if self.source is SourceKind.NO_REPOSITORY:
                return (
                    f"the jobs ran in {self.root}, outside any git repository: no commit "
                    "was recorded, so their code cannot be rebuilt"
                )
            return f"no commit was recorded for {self.root}, so the jobs' code cannot be rebuilt"
        patch = self.patch
        if patch is None:
            if self.dirty:
                return "the tree had uncommitted changes and no patch of them was stored"
            return ""
        if patch.path is None:
            return f"no patch of the uncommitted changes was stored: {patch.note}"
        if patch.left_out:
            return (
                f"the patch of the uncommitted changes leaves out {len(patch.left_out)} "
                f"untracked file(s) over the size cap: {_names(patch.left_out)}"
            )
        if patch.note:
            return f"the patch of the uncommitted changes is incomplete: {patch.note}"
        return ""

    def code_line(self) -> str:
        """One line saying which code the jobs ran, and whether it can be rebuilt."""
        if self.commit is None:
            return f"code: {self.root}, outside any git repository (no commit recorded)"
        where = self.repository or self.root
        if self.subdir:
            where = f"{where} (in {self.subdir})"
        problem = self.rebuild_problem()
        text = f"code: commit {self.commit} of {where}"
        if self.dirty:
            text += f" plus uncommitted changes: {self.changes.describe()}"
        elif not problem:
            text += ", clean"
        if problem:
            return f"{text}; NOT reproducible: {problem}"
        if self.patch is not None:
            text += f"; patch {self.patch.path}"
        return text

    def lines(self) -> list[str]:
        """What ``hpoptim status`` and the reports show: the code, image and versions."""
        lines = [self.code_line()]
        if self.image is not None:
            lines.append(f"image: {self.image} (sha256 {self.image_sha256})")
        versions = f"hpoptim {self.hpoptim_version or '?'}, "
        versions += f"driver Python {self.driver_python or '?'}"
        if self.job_python:
            versions += f", job Python {self.job_python}"
        lines.append(f"versions: {versions}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what the journal holds)."""
        patch = None
        if self.patch is not None:
            p = self.patch
            patch = {
                "path": p.path,
                "sha256": p.sha256,
                "n_bytes": p.n_bytes,
                "left_out": list(p.left_out),
                "note": p.note,
            }
        c = self.changes
        return {
            "source": self.source.value,
            "root": self.root,
            "repository": self.repository,
            "subdir": self.subdir,
            "commit": self.commit,
            "changes": {
                "modified": list(c.modified),
                "staged": list(c.staged),
                "untracked": list(c.untracked),
            },
            "patch": patch,
            "image": self.image,
            "image_sha256": self.image_sha256,
            "hpoptim_version": self.hpoptim_version,
            "driver_python": self.driver_python,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        changes = data.get("changes") or {}
        patch = data.get("patch")
        return cls(
            source=SourceKind(data["source"]),
            root=str(data["root"]),
            repository=data.get("repository"),
            subdir=str(data.get("subdir") or ""),
            commit=data.get("commit"),
            changes=WorktreeChanges(
                modified=tuple(changes.get("modified", ())),
                staged=tuple(changes.get("staged", ())),
                untracked=tuple(changes.get("untracked", ())),
            ),
            patch=None
            if patch is None
            else Patch(
                path=patch.get("path"),
                sha256=patch.get("sha256"),
                n_bytes=int(patch.get("n_bytes") or 0),
                left_out=tuple(patch.get("left_out", ())),
                note=str(patch.get("note") or ""),
            ),
            image=data.get("image"),
            image_sha256=data.get("image_sha256"),
            hpoptim_version=str(data.get("hpoptim_version") or ""),
            driver_python=str(data.get("driver_python") or ""),
        )

    @classmethod
    def from_run_info(cls, info: Mapping[str, Any]) -> Provenance | None:
        """The record in a ``run_started`` event; ``None`` if the run has not started.

        A run started by an earlier version holds only ``checkout`` and the versions:
        its dirty flag did not count untracked files and no patch was stored.
        """
        if isinstance(info.get("provenance"), Mapping):
            return cls.from_dict(info["provenance"])
        checkout = info.get("checkout")
        if not isinstance(checkout, Mapping):
            return None
        commit = checkout.get("commit")
        if commit is None:
            source = SourceKind.NO_REPOSITORY
        else:
            source = SourceKind.CLONE if checkout.get("cloned") else SourceKind.WORKING_DIR
        dirty = bool(checkout.get("dirty"))
        patch = None
        if source is SourceKind.WORKING_DIR:
            patch = Patch(
                None,
                note="recorded by an earlier hpoptim version, which did not look at untracked "
                "files and stored no patch",
            )
        return cls(
            source=source,
            root=str(checkout.get("root") or ""),
            repository=checkout.get("url"),
            commit=commit,
            changes=WorktreeChanges(modified=("(not recorded)",) if dirty else ()),
            patch=patch,
            image_sha256=info.get("image_sha256"),
            hpoptim_version=str(info.get("hpoptim_version") or ""),
            driver_python=str(info.get("python") or ""),
        )


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:N_NAMES_SHOWN])
    n_more = len(names) - N_NAMES_SHOWN
    return shown + (f", and {n_more} more" if n_more > 0 else "")
