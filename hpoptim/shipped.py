"""Where the job-side wrappers and the config templates shipped with hpoptim are."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def wrappers_dir() -> Path:
    """The directory holding ``run_learning.py`` and ``run_singularity.py``."""
    return _locate("hpoptim._wrappers", "wrappers")


def wrapper_path(name: str) -> Path:
    """Path of an installed wrapper script, e.g. ``wrapper_path("run_learning.py")``."""
    return wrappers_dir() / name


def find_script(root: Path, relative: str) -> Path | None:
    """The job script ``relative`` to ``root``, else the shipped wrapper it names, else None.

    ``wrappers/run_learning.py`` and ``wrappers/run_singularity.py`` resolve to the copies
    shipped with hpoptim when the checkout (or working directory) has none.
    """
    script = root / relative
    if script.exists():
        return script
    parts = Path(relative).parts
    if len(parts) == 2 and parts[0] == "wrappers" and wrapper_path(parts[1]).exists():
        return wrapper_path(parts[1])
    return None


def _locate(package: str, source_name: str) -> Path:
    try:
        found = Path(str(resources.files(package)))
    except ModuleNotFoundError:
        found = _SOURCE_ROOT / source_name
    if not found.is_dir():
        found = _SOURCE_ROOT / source_name
    return found
