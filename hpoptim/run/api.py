"""``hpoptim.run(...)``: an optimisation from Python, for notebooks and tools that build
configs in code. It does what ``hpoptim CONFIG`` does, without printing or exiting."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpoptim.results.load import RunData


def run(
    config: str | Path | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    launcher: str | None = None,
    overwrite: bool = False,
    stop: threading.Event | None = None,
) -> RunData:
    """Run (or continue) an optimisation and return its results, as :func:`load_run` does.

    Args:
        config: A config file (JSON, YAML or TOML), or the config itself as a mapping
            (cluster_utils keys are translated as in a file).
        overrides: ``key=value``, ``+key=value`` and ``~key`` strings, as on the
            command line.
        launcher: Where jobs run (``local``, ``slurm``, ...); overrides the config's.
        overwrite: Start afresh even if the results directory holds a run with
            another config (the old run is moved aside, never deleted).
        stop: Set it (from another thread) to stop the run: running jobs are cancelled
            and :class:`~hpoptim.errors.RunStoppedError` is raised; ``hpoptim resume``
            continues it.

    Returns:
        The run's settings, jobs and best setting.

    Raises:
        ConfigError: The config is invalid (every problem, each naming its key).
        OverrideError: An override cannot be parsed or applied.
        RunStoppedError: ``stop`` was set, or the run stopped (too many failures).
        RunFailedError: Every setting failed.

    Example:
        >>> results = hpoptim.run("examples/rosenbrock/config.yaml",  # doctest: +SKIP
        ...                       ["number_of_samples=20"])
        >>> results.best  # doctest: +SKIP
    """
    from hpoptim.results.load import load_run
    from hpoptim.run.session import open_session

    extra = [f"launcher={launcher!r}"] if launcher is not None else []
    source = config if isinstance(config, Mapping) else Path(config)
    session = open_session(config=source, overrides=[*overrides, *extra], overwrite=overwrite)
    if not session.already_finished:
        session.run(stop or threading.Event())
    else:
        session.close()
    return load_run(session.layout.root)
