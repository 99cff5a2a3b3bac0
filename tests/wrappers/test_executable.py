"""The shipped wrappers run wherever a script goes: executable, with a python3 shebang."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

WRAPPERS = sorted((Path(__file__).resolve().parents[2] / "wrappers").glob("run_*.py"))


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=[w.name for w in WRAPPERS])
def test_wrapper_runs_as_an_executable(wrapper: Path, tmp_path: Path) -> None:
    assert wrapper.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert os.access(wrapper, os.X_OK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPOPTIM_")}
    proc = subprocess.run(
        [str(wrapper), str(tmp_path / "params.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 78  # started, and reports its own setup problem
    assert "params" in proc.stderr
