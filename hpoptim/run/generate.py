"""``hpoptim run CONFIG --generate-only``: every setting's job directory, nothing run.

Part of the command-line layer, beside ``session`` and ``preview``: for users who launch
jobs their own way. Each setting's reruns get the run directory their first job would
get, under ``RESULTS/NAME/generated/`` (so a real run of the config later never meets
them): the params file, and with ``wrappers/run_learning.py`` the patched config files
and ``main_config``. ``generated/jobs.jsonl`` lists every job's command (container argv
included), working directory and environment. Nothing is journaled or started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hpoptim.run.assembly import make_sampler_for
from hpoptim.run.loop import Optimization
from hpoptim.run.session import Session
from hpoptim.shipped import link_job_side, load_wrapper
from hpoptim.state.storage import ResultsLayout, write_text_atomic

if TYPE_CHECKING:
    from hpoptim.jobspec import JobSpec
    from hpoptim.launchers.base import BaseLauncher

GENERATED_DIR_NAME = "generated"


def generate(session: Session) -> str:
    """Write every setting's job directories and ``jobs.jsonl``; return a summary line.

    Raises:
        ConfigError: A template or parameter problem found in the checkout.
        CheckoutError: The repository cannot be checked out at the ref.
    """
    from hpoptim.run.learning import uses_templates

    cfg = session.cfg
    checkout, seed = session.prepare()
    plan = session.plan(checkout, seed)
    link_job_side(session.layout.root)  # on every job's PYTHONPATH (see job_env)
    layout = ResultsLayout(session.layout.root / GENERATED_DIR_NAME)
    sampler = make_sampler_for(cfg, seed)
    # only to build and write the jobs: this loop never runs, so it needs no launcher
    loop = Optimization(plan, sampler, cast("BaseLauncher", None), layout)
    patch = uses_templates(cfg.script_relative_path, cfg.fixed_params)
    lines = []
    for _ in range(cfg.number_of_samples):
        params = sampler.ask()
        if params is None:
            break
        for spec in loop.generate(params):
            if patch:
                document = json.loads(spec.paths.params_file.read_text(encoding="utf-8"))
                load_wrapper("run_learning").prepare(document, Path(checkout["root"]))
            lines.append(json.dumps(_manifest_row(spec, params)))
    write_text_atomic(layout.root / "jobs.jsonl", "".join(f"{line}\n" for line in lines))
    n_settings = loop.history.n_asked
    return (
        f"generated {len(lines)} job(s) of {n_settings} setting(s) under {layout.jobs_dir}; "
        f"their commands, working directories and environments: {layout.root / 'jobs.jsonl'}"
    )


def _manifest_row(spec: JobSpec, params: dict[str, Any]) -> dict[str, Any]:
    argv = list(spec.argv)
    if spec.container is not None:
        from hpoptim.launchers.container import container_argv

        argv = container_argv(spec)
    return {
        "job_id": spec.job_id,
        "params": params,
        "argv": argv,
        "cwd": str(spec.cwd),
        "env": dict(spec.env),
        "run_dir": str(spec.paths.run_dir),
    }
