"""hpoptim.source.checkout on real git repositories made in temporary directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import CheckoutError, ConfigError
from hpoptim.shipped import wrapper_path
from hpoptim.source.checkout import (
    CACHE_ENV,
    CheckoutInfo,
    GitSource,
    files_at_commit,
    prepare_checkout,
)
from hpoptim.state.provenance import WorktreeChanges

REPO_ROOT = Path(__file__).resolve().parent.parent
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def commit_file(repo: Path, name: str, text: str, message: str) -> str:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", "--", name)
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass(frozen=True)
class Repos:
    """An upstream bare repository and a local clone of it with an unpushed commit.

    upstream: main = c1 (tag v1, annotated), feature = c2 (lightweight tag light).
    local: main = c3 on top of c1 (never pushed; adds new_script.py), feature = c2.
    """

    base: Path
    upstream: Path
    local: Path
    c1: str
    c2: str
    c3: str


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    base = tmp_path_factory.mktemp("checkout") / "dir with spaces"
    upstream, local = base / "upstream.git", base / "local repo"
    base.mkdir()
    git(base, "init", "--quiet", "--bare", "-b", "main", str(upstream))
    git(base, "clone", "--quiet", str(upstream), str(local))
    git(local, "checkout", "--quiet", "-b", "main")
    c1 = commit_file(local, "train.py", "VERSION = 1\n", "first")
    git(local, "tag", "-a", "v1", "-m", "release 1")
    git(local, "checkout", "--quiet", "-b", "feature")
    c2 = commit_file(local, "train.py", "VERSION = 2\n", "feature work")
    git(local, "tag", "light")
    git(local, "push", "--quiet", "origin", "main", "feature", "v1", "light")
    git(local, "checkout", "--quiet", "main")
    commit_file(local, "train.py", "VERSION = 3\n", "unpushed")
    c3 = commit_file(local, "new_script.py", "VERSION = 3\n", "unpushed script")
    git(upstream, "symbolic-ref", "HEAD", "refs/heads/main")
    return Repos(base, upstream, local, c1, c2, c3)


def prepare(source: GitSource | None, clone_root: Path, **kw: Any) -> CheckoutInfo:
    return prepare_checkout(
        source,
        work_dir=kw.pop("work_dir", clone_root.parent),
        clone_root=clone_root,
        run_in_working_dir=kw.pop("run_in_working_dir", False),
        script_relative_path=kw.pop("script", "train.py"),
        pinned_commit=kw.pop("pinned", None),
    )


def version_at(root: Path) -> int:
    return int((root / "train.py").read_text().split("=")[1])


def url_of(repos: Repos, where: str) -> str:
    return {"local": str(repos.local), "remote": repos.upstream.as_uri()}[where]


@pytest.mark.parametrize(
    ("where", "ref", "expected"),
    [
        pytest.param("local", {}, "c3", id="local-default-head-is-unpushed-commit"),
        pytest.param("local", {"branch": "main"}, "c3", id="local-branch-unpushed"),
        pytest.param("local", {"branch": "feature"}, "c2", id="local-branch"),
        pytest.param("local", {"tag": "v1"}, "c1", id="local-annotated-tag"),
        pytest.param("local", {"tag": "light"}, "c2", id="local-lightweight-tag"),
        pytest.param("local", {"commit": "c1"}, "c1", id="local-full-sha"),
        pytest.param("local", {"commit": "c2:7"}, "c2", id="local-short-sha"),
        pytest.param("local", {"commit": "main~2"}, "c1", id="local-rev-expression"),
        pytest.param("remote", {}, "c1", id="remote-default-branch"),
        pytest.param("remote", {"branch": "feature"}, "c2", id="remote-branch"),
        pytest.param("remote", {"tag": "v1"}, "c1", id="remote-tag"),
        pytest.param("remote", {"commit": "c2"}, "c2", id="remote-full-sha"),
        pytest.param("remote", {"commit": "c2:8"}, "c2", id="remote-short-sha"),
    ],
)
def test_ref_is_checked_out_detached(
    repos: Repos, tmp_path: Path, where: str, ref: dict[str, str], expected: str
) -> None:
    if "commit" in ref and ref["commit"].startswith("c"):
        name, _, length = ref["commit"].partition(":")
        sha = getattr(repos, name)
        ref = {"commit": sha[: int(length)] if length else sha}
    url = url_of(repos, where)
    info = prepare(GitSource(url, **ref), tmp_path / "run" / "checkout")

    want = getattr(repos, expected)
    assert info.commit == want
    assert info.root == tmp_path / "run" / "checkout"
    assert git(info.root, "rev-parse", "HEAD") == want
    assert (
        subprocess.run(  # detached: HEAD is no symbolic ref
            ["git", "symbolic-ref", "-q", "HEAD"], cwd=info.root, check=False
        ).returncode
        == 1
    )
    assert version_at(info.root) == {"c1": 1, "c2": 2, "c3": 3}[expected]
    assert (info.dirty, info.is_local, info.cloned) == (False, where == "local", True)
    assert info.ref == (next(iter(ref.values())) if ref else None)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkout"]
    assert json.loads(json.dumps(info.to_dict()))["root"] == str(info.root)


@pytest.mark.parametrize(
    ("where", "ref", "expected"),
    [
        pytest.param("local", {"tag": "v1"}, "c1", id="local-tag"),
        pytest.param("local", {}, "c3", id="local-head"),
        pytest.param("local", {"commit": "c1"}, "c1", id="local-commit-below-tip"),
        pytest.param("remote", {"branch": "feature"}, "c2", id="remote-branch"),
        pytest.param("remote", {"commit": "c1"}, "c1", id="remote-full-sha-not-default"),
    ],
)
def test_shallow_clone_holds_only_depth_commits(
    repos: Repos, tmp_path: Path, where: str, ref: dict[str, str], expected: str
) -> None:
    if "commit" in ref:
        ref = {"commit": getattr(repos, ref["commit"])}
    info = prepare(GitSource(url_of(repos, where), depth=1, **ref), tmp_path / "checkout")
    assert info.commit == getattr(repos, expected)
    assert git(info.root, "rev-parse", "--is-shallow-repository") == "true"
    assert git(info.root, "rev-list", "--count", "HEAD") == "1"


def test_files_at_commit_clones_a_remote_shallowly(repos: Repos) -> None:
    """Without a depth of its own, a remote is read from a one-commit clone."""
    source = GitSource(repos.upstream.as_uri(), branch="feature")
    with files_at_commit(source) as (root, sha):
        assert sha == repos.c2
        assert (root / "train.py").read_text() == "VERSION = 2\n"
        assert git(root, "rev-list", "--count", "HEAD") == "1"
    assert not root.exists()


def _error_cases() -> list[Any]:
    return [
        pytest.param(
            "file:///nonexistent/hpoptim-repo",
            {},
            "train.py",
            ["cannot read git repository git_params.url 'file:///nonexistent/hpoptim-repo'"],
            id="unreachable-url",
        ),
        pytest.param(
            "{base}/missing dir",
            {},
            "train.py",
            ["git_params.url", "no such directory"],
            id="missing-local-path",
        ),
        pytest.param(
            "{base}",
            {},
            "train.py",
            ["is not a git repository"],
            id="not-a-repository",
        ),
        pytest.param(
            "{local}",
            {"branch": "featur"},
            "train.py",
            ["git_params.branch: no branch 'featur' in", "did you mean 'feature'?"],
            id="unknown-branch-closest",
        ),
        pytest.param(
            "{remote}",
            {"branch": "zzz"},
            "train.py",
            ["no branch 'zzz'", "; existing branches: 'feature', 'main'"],
            id="remote-unknown-branch-lists",
        ),
        pytest.param(
            "{local}",
            {"tag": "v2"},
            "train.py",
            ["no tag 'v2'", "did you mean 'v1'?"],
            id="unknown-tag",
        ),
        pytest.param(
            "{remote}",
            {"tag": "release-9"},
            "train.py",
            ["no tag 'release-9'", "; existing tags: 'light', 'v1'"],
            id="remote-unknown-tag",
        ),
        pytest.param(
            "{local}",
            {"commit": "deadbeef"},
            "train.py",
            ["git_params.commit: 'deadbeef' names no commit in"],
            id="unknown-commit",
        ),
        pytest.param(
            "{remote}",
            {"commit": "deadbeef"},
            "train.py",
            [
                "git_params.commit: 'deadbeef' names no commit in",
                "; existing branches and tags: 'feature', 'light', 'main', 'v1'",
            ],
            id="remote-unknown-commit",
        ),
        pytest.param(
            "{remote}",
            {"commit": "c2:8", "depth": 1},
            "train.py",
            ["needs the full 40-character SHA"],
            id="remote-short-sha-shallow",
        ),
        pytest.param(
            "{local}",
            {"tag": "v1"},
            "new_script.py",
            ["script_relative_path: 'new_script.py' does not exist at tag 'v1' (commit"],
            id="script-missing-at-tag",
        ),
        pytest.param(
            "{remote}",
            {},
            "wrappers/no_such_wrapper.py",
            ["'wrappers/no_such_wrapper.py' does not exist at the default HEAD"],
            id="script-missing-no-wrapper",
        ),
    ]


@pytest.mark.parametrize(("url", "ref", "script", "fragments"), _error_cases())
def test_bad_source_fails_early_and_leaves_nothing(
    repos: Repos, tmp_path: Path, url: str, ref: dict[str, Any], script: str, fragments: list[str]
) -> None:
    url = url.format(base=repos.base, local=repos.local, remote=repos.upstream.as_uri())
    if str(ref.get("commit", "")).startswith("c2:"):
        ref = {**ref, "commit": repos.c2[:8]}
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckoutError) as err:
        prepare(GitSource(url, **ref), run / "checkout", script=script)
    for fragment in fragments:
        assert fragment in str(err.value)
    assert list(run.iterdir()) == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param(
            {"branch": "main", "tag": "v1"},
            "git_params: give at most one of branch, tag, commit; got branch='main', tag='v1'",
            id="branch-and-tag",
        ),
        pytest.param(
            {"tag": "v1", "commit": "abc1234"},
            "git_params: give at most one of branch, tag, commit; got tag='v1', commit='abc1234'",
            id="tag-and-commit",
        ),
        pytest.param(
            {"depth": 0},
            "git_params.depth: must be an integer >= 1 or null, got 0",
            id="depth-zero",
        ),
        pytest.param(
            {"url": "--upload-pack=x"},
            "git_params.url: must be a repository URL or path, got '--upload-pack=x'",
            id="url-is-an-option",
        ),
    ],
)
def test_git_source_rejects_contradictions(fields: dict[str, Any], problem: str) -> None:
    """The config's git_params model is the checkout's own: one declaration, one set of rules."""
    with pytest.raises(ConfigError) as err:
        GitSource(**{"url": "/some/repo", **fields})
    assert [str(p) for p in err.value.problems] == [problem]


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/x", "ext://sh", "fd::17", "EXT::sh"], ids=str
)
def test_git_source_refuses_transports_that_run_commands(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        GitSource(url)
    [problem] = err.value.problems
    assert problem.path == "git_params.url"
    assert problem.message.startswith("uses git's ")
    assert "transport, which runs commands and is not allowed" in problem.message
    assert problem.message.endswith(f"got {url!r}")


@pytest.mark.parametrize("name", ["run_learning.py", "run_singularity.py"])
def test_shipped_wrapper_is_accepted_as_script(repos: Repos, tmp_path: Path, name: str) -> None:
    if not wrapper_path(name).exists():
        pytest.skip(f"hpoptim does not ship wrappers/{name} in this tree")
    info = prepare(GitSource(str(repos.local)), tmp_path / "checkout", script=f"wrappers/{name}")
    assert info.commit == repos.c3


def test_script_path_with_spaces(tmp_path: Path) -> None:
    repo = tmp_path / "a repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    sha = commit_file(repo, "scripts/my train.py", "VERSION = 7\n", "spaces")
    root = tmp_path / "results dir" / "checkout"
    info = prepare(GitSource(str(repo)), root, script="scripts/my train.py")
    assert info.commit == sha
    assert (root / "scripts" / "my train.py").read_text() == "VERSION = 7\n"


def _working_dir_case(tmp_path: Path, state: str) -> Path:
    repo = tmp_path / "work tree"
    if state == "not-a-repo":
        repo.mkdir()
        return repo
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    if state == "no-commits":
        return repo
    commit_file(repo, "train.py", "VERSION = 1\n", "first")
    commit_file(repo, ".gitignore", "*.ckpt\n", "ignore checkpoints")
    if state == "modified":
        (repo / "train.py").write_text("VERSION = 99\n")
    elif state == "staged":
        (repo / "other.py").write_text("x = 1\n")
        git(repo, "add", "other.py")
    elif state == "untracked":
        (repo / "new job.py").write_text("print('not committed')\n")
    elif state == "ignored":
        (repo / "model.ckpt").write_bytes(b"\0" * 10)
    elif state == "results-inside":  # the run's results directory, untracked in the tree
        (repo / "results" / "run").mkdir(parents=True)
        (repo / "results" / "run" / "journal.jsonl").write_text("{}\n")
    elif state == "subdirectory":
        (repo / "sub").mkdir()
        return repo / "sub"
    return repo


@pytest.mark.parametrize(
    ("state", "has_commit", "changes"),
    [
        pytest.param("clean", True, WorktreeChanges(), id="clean"),
        pytest.param(
            "modified", True, WorktreeChanges(modified=("train.py",)), id="modified-tracked-file"
        ),
        pytest.param("staged", True, WorktreeChanges(staged=("other.py",)), id="staged-new-file"),
        pytest.param(
            "untracked", True, WorktreeChanges(untracked=("new job.py",)), id="untracked-script"
        ),
        pytest.param("ignored", True, WorktreeChanges(), id="ignored-file-is-not-a-change"),
        pytest.param("results-inside", True, WorktreeChanges(), id="results-dir-not-counted"),
        pytest.param("subdirectory", True, WorktreeChanges(), id="subdirectory-of-repo"),
        pytest.param("no-commits", False, WorktreeChanges(), id="repo-without-commits"),
        pytest.param("not-a-repo", False, WorktreeChanges(), id="not-a-repo"),
    ],
)
def test_run_in_working_dir_records_commit_and_changes(
    tmp_path: Path, state: str, has_commit: bool, changes: WorktreeChanges
) -> None:
    work = _working_dir_case(tmp_path, state)
    clone_root = tmp_path / "results" / "checkout"
    info = prepare_checkout(
        GitSource("/ignored/when/running/in/working/dir"),
        work_dir=work,
        clone_root=clone_root,
        run_in_working_dir=True,
        script_relative_path="train.py",
        pinned_commit=None,
        exclude=[tmp_path / "work tree" / "results"],
    )
    expected = git(work, "rev-parse", "HEAD") if has_commit else None
    assert (info.root, info.commit, info.changes) == (work, expected, changes)
    assert info.dirty == changes.dirty
    assert not info.cloned
    assert not clone_root.exists()


def test_no_source_runs_in_working_dir(tmp_path: Path) -> None:
    info = prepare(None, tmp_path / "results" / "checkout", work_dir=tmp_path)
    assert (info.root, info.commit, info.cloned) == (tmp_path, None, False)


def _moving_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "moving repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    return repo, commit_file(repo, "train.py", "VERSION = 1\n", "first")


@pytest.mark.parametrize(
    ("keep_checkout", "depth"),
    [
        pytest.param(True, None, id="reuse-existing-checkout"),
        pytest.param(False, None, id="clone-again-at-pinned"),
        pytest.param(False, 1, id="shallow-clone-again-at-pinned"),
    ],
)
def test_resume_uses_pinned_commit_after_branch_moved(
    tmp_path: Path, keep_checkout: bool, depth: int | None
) -> None:
    repo, first = _moving_repo(tmp_path)
    root = tmp_path / "run" / "checkout"
    source = GitSource(str(repo), branch="main", depth=depth)
    assert prepare(source, root).commit == first
    marker = root / "marker-from-first-start"
    marker.write_text("")
    moved = commit_file(repo, "train.py", "VERSION = 2\n", "branch moved")
    if not keep_checkout:
        shutil.rmtree(root)

    info = prepare(source, root, pinned=first)
    assert info.commit == first != moved
    assert version_at(root) == 1
    assert marker.exists() == keep_checkout
    # a new (not resumed) start follows the branch and replaces the old checkout
    fresh = prepare(source, root)
    assert (fresh.commit, version_at(root), marker.exists()) == (moved, 2, False)
    assert sorted(p.name for p in root.parent.iterdir()) == ["checkout"]


def test_resume_with_vanished_commit_fails(tmp_path: Path) -> None:
    repo, _ = _moving_repo(tmp_path)
    gone = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(CheckoutError, match=f"commit {gone}, recorded when this run started"):
        prepare(GitSource(str(repo)), tmp_path / "run" / "checkout", pinned=gone)
    assert list((tmp_path / "run").iterdir()) == []


KILLED_CLONE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    os.environ["DRIVER_PID"] = str(os.getpid())
    from hpoptim.source.checkout import GitSource, prepare_checkout
    prepare_checkout(GitSource(sys.argv[1]), work_dir=Path.cwd(), clone_root=Path(sys.argv[2]),
                     run_in_working_dir=False, script_relative_path="train.py",
                     pinned_commit=None)
    """
)


