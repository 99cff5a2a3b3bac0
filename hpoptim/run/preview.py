"""``hpoptim check CONFIG --show N``: what a run would do, before anything is spent.

Part of the command-line layer, beside ``session``: the sampler's first settings, the
grid's size, and the first job's command, working directory and container argv. Nothing
is written, cloned or started.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpoptim.errors import LaunchError
from hpoptim.run.assembly import make_launcher, make_sampler_for
from hpoptim.run.jobs import JobFactory
from hpoptim.run.outcomes import format_params
from hpoptim.run.session import Session

if TYPE_CHECKING:
    from hpoptim.jobspec import JobSpec


def preview(session: Session, n_settings: int) -> str:
    """What ``hpoptim check --show N`` prints: the sampler's first settings, the grid's
    size, and the first job's command, working directory and container argv.

    Nothing is written, cloned or started.
    """
    cfg = session.cfg
    seed = cfg.seed if cfg.seed is not None else 0
    sampler = make_sampler_for(cfg, seed)
    proposed = []
    for _ in range(min(n_settings, cfg.number_of_samples)):
        params = sampler.ask()
        if params is None:
            break
        proposed.append(params)
    how = f"seed {seed}" if cfg.seed is not None else "seed 0 (no seed set: a run draws one)"
    lines = [f"first {len(proposed)} setting(s) from {cfg.optimizer_str} with {how}:"]
    lines += [f"  {i}: {format_params(p)}" for i, p in enumerate(proposed)]
    lines += _grid_note(sampler.n_settings(), cfg.number_of_samples)
    if proposed:
        lines += _first_job(session, proposed[0], seed)
    return "\n".join(lines)


def _first_job(session: Session, params: dict[str, Any], seed: int) -> list[str]:
    cfg = session.cfg
    root = Path.cwd() if cfg.run_in_working_dir else session.layout.checkout_dir
    plan = session.plan({"root": str(root)}, seed, check=cfg.run_in_working_dir)
    jobs = JobFactory(plan.template, session.layout, plan.lifecycle, plan.settings.seed)
    spec = jobs.preview(params)
    lines = [
        "first job:",
        f"  command: {shlex.join(spec.argv)}",
        f"  working directory: {spec.cwd}",
        f"  run directory: {spec.paths.run_dir}",
    ]
    if not cfg.run_in_working_dir:
        lines.append("  (the checkout is cloned there when the run starts)")
    if spec.container is not None:
        from hpoptim.launchers.container import container_argv

        try:
            lines.append(f"  container argv: {shlex.join(container_argv(spec))}")
        except LaunchError as exc:
            lines.append(f"  container argv: cannot be built yet: {exc}")
    lines += _submission(session, spec)
    return lines


def _submission(session: Session, spec: JobSpec) -> list[str]:
    """What the launcher would submit for the first job, if more than its command."""
    try:
        text = make_launcher(session.cfg, session.layout).preview(spec)
    except LaunchError as exc:
        return [f"  {session.cfg.launcher} submission: cannot be built: {exc}"]
    if not text:
        return []
    return [f"  {session.cfg.launcher} submission:", *(f"    {x}" for x in text.splitlines())]


def _grid_note(n_grid: int | None, n_samples: int) -> list[str]:
    if n_grid is None:
        return []
    if n_samples >= n_grid:
        return [f"grid: {n_grid} setting(s); number_of_samples={n_samples} runs all of them"]
    return [
        f"grid: {n_grid} setting(s); number_of_samples={n_samples} CUTS it: only the first "
        f"{n_samples} are run, {n_grid - n_samples} never"
    ]
