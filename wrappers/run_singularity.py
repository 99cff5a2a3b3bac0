#!/usr/bin/env python3
"""Run a job script inside a Singularity/Apptainer image chosen in ``fixed_params``.

Job side, standard library only (imports nothing from hpoptim). For configs that
keep the container choice in the parameters instead of a ``singularity`` section::

    script_relative_path: wrappers/run_singularity.py
    fixed_params:
      singularity.image: ~/images/train.sif       # required
      singularity.script: scripts/train.sh        # required, relative to the working dir
      singularity.executable: apptainer           # optional; default: apptainer, else singularity
      singularity.use_run: false                  # optional; `run` instead of `exec`
      singularity.nv: false                       # optional; --nv
      singularity.containall: false               # optional; --containall
      singularity.cleanenv: false                 # optional; --cleanenv
      singularity.pwd: null                       # optional; default: the working directory
      singularity.bind: [/data]                   # optional; extra --bind specs
      singularity.options: []                     # optional; extra runtime options
      singularity.env: {OMP_NUM_THREADS: "1"}     # optional; extra --env variables

The keys are those of the config's ``singularity`` section (``args``, cluster_utils'
name for ``options``, works too). The wrapper reads the params file
(``HPOPTIM_PARAMS_FILE``, else the last argument), resolves the script against the
working directory, else ``wrappers/<name>`` to the wrappers shipped with hpoptim
(so ``singularity.script: wrappers/run_learning.py`` works in a checkout without
one), and runs::

    <runtime> exec|run [flags] --pwd CWD --bind RUN_DIR --bind CWD [--bind ...]
        --env HPOPTIM_*=... --env PYTHONPATH=... [--env ...] [options] IMAGE [python3] SCRIPT
        PARAMS_FILE

An executable script runs as is (its shebang must be valid inside the image); a
``.py`` file that is not executable runs with the image's ``python3``. The hpoptim
package (for ``hpoptim.job``/``hpoptim.compat``) and the shipped wrappers are bound
at their host paths and found through ``PYTHONPATH``, so the image needs no hpoptim.
``--env`` values are escaped for the runtime's shell evaluation of them (Apptainer
>= 1.1), unless ``--no-eval`` is among the options.

Output: the inner process writes to the job's own ``stdout.log``/``stderr.log`` in
its run directory, opened for appending (the files the launcher already fills),
so the driver's failure report shows the inner stderr. The wrapper then replaces
itself with the runtime (``os.execvp``): the time-limit signals (SIGTERM, SIGUSR1)
sent to the job reach the runtime, which forwards them to the inner process, and
the inner exit code (0, 3 = resume, anything else) or signal death is the job's.
A problem found by the wrapper itself (no image, no script, no runtime) exits with
code 78 (``SETUP_ERROR_EXIT_CODE`` of ``hpoptim.contract``: hpoptim stops the run instead of
retrying) and one
``run_singularity:`` line on stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

# the job contract (hpoptim/contract.py; tests/test_contract.py holds these copies equal)
ENV_PARAMS_FILE = "HPOPTIM_PARAMS_FILE"
ENV_RUN_DIR = "HPOPTIM_RUN_DIR"
STDOUT_FILE_NAME = "stdout.log"
STDERR_FILE_NAME = "stderr.log"
SETUP_ERROR_EXIT_CODE = 78
ENV_PREFIX = "HPOPTIM_"
RUNTIMES = ("apptainer", "singularity")
HERE = Path(__file__).resolve().parent
KNOWN_KEYS = {
    "image",
    "script",
    "executable",
    "use_run",
    "nv",
    "containall",
    "cleanenv",
    "pwd",
    "bind",
    "options",
    "env",
    "args",
}


class SetupError(Exception):
    """The wrapper cannot start the job; the message says why."""


def params_file(argv: list[str]) -> Path:
    """The params file: ``HPOPTIM_PARAMS_FILE``, else the last argument."""
    env = os.environ.get(ENV_PARAMS_FILE)
    if env:
        return Path(env)
    if argv:
        return Path(argv[-1])
    raise SetupError(f"no params file: set {ENV_PARAMS_FILE} or pass its path as last argument")


def container_settings(params_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``singularity`` settings and the job context from the params file."""
    try:
        data = json.loads(params_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read params file {params_path}: {exc}") from exc
    settings = data.get("params", {}).get("singularity")
    if not isinstance(settings, dict):
        raise SetupError(
            f"{params_path} has no 'singularity' parameters: set fixed_params "
            "singularity.image and singularity.script"
        )
    unknown = sorted(set(settings) - KNOWN_KEYS)
    if unknown:
        raise SetupError(
            f"unknown singularity parameter(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(KNOWN_KEYS))}"
        )
    for key in ("image", "script"):
        if not settings.get(key):
            raise SetupError(f"fixed_params singularity.{key} is required")
    job = data.get("job", {})
    return settings, job if isinstance(job, dict) else {}


def resolve_script(script: str, cwd: Path) -> Path:
    """``script`` relative to ``cwd`` (``~`` expanded), else the shipped wrapper it names.

    It must be an executable file, or a ``.py`` file (run with the image's python3).
    """
    path = Path(os.path.expanduser(script))
    path = path if path.is_absolute() else cwd / path
    parts = Path(script).parts
    if not path.exists() and len(parts) == 2 and parts[0] == "wrappers":
        path = HERE / parts[1] if (HERE / parts[1]).is_file() else path
    if not path.is_file():
        raise SetupError(f"singularity.script {script!r}: {path} does not exist")
    if not os.access(path, os.X_OK) and path.suffix != ".py":
        raise SetupError(
            f"singularity.script {script!r}: {path} is not executable (chmod +x it; it is "
            "run inside the image as is, so it needs a shebang valid there)"
        )
    return path


def resolve_runtime(executable: str | None) -> str:
    """The runtime asked for, or the first of apptainer, singularity on PATH."""
    path = os.environ.get("PATH", "")
    if executable:
        if shutil.which(executable) is None:
            raise SetupError(f"singularity.executable {executable!r} is not on PATH ({path})")
        return executable
    for name in RUNTIMES:
        if shutil.which(name):
            return name
    raise SetupError(f"no container runtime: looked for apptainer and singularity on PATH ({path})")


def build_argv(
    settings: dict[str, Any], script: Path, params_path: Path, run_dir: Path, cwd: Path
) -> list[str]:
    """The runtime command line (see the module docstring)."""
    image = str(settings["image"])
    if "://" not in image:
        image = os.path.expanduser(image)
        if not os.path.exists(image):
            raise SetupError(f"singularity.image {settings['image']!r}: {image} does not exist")
    argv = [
        resolve_runtime(settings.get("executable")),
        "run" if settings.get("use_run") else "exec",
    ]
    argv += [f"--{flag}" for flag in ("nv", "containall", "cleanenv") if settings.get(flag)]
    argv += ["--pwd", str(settings.get("pwd") or cwd)]
    own = [str(run_dir.resolve()), str(cwd), *[str(p) for p in job_side_dirs()]]
    for path in own:
        if "," in path or ":" in path:
            raise SetupError(
                f"cannot bind {path!r} into the container: the runtime reads ',' and ':' in "
                "--bind as separators; choose paths (results_dir, checkout) without them"
            )
    binds = _outermost(own) + [str(b) for b in _as_list(settings, "bind")]
    for bind in dict.fromkeys(binds):
        argv += ["--bind", os.path.expanduser(bind) if bind.startswith("~") else bind]
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    env.update({str(k): str(v) for k, v in dict(settings.get("env") or {}).items()})
    package = job_side_dirs()[0]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(package.parent), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    options = [str(o) for o in _as_list(settings, "options") + _as_list(settings, "args")]
    evaluated = "--no-eval" not in options
    for key, value in env.items():
        argv += ["--env", env_flag_value(key, evaluation_safe(value) if evaluated else value)]
    runner = [] if os.access(script, os.X_OK) else ["python3"]
    return [*argv, *options, image, *runner, str(script), str(params_path)]


def job_side_dirs() -> list[Path]:
    """The hpoptim package (for ``hpoptim.job``) and this wrappers directory.

    Installed, the wrappers are ``hpoptim/_wrappers`` inside the package; in a source
    tree they are ``wrappers/`` beside ``hpoptim/``.
    """
    if (HERE.parent / "job.py").is_file():
        return [HERE.parent]
    return [HERE.parent / "hpoptim", HERE]


def evaluation_safe(value: str) -> str:
    """``value`` with ``$``, backquote, ``"`` and ``\\`` escaped: the runtime writes ``--env``
    values as ``export K="V"`` and evaluates them (see hpoptim.launchers.container)."""
    return re.sub(r'([$`"\\])', r"\\\1", value)


def _outermost(paths: list[str]) -> list[str]:
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(p.startswith(o.rstrip("/") + "/") for o in unique)]


