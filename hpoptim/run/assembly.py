"""Build a run's parts from its config: checks, launcher, container options, git source, command.

Part of the command-line layer (layer 4, beside ``cli`` and ``session``): the only
place that turns config sections into concrete launchers, container options, git
sources and job commands. It never prints or exits; ``cli`` does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hpoptim.config import RunConfig
from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.launchers import load
from hpoptim.launchers.base import BaseLauncher
from hpoptim.log import get_logger
from hpoptim.samplers.base import BaseSampler
from hpoptim.shipped import find_script, job_side_dir
from hpoptim.state.storage import ResultsLayout

logger = get_logger(__name__)


def config_checks(cfg: RunConfig) -> list[ConfigProblem]:
    """Problems the config layer cannot see: the container binary, the image that
    ``fixed_params`` names for ``wrappers/run_singularity.py``."""
    problems = _fixed_params_image(cfg)
    opts = cfg.singularity
    if opts is not None:
        from hpoptim.errors import LaunchError
        from hpoptim.launchers.container import resolve_executable

        try:
            resolve_executable(opts)
        except LaunchError as exc:
            problems.append(ConfigProblem("singularity.executable", str(exc)))
    return problems


def _fixed_params_image(cfg: RunConfig) -> list[ConfigProblem]:
    """``fixed_params.singularity.image`` must exist, as the ``singularity`` section's
    image must: absolute (or ``~``), or relative to the working directory jobs run in."""
    from hpoptim.launchers.container import configured_image

    if cfg.singularity is not None:
        return []
    image = configured_image(None, cfg.fixed_params)
    if image is None:
        return []
    path = image.expanduser()
    if not path.is_absolute() and not cfg.run_in_working_dir:
        return []  # relative to the checkout, which the run makes
    if path.exists():
        return []
    return [ConfigProblem("fixed_params.singularity.image", f"image {str(image)!r} does not exist")]


def start_checks(cfg: RunConfig) -> list[ConfigProblem]:
    """:func:`config_checks` plus what needs the directory jobs run from (a new run's cwd).

    Templates of a git checkout are checked in :meth:`hpoptim.run.session.Session._plan`,
    once it exists.
    """
    problems = config_checks(cfg)
    if cfg.run_in_working_dir:
        from hpoptim.run.learning import check_learning

        problems += check_learning(cfg, Path.cwd())
        try:
            script_command(cfg, Path.cwd())
        except ConfigError as exc:
            problems += exc.problems
    return problems


def make_sampler_for(cfg: RunConfig, seed: int) -> BaseSampler:
    """The sampler named by ``optimizer_str``, with its settings, over the config's space."""
    from hpoptim.samplers import make_sampler

    return make_sampler(
        cfg.optimizer_str,
        cfg.search_space(),
        minimize=cfg.lower_is_better,
        seed=seed,
        settings=cfg.optimizer_settings,
    )


def make_launcher(cfg: RunConfig, layout: ResultsLayout) -> BaseLauncher:
    """The launcher registered as ``cfg.launcher``, built from its config section.

    The launcher gets ``results root / <launcher name>`` as its own directory (the
    Slurm launcher's batch scripts live in ``slurm/``) and the run's name.

    Raises:
        ConfigError: No launcher is registered under that name, or its section
            holds settings the launcher refuses.
    """
    cls = load(cfg.launcher)
    return cls.from_settings(
        cfg.launcher_settings(),
        work_dir=layout.root / cfg.launcher,
        name=cfg.optimization_procedure_name,
    )


def stop_leftover_jobs(layout: ResultsLayout) -> None:
    """Stop the jobs of the run in ``layout`` that still run without a driver.

    Every registered launcher is asked, with its own directory of the run
    (``layout.root / name``, which may not exist): the saved config need not be read,
    and a launcher the run did not use finds nothing there.

    Raises:
        LaunchError: Some of them could not be stopped.
    """
    from hpoptim.launchers import LAUNCHERS

    for name in sorted(LAUNCHERS):
        n = load(name).stop_leftovers(layout.root / name)
        if n:
            logger.warning("stopped %d %s job(s) of the previous run", n, name)


def script_command(cfg: RunConfig, root: Path) -> tuple[str, ...]:
    """The argv prefix that runs the job script found under ``root``.

    Raises:
        ConfigError: The script does not exist, or must be executable and is not.
    """
    script = resolve_script(root, cfg.script_relative_path)
    if cfg.interpreter is not None:
        return (*cfg.interpreter, str(script))
    if script.suffix == ".py":
        return (sys.executable, str(script))
    if not (script.is_file() and os.access(script, os.X_OK)):
        raise ConfigError.single(
            "script_relative_path",
            f"script {str(script)!r} is run directly, so it must be an executable file "
            "(chmod +x it, or set interpreter)",
        )
    return (str(script),)


def resolve_script(root: Path, relative: str) -> Path:
    """The job script: ``relative`` to the checkout root, or a wrapper shipped with hpoptim."""
    script = find_script(root, relative)
    if script is not None:
        return script
    raise ConfigError.single(
        "script_relative_path", f"script {relative!r} does not exist under {root}"
    )


def job_env(cfg: RunConfig, root: Path) -> dict[str, str]:
    """The config's ``environment`` with :func:`job_side_dir` first on ``PYTHONPATH``
    (before the config's ``PYTHONPATH``, else the driver's): ``hpoptim.job`` and
    ``hpoptim.compat`` import in any job environment."""
    env = dict(cfg.environment)
    rest = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(job_side_dir(root)), rest) if p)
    return env
