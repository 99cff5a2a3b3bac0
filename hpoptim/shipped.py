"""Where the job-side wrappers and the config templates shipped with hpoptim are."""

from __future__ import annotations

import importlib.util
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def wrappers_dir() -> Path:
    """The directory holding ``run_learning.py`` and ``run_singularity.py``."""
    return _locate("hpoptim._wrappers", "wrappers")


def wrapper_path(name: str) -> Path:
    """Path of an installed wrapper script, e.g. ``wrapper_path("run_learning.py")``."""
    return wrappers_dir() / name


def load_wrapper(name: str) -> ModuleType:
    """The shipped wrapper ``name`` (e.g. ``"run_learning"``) imported from its file.

    Loaded by path, not as ``hpoptim._wrappers.<name>``: run from a source tree (``python -m
    hpoptim`` in the repository root, with hpoptim installed), ``hpoptim`` is the source
    tree's package, which has no ``_wrappers`` sub-package; the wrappers are ``wrappers/``
    beside it.
    """
    module_name = f"hpoptim_wrapper_{name}"
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, wrapper_path(f"{name}.py"))
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise ImportError(f"cannot load the shipped wrapper {name}.py from {wrappers_dir()}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


JOB_SIDE_DIR_NAME = "job_side"


def job_side_dir(root: Path) -> Path:
    """The directory under a run's results directory ``root`` that, on a job's
    ``PYTHONPATH``, makes ``hpoptim`` importable and nothing else of the driver's
    environment (see :func:`link_job_side`)."""
    return root / JOB_SIDE_DIR_NAME


def link_job_side(root: Path) -> Path:
    """Make :func:`job_side_dir` hold ``hpoptim``: a link to this package.

    A job importing ``hpoptim.job`` or ``hpoptim.compat`` (standard library only) then
    needs no hpoptim installed where it runs (a virtualenv, a conda environment, another
    Python), as the container route binds the package into the image; the driver's
    other packages stay out of the job's way. Made again on every start, so a resumed
    run follows the hpoptim that resumes it.
    """
    target = job_side_dir(root)
    target.mkdir(exist_ok=True)
    link = target / "hpoptim"
    package = Path(__file__).resolve().parent
    if link.is_symlink() and link.resolve() == package:
        return target
    tmp = target / ".hpoptim.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(package, target_is_directory=True)
    tmp.replace(link)
    return target


def find_script(root: Path, relative: str) -> Path | None:
    """The job script ``relative`` to ``root``, else the shipped wrapper it names, else None.

    ``wrappers/run_learning.py`` and ``wrappers/run_singularity.py`` resolve to the copies
    shipped with hpoptim when the checkout (or working directory) has none.
    """
    script = root / relative
    if script.exists():
        return script
    return shipped_stand_in(relative)


def shipped_stand_in(relative: str) -> Path | None:
    """The shipped wrapper ``wrappers/NAME`` names, if hpoptim ships one."""
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
