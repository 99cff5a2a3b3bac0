"""hpoptim installed as a user installs it (``pip install .``, not editable).

The installed package is built from a copy of the project's files into a virtualenv
whose dependencies come from this interpreter's site-packages (a ``.pth`` line, so
nothing is downloaded but the build backend). ``python -m hpoptim`` then runs from the
repository root, where the source tree's ``hpoptim/`` shadows the installed package and
``wrappers/`` is not its ``hpoptim/_wrappers``, and from any other directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("pyproject.toml", "README.md", "hpoptim", "wrappers", "templates")


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a virtualenv holding a non-editable install of this tree."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(src, source / name)
    venv = root / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = ["python3", "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    subprocess.run([*pip, str(source)], check=True, capture_output=True)
    return python


def _hpoptim(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "hpoptim", *args], cwd=cwd, capture_output=True, text=True
    )


def test_python_m_hpoptim_works_from_the_repository_root(installed_python: Path) -> None:
    """The learning example loads the shipped run_learning.py, which the source tree's
    ``hpoptim`` package cannot import as ``hpoptim._wrappers``."""
    proc = _hpoptim(installed_python, REPO, "check", "examples/learning/config.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "ModuleNotFoundError" not in proc.stderr


def test_python_m_hpoptim_works_anywhere_else(installed_python: Path, tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("print('never run by check')\n")
    config = {
        "optimization_procedure_name": "elsewhere",
        "results_dir": "results",
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "fixed_params": {"config.config_templates": "index.json"},
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "number_of_samples": 2,
        "n_jobs_per_iteration": 1,
        "metric_to_optimize": "loss",
        "minimize": True,
    }
    (tmp_path / "index.json").write_text(json.dumps({"main": "main.json"}))
    (tmp_path / "main.json").write_text(json.dumps({"lr": 0.1}))
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = _hpoptim(installed_python, tmp_path, "check", "config.json")
    assert proc.returncode == 0, proc.stderr
    where = subprocess.run(
        [str(installed_python), "-c", "import hpoptim; print(hpoptim.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(installed_python.parent.parent) in where  # the installed copy, not the tree