def test_interrupted_clone_is_cleaned_up_and_redone(tmp_path: Path) -> None:
    repo, sha = _moving_repo(tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "post-checkout"
    hook.write_text('#!/bin/sh\nkill -9 "$DRIVER_PID"\nsleep 5\n')
    hook.chmod(0o755)
    root = tmp_path / "run dir" / "checkout"
    env = {
        **os.environ,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": str(hooks),
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_CLONE, str(repo), str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    leftovers = list(root.parent.iterdir())
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".checkout.tmp-")
    assert not root.exists()

    info = prepare(GitSource(str(repo)), root)
    assert info.commit == sha
    assert version_at(root) == 1
    assert sorted(p.name for p in root.parent.iterdir()) == ["checkout"]


@pytest.mark.parametrize(
    "how",
    [pytest.param("env", id="env-var"), pytest.param("field", id="cache_dir-field")],
)
def test_cache_dir_holds_checkout_shared_by_runs(
    repos: Repos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    cache = tmp_path / "scratch cache"
    if how == "env":
        monkeypatch.setenv(CACHE_ENV, str(cache))
        source = GitSource(str(repos.local), tag="v1")
    else:
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / "not used"))
        source = GitSource(str(repos.local), tag="v1", cache_dir=cache)
    first = prepare(source, tmp_path / "run1" / "checkout")
    second = prepare(source, tmp_path / "run2" / "checkout")
    assert first.root == second.root
    assert first.root.parent.parent == cache
    assert first.root.name == repos.c1
    assert version_at(first.root) == 1
    assert not (tmp_path / "run1").exists()
    assert not (tmp_path / "run2").exists()
    assert not (tmp_path / "not used").exists()
    assert [p.name for p in first.root.parent.iterdir()] == [repos.c1]


