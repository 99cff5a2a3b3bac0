"""Wrap a job in Singularity/Apptainer: :class:`~hpoptim.jobspec.JobSpec` -> argv.

Pure and shared by every launcher: :func:`container_argv` turns a spec with a
``container`` into the command line that runs ``spec.argv`` inside the image::

    <exe> exec|run [--nv] [--containall] [--cleanenv] --pwd DIR
        --bind SRC ... [--bind USER_SPEC ...] --env K=V ... [options...] IMAGE argv...

The job sees the same paths as on the host: its run directory, its working
directory and ``spec.binds`` are bound at their host paths (a path inside
another bound path is dropped), ``--pwd`` is the job's working directory, and
``spec.env`` (the ``HPOPTIM_*`` variables and the config's ``environment``) plus
the container's own ``env`` are passed with ``--env``, so they survive
``--cleanenv``/``--containall``.

What comes from spython and what is built here: spython 0.3's client builds its
commands in ``Client._init_command`` (``["singularity", action]``) and
``Client._generate_bind_list`` (``["--bind", spec, ...]``); both are used (the
executable name is then replaced by the resolved one). Its ``execute``/``run``
cannot be used to build a command: they first run ``singularity --version``
(``check_install``), then run the command themselves, take the command as a
string split on spaces, and know no ``--pwd``/``--env``/``--cleanenv``. So the
flags other than ``--bind`` are added here, in the same order spython uses
(``--nv`` first, binds, then free options, then image and command). spython's
bind helper calls ``sys.exit`` for a missing host path, so paths are checked
here first and a :class:`LaunchError` is raised instead.

Runtime facts the argv relies on (apptainer ``cmd/internal/cli/action_flags.go``):
``--bind`` splits its value on commas and each item on colons (``src:dst:opts``),
so a bound path must contain neither; ``--env`` is a pflag string-to-string map:
a value with exactly one ``=`` is taken whole except that surrounding double
quotes are trimmed, and a value with several ``=`` is read as one CSV record.
:func:`env_flag_value` encodes every value so that it arrives unchanged.
Apptainer >= 1.1 shell-evaluates ``--env`` values inside the container unless
``--no-eval`` is given (older runtimes reject that flag); add it to ``options``
when environment values (e.g. the results path) contain ``$`` or backquotes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpoptim.errors import LaunchError
from hpoptim.jobspec import RUNTIMES, ContainerOptions, JobSpec
from hpoptim.messages import ENV_NAME
from hpoptim.shipped import wrappers_dir

_CHUNK_BYTES = 1 << 20
IMAGE_PYTHON = "python3"


def _driver_interpreters() -> set[str]:
    names = {sys.executable, os.path.realpath(sys.executable)}
    return {n for n in names if n}


def resolve_executable(opts: ContainerOptions) -> str:
    """The container runtime to call.

    Args:
        opts: The container options; ``opts.executable`` names the runtime
            (``"apptainer"`` or ``"singularity"``; a path to either works too), else
            the first of apptainer, singularity found on ``PATH`` is used.

    Returns:
        The executable as given, or the name of the one found on ``PATH``.

    Raises:
        LaunchError: The runtime asked for, or any runtime, is not on ``PATH``.
    """
    path = os.environ.get("PATH", "")
    if opts.executable is not None:
        if shutil.which(opts.executable) is None:
            raise LaunchError(
                f"container runtime singularity.executable={opts.executable!r} is not an "
                f"executable on PATH ({path}); install it or load its module so that it is "
                "on PATH, or choose the other runtime"
            )
        return opts.executable
    for name in RUNTIMES:
        if shutil.which(name) is not None:
            return name
    raise LaunchError(
        "no container runtime found for the singularity section: looked for "
        f"{' and '.join(RUNTIMES)} on PATH ({path}); install Apptainer/Singularity or "
        "load its module so that it is on PATH"
    )


def container_argv(spec: JobSpec) -> list[str]:
    """The command that runs ``spec.argv`` inside ``spec.container``'s image.

    Args:
        spec: A job spec whose ``container`` is set.

    Returns:
        The argv list (no shell involved), deterministic for a given spec and PATH.

    Raises:
        LaunchError: No container options, no runtime, the image or a bound path
            is missing, or a path/variable cannot be expressed on the runtime's
            command line.
    """
    opts = spec.container
    if opts is None:
        raise LaunchError(f"job {spec.job_id} has no container options to wrap it with")
    image = _image_path(opts.image)
    if not image.exists():
        raise LaunchError(f"singularity.image: image {str(image)!r} does not exist")
    client = _spython_client()
    argv: list[str] = client._init_command("run" if opts.use_run else "exec")
    argv[0] = resolve_executable(opts)
    argv += _flag("--nv", opts.nv) + _flag("--containall", opts.containall)
    argv += _flag("--cleanenv", opts.cleanenv)
    argv += ["--pwd", opts.pwd if opts.pwd is not None else str(spec.cwd)]
    job_side = job_side_paths()
    argv += client._generate_bind_list(bind_specs(spec, opts, extra=job_side))
    env = {**spec.env, **dict(opts.env)}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(job_side[0].parent), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    evaluated = "--no-eval" not in opts.options
    for key, value in env.items():
        argv += ["--env", env_flag_value(key, evaluation_safe(value) if evaluated else value)]
    return [*argv, *opts.options, str(image), *image_command(spec.argv)]


def image_command(argv: Sequence[str]) -> list[str]:
    """``argv`` as the image runs it: the driver's own interpreter becomes ``python3``.

    The driver's ``sys.executable`` (often a virtualenv's) does not exist inside the
    image; the image's ``python3`` on its ``PATH`` runs the script instead.
    """
    command = list(argv)
    if command and command[0] in _driver_interpreters():
        command[0] = IMAGE_PYTHON
    return command


def job_side_paths() -> tuple[Path, ...]:
    """Host directories a job inside an image needs: the ``hpoptim`` package (for
    ``hpoptim.job`` and ``hpoptim.compat``, found through ``PYTHONPATH``) and the
    shipped wrappers. The first entry is the package directory."""
    package = Path(__file__).resolve().parent.parent
    wrappers = wrappers_dir().resolve()
    return (package,) if _is_inside(str(wrappers), str(package)) else (package, wrappers)


def evaluation_safe(value: str) -> str:
    """``value`` escaped so that Apptainer's evaluation of ``--env`` gives it back.

    Apptainer >= 1.1 (and SingularityCE >= 3.6) write each ``--env`` variable as
    ``export K="V"`` into a script the container sources, so ``$``, backquotes,
    ``"`` and ``\\`` in ``V`` would be expanded; each is escaped with a backslash.
    With ``--no-eval`` in the options the values are passed as they are.
    """
    return re.sub(r'([$`"\\])', r"\\\1", value)


def bind_specs(spec: JobSpec, opts: ContainerOptions, extra: Iterable[Path] = ()) -> list[str]:
    """The ``--bind`` values: the job's paths at their host paths, then ``opts.bind``.

    The run directory, the working directory and ``spec.binds`` are made absolute;
    a path equal to or inside another of them is dropped; the rest keep their
    order. The user's specs follow as given (a leading ``~`` expanded), minus exact
    duplicates.

    Raises:
        LaunchError: A path does not exist on the host, or contains a comma or a
            colon (which the runtime would read as a list or a destination).
    """
    candidates = [spec.paths.run_dir, spec.cwd, *spec.binds, *extra]
    paths = _outermost(os.path.abspath(os.path.expanduser(p)) for p in candidates)
    for path in paths:
        _check_bind_source(path, path, "a job directory")
    specs = list(paths)
    for user_spec in opts.bind:
        expanded = os.path.expanduser(user_spec) if user_spec.startswith("~") else user_spec
        for item in expanded.split(","):
            _check_bind_source(item.split(":")[0], user_spec, "singularity.bind")
        if expanded not in specs:
            specs.append(expanded)
    return specs


def env_flag_value(key: str, value: str) -> str:
    """Encode one variable for ``--env`` so that the runtime reads exactly ``value``.

    pflag's string-to-string parser takes ``K=V`` with a single ``=`` whole after
    trimming double quotes at both ends, and parses anything with more ``=`` as a
    CSV record. Plain values pass as ``K=V``; others are written as a quoted CSV
    field, doubled (``"K=V","K=V"``) when needed to reach the CSV branch; setting
    the same key twice to the same value is harmless.

    Raises:
        LaunchError: ``key`` is not a valid environment variable name.
    """
    if not ENV_NAME.match(key):
        raise LaunchError(
            f"environment variable name {key!r} is not valid (letters, digits and _, "
            "not starting with a digit)"
        )
    pair = f"{key}={value}"
    if pair.count("=") == 1 and not value.endswith('"'):
        return pair
    quoted = '"' + pair.replace('"', '""') + '"'
    return quoted if pair.count("=") > 1 else f"{quoted},{quoted}"


def image_sha256(path: Path) -> str:
    """The SHA-256 hex digest of the image at ``path`` (``~`` expanded), streamed.

    For an image file, the digest of its bytes. For a sandbox image (a directory),
    the digest of each file's relative path, NUL, and the digest of its bytes (a
    symlink: of its target), in sorted path order.

    Raises:
        LaunchError: The image does not exist or cannot be read.
    """
    image = _image_path(path)
    try:
        if image.is_dir():
            return _tree_sha256(image)
        return _file_sha256(image)
    except FileNotFoundError as exc:
        raise LaunchError(f"singularity.image: image {str(image)!r} does not exist") from exc
    except OSError as exc:
        raise LaunchError(f"singularity.image: cannot read image {str(image)!r}: {exc}") from exc


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_symlink():
                digest.update(hashlib.sha256(os.readlink(path).encode()).digest())
            else:
                digest.update(bytes.fromhex(_file_sha256(path)))
    return digest.hexdigest()


def configured_image(section_image: Path | None, fixed_params: Mapping[str, Any]) -> Path | None:
    """The image a run uses: the ``singularity`` section's, else ``fixed_params``'
    ``singularity.image`` (the ``wrappers/run_singularity.py`` route); None for none
    or a remote (``scheme://``) image."""
    if section_image is not None:
        return section_image
    value = fixed_params.get("singularity.image")
    nested = fixed_params.get("singularity")
    if value is None and isinstance(nested, Mapping):
        value = nested.get("image")
    if not isinstance(value, str) or "://" in value:
        return None
    return Path(value)


def _image_path(image: Path | str) -> Path:
    return Path(os.path.expanduser(str(image)))


def _flag(name: str, enabled: bool) -> list[str]:
    return [name] if enabled else []


def _outermost(paths: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(_is_inside(p, other) for other in unique if other != p)]


def _is_inside(path: str, parent: str) -> bool:
    return parent == os.sep or path.startswith(parent.rstrip(os.sep) + os.sep)


def _check_bind_source(source: str, spec: str, origin: str) -> None:
    if origin != "singularity.bind" and ("," in source or ":" in source):
        raise LaunchError(
            f"cannot bind {origin} {source!r} into the container: the runtime reads ',' "
            "as a list separator and ':' as a destination separator in --bind; choose "
            "paths (results_dir, checkout) without them"
        )
    if not os.path.exists(source):
        raise LaunchError(
            f"{origin}: bind source {source!r} (from {spec!r}) does not exist on the host"
        )


@functools.lru_cache(maxsize=1)
def _spython_client() -> Any:
    """spython's client, used only to build argv; creating it runs nothing."""
    from spython.main import get_client

    return get_client(quiet=False, debug=False)
