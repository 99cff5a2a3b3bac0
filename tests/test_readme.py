"""What the README promises: named paths exist, named API exists, CI runs its tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpoptim import job

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
PATH_RE = re.compile(r"`((?:examples|benchmarks|tests|wrappers|templates|hpoptim)/[\w./-]*)`")


def _code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("path", sorted(set(PATH_RE.findall(README))))
def test_every_path_named_in_the_readme_exists(path: str) -> None:
    assert (REPO / path.rstrip("/")).exists(), path


def test_the_job_api_snippet_names_real_functions() -> None:
    names = {n for block in _code_blocks("python") for n in re.findall(r"\bjob\.(\w+)\(", block)}
    assert names  # the snippet is there
    missing = sorted(n for n in names if not callable(getattr(job, n, None)))
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    install, test = _code_blocks("bash")[:2]
    command = test.strip().split("&&")[-1].strip()
    assert command == "python -m pytest"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in [line.strip() for line in ci]
    assert "examples/rosenbrock/config.yaml" in install