def test_cache_dir_with_short_sha_of_remote(repos: Repos, tmp_path: Path) -> None:
    source = GitSource(repos.upstream.as_uri(), commit=repos.c2[:9], cache_dir=tmp_path / "c")
    info = prepare(source, tmp_path / "run" / "checkout")
    assert info.commit == repos.c2
    assert info.root.name == repos.c2
    marker = info.root / "written-by-a-job-of-run-1"
    marker.write_text("")
    # the second run only learns the commit by cloning; it keeps the cached checkout
    again = prepare(source, tmp_path / "run2" / "checkout")
    assert again.root == info.root
    assert marker.exists()
    assert [p.name for p in (tmp_path / "c").iterdir()] == [info.root.parent.name]
    assert [p.name for p in info.root.parent.iterdir()] == [repos.c2]


@pytest.mark.parametrize(
    ("submodules", "expected"),
    [
        pytest.param(True, "LIB = 1\n", id="submodules-updated"),
        pytest.param(False, None, id="submodules-left-out"),
    ],
)
def test_submodules(tmp_path: Path, submodules: bool, expected: str | None) -> None:
    lib = tmp_path / "lib repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(lib))
    commit_file(lib, "lib.py", "LIB = 1\n", "lib")
    nested = tmp_path / "nested repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(nested))
    commit_file(nested, "deep.py", "DEEP = 1\n", "deep")
    git(lib, "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(nested), "deep")
    git(lib, "commit", "--quiet", "-m", "nested submodule")
    repo, _ = _moving_repo(tmp_path)
    git(repo, "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(lib), "lib")
    git(repo, "commit", "--quiet", "-m", "add submodule")

    info = prepare(GitSource(str(repo), submodules=submodules), tmp_path / "run" / "checkout")
    lib_file = info.root / "lib" / "lib.py"
    assert (lib_file.read_text() if lib_file.exists() else None) == expected
    assert (info.root / "lib" / "deep" / "deep.py").exists() == submodules
