"""hpoptim.source.snapshot on real git repositories: a dirty tree's changes, its patch,
and the tree rebuilt from the commit and the patch."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hpoptim.errors import CheckoutError
from hpoptim.source import snapshot
from hpoptim.source.snapshot import rebuild_tree, worktree_changes, write_patch
from hpoptim.state.provenance import WorktreeChanges
from tests.test_checkout import commit_file, git


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.fixture
def dirty_repo(tmp_path: Path) -> Path:
    """A repository with every kind of change, an ignored file and a results directory."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    commit_file(repo, "train.py", "VERSION = 1\n", "first")
    commit_file(repo, "lib/util.py", "A = 1\n", "second")
    commit_file(repo, "gone.py", "B = 1\n", "third")
    commit_file(repo, ".gitignore", "*.ckpt\n", "ignore checkpoints")
    (repo / "train.py").write_text("VERSION = 2\n")  # modified, not staged
    (repo / "lib" / "util.py").write_text("A = 2\n")
    git(repo, "add", "lib/util.py")  # staged
    (repo / "lib" / "util.py").write_text("A = 3\n")  # and modified again on top
    (repo / "gone.py").unlink()  # deleted
    (repo / "new job.py").write_text("print('new')\n")  # untracked, name with a space
    (repo / "data.bin").write_bytes(bytes(range(256)) * 4)  # untracked, binary
    (repo / "model.ckpt").write_bytes(b"ignored")
    (repo / "results" / "run").mkdir(parents=True)
    (repo / "results" / "run" / "journal.jsonl").write_text("{}\n")
    return repo


def test_changes_name_every_kind_and_skip_ignored_and_excluded(dirty_repo: Path) -> None:
    found = worktree_changes(dirty_repo, [dirty_repo / "results"])
    assert found == WorktreeChanges(
        modified=("gone.py", "lib/util.py", "train.py"),
        staged=("lib/util.py",),
        untracked=("data.bin", "new job.py"),
    )
    assert "results/run/journal.jsonl" in worktree_changes(dirty_repo).untracked


def test_patch_rebuilds_the_tree_and_leaves_index_and_objects_alone(
    dirty_repo: Path, tmp_path: Path
) -> None:
    staged_before = git(dirty_repo, "diff", "--cached", "--name-only")
    objects_before = git(dirty_repo, "count-objects")
    exclude = [dirty_repo / "results"]
    changes = worktree_changes(dirty_repo, exclude)
    run_dir = tmp_path / "run"
    patch = write_patch(dirty_repo, changes, exclude, run_dir / "provenance")
    assert patch.complete
    assert patch.path == "provenance/worktree.patch"
    stored = run_dir / patch.path
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert git(dirty_repo, "diff", "--cached", "--name-only") == staged_before
    assert git(dirty_repo, "count-objects") == objects_before
    assert "data.bin" not in git(dirty_repo, "ls-files")

    rebuilt = tmp_path / "rebuilt"
    rebuild_tree(str(dirty_repo), git(dirty_repo, "rev-parse", "HEAD"), stored, rebuilt)
    want = _files(dirty_repo)
    del want["model.ckpt"], want["results/run/journal.jsonl"]
    assert _files(rebuilt) == want


def test_untracked_files_over_the_cap_are_left_out_and_noted(
    dirty_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "MAX_UNTRACKED_FILE_BYTES", 100)
    changes = worktree_changes(dirty_repo, [dirty_repo / "results"])
    patch = write_patch(dirty_repo, changes, [dirty_repo / "results"], tmp_path / "p")
    assert patch.left_out == ("data.bin",)
    assert not patch.complete
    assert "left out" in patch.note
    assert b"data.bin" not in (tmp_path / "p" / "worktree.patch").read_bytes()


@pytest.mark.parametrize(
    ("untracked", "why"),
    [
        pytest.param(True, "the untracked files hold 1037 bytes", id="untracked-files-too-large"),
        pytest.param(False, "the changes make a patch of", id="patch-too-large"),
    ],
)
def test_a_patch_over_the_cap_is_not_stored(
    dirty_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untracked: bool, why: str
) -> None:
    monkeypatch.setattr(snapshot, "MAX_PATCH_BYTES", 100 if untracked else 300)
    if not untracked:
        (dirty_repo / "data.bin").unlink()
        (dirty_repo / "new job.py").unlink()
        (dirty_repo / "train.py").write_text("VERSION = 3\n" * 40)
    changes = worktree_changes(dirty_repo, [dirty_repo / "results"])
    patch = write_patch(dirty_repo, changes, [dirty_repo / "results"], tmp_path / "p")
    assert patch.path is None
    assert patch.n_bytes > snapshot.MAX_PATCH_BYTES
    assert why in patch.note
    assert f"over the {snapshot.MAX_PATCH_BYTES}-byte cap" in patch.note
    assert not (tmp_path / "p").exists()


def test_rebuild_refuses_a_patch_that_does_not_apply(dirty_repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.patch"
    bad.write_text("--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-NOT THERE\n+x\n")
    with pytest.raises(CheckoutError, match="does not apply to commit"):
        rebuild_tree(str(dirty_repo), git(dirty_repo, "rev-parse", "HEAD"), bad, tmp_path / "t")


@pytest.mark.parametrize("submodules", [True, False])
def test_rebuild_checks_out_submodules_when_asked(tmp_path: Path, submodules: bool) -> None:
    lib = tmp_path / "lib"
    git(tmp_path, "init", "--quiet", "-b", "main", str(lib))
    commit_file(lib, "lib.py", "LIB = 1\n", "lib")
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    commit_file(repo, "train.py", "VERSION = 1\n", "first")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(lib), "lib")
    git(repo, "commit", "--quiet", "-m", "add submodule")
    target = tmp_path / "rebuilt"
    rebuild_tree(str(repo), git(repo, "rev-parse", "HEAD"), None, target, submodules=submodules)
    assert (target / "lib" / "lib.py").exists() == submodules