def env_flag_value(key: str, value: str) -> str:
    """``K=V`` encoded so the runtime's ``--env`` parser reads ``value`` unchanged.

    Same rule as ``hpoptim.launchers.container.env_flag_value``: one ``=`` and no
    trailing double quote -> plain; otherwise a quoted CSV field, doubled when the
    pair has a single ``=`` (to reach the CSV branch of the parser).
    """
    pair = f"{key}={value}"
    if pair.count("=") == 1 and not value.endswith('"'):
        return pair
    quoted = '"' + pair.replace('"', '""') + '"'
    return quoted if pair.count("=") > 1 else f"{quoted},{quoted}"


def _as_list(settings: dict[str, Any], key: str) -> list[Any]:
    value = settings.get(key) or []
    return [value] if isinstance(value, str) else list(value)


def _redirect_output(run_dir: Path) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for name, fd in ((STDOUT_FILE_NAME, 1), (STDERR_FILE_NAME, 2)):
        target = os.open(run_dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(target, fd)
        os.close(target)


def main(argv: list[str] | None = None) -> int:
    """Set up and exec the container; returns only on a setup error."""
    args = sys.argv[1:] if argv is None else argv
    try:
        params_path = params_file(args).resolve()
        settings, job = container_settings(params_path)
        cwd = Path.cwd()
        run_dir = Path(os.environ.get(ENV_RUN_DIR) or job.get("run_dir") or params_path.parent)
        if not run_dir.is_dir():
            raise SetupError(f"run directory {run_dir} does not exist")
        script = resolve_script(str(settings["script"]), cwd)
        command = build_argv(settings, script, params_path, run_dir, cwd)
    except SetupError as exc:
        sys.stderr.write(f"run_singularity: {exc}\n")
        return SETUP_ERROR_EXIT_CODE
    _redirect_output(run_dir)
    _exec(command)


def _exec(command: list[str]) -> NoReturn:
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"run_singularity: cannot start {command[0]}: {exc}\n")
        os._exit(SETUP_ERROR_EXIT_CODE)


if __name__ == "__main__":
    sys.exit(main())
