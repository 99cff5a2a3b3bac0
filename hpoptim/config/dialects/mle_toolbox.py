"""mle-toolbox experiment YAMLs (``meta_job_args`` ...) -> native keys, with notes.

mle-toolbox's meaning of each key is its own (docs/how_to_toolbox.md, hyperopt/hyperspace.py):
``hyperparameter-search`` becomes a search over ``train_config.<name>`` parameters, run
through ``wrappers/run_mle.py``, which writes the base JSON config with the sampled values in
its ``train_config`` and runs ``python <base_train_fname> -config FILE -seed N -exp_dir DIR``;
``multiple-experiments`` becomes a grid over ``config_fnames`` x seeds that only collects
metrics. Both the current layout (``search_logging``/``search_resources``/``search_config``
with ``search_params``) and the older flat one (``params_to_search``,
``maximize_objective``, ``eval_score_type``) are read, and the newest one's
(``experiment_type``, ``num_total_evals``, ``max_running_jobs``, ``num_seeds_per_eval``).
Paths are relative to the directory hpoptim is started in, as mle-toolbox's are to where
``mle run`` is started. The search space: :mod:`hpoptim.config.dialects.mle_space`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpoptim.config.dialects.cluster_utils import slurm_minutes
from hpoptim.config.dialects.mle_space import search_space
from hpoptim.config.dialects.notes import Note
from hpoptim.space import did_you_mean

MLE_KEYS = ("meta_job_args", "param_search_args", "single_job_args", "multi_experiment_args")
JOB_TYPES = ("hyperparameter-search", "multiple-experiments")
WRAPPER = "wrappers/run_mle.py"
#: mle-toolbox search_type -> hpoptim optimizer_str (and why, where the meaning differs).
OPTIMIZERS = {
    "grid": ("gridsearch", ""),
    "random": ("random", ""),
    "smbo": (
        "tpe",
        " (mle-toolbox's smbo is scikit-optimize's GP; tpe is hpoptim's model-based one)",
    ),
}
META_KEYS = (
    "project_name",
    "job_type",
    "experiment_type",
    "report_generation",
    "remote_exec_dir",
    "base_train_fname",
    "base_train_config",
    "experiment_dir",
)
#: keys of param_search_args (both layouts, flattened) that change nothing here.
#: meta_job_args file keys -> the keys of fixed_params.mle_toolbox run_mle.py reads.
_WRAPPER_KEYS = {"base_train_fname": "train_script", "base_train_config": "base_config"}
SEARCH_DROPPED = {
    "reload_log": "use `hpoptim resume` to continue a run",
    "verbose_log": "hpoptim's progress display and -v",
    "problem_type": "the metric is the last value the job reports",
    "search_schedule": "hpoptim keeps n_jobs_per_iteration settings in flight",
    "verbose_logging": "hpoptim's progress display and -v",
    "hyperlog_fname": "hpoptim's journal and settings.csv hold every evaluation",
    "no_results_logging": "hpoptim's journal and settings.csv hold every evaluation",
}
#: param_search_args numbers: current/older names and what they become.
BUDGET_KEYS = (
    "num_search_batches",
    "num_iter_per_batch",
    "num_evals_per_batch",
    "num_evals_per_iter",
    "num_total_evals",
    "max_running_jobs",
    "num_seeds_per_eval",
)
SEARCH_KEYS = (
    "search_type",
    "max_objective",
    "maximize_objective",
    "eval_metrics",
    "eval_score_type",
    *BUDGET_KEYS,
    "random_seeds",
    "aggregate_seeds",
    "search_params",
    "params_to_search",
    *SEARCH_DROPPED,
)
SINGLE_JOB_DROPPED = {
    "job_name": "jobs are named by hpoptim",
    "log_file": "each job's output is stdout.log in its directory",
    "err_file": "each job's errors are stderr.log in its directory",
    "env_name": "jobs run with hpoptim's interpreter (set `interpreter` for another one)",
    "use_conda_venv": "jobs run with hpoptim's interpreter (set `interpreter` for another one)",
}
SINGLE_JOB_KEYS = (
    "num_logical_cores",
    "num_gpus",
    "time_per_job",
    "memory_per_job",
    "exclude_nodes",
    "extra_cmd_line_input",
    *SINGLE_JOB_DROPPED,
)


def is_mle_toolbox(data: Mapping[str, Any]) -> bool:
    """Whether the config is an mle-toolbox experiment (it has ``meta_job_args``)."""
    return "meta_job_args" in data


def translate_mle(data: Mapping[str, Any], cwd: Path) -> tuple[dict[str, Any], list[Note]]:
    """The native config of the mle-toolbox experiment ``data``, and one note per key."""
    t = _Translation(cwd)
    meta = t.section(data, "meta_job_args", META_KEYS)
    t.out.update(
        {
            "optimization_procedure_name": str(meta.get("project_name", "mle_toolbox")),
            "results_dir": str(meta.get("experiment_dir", "experiments")),
            "script_relative_path": WRAPPER,
            "run_in_working_dir": True,
        }
    )
    t.note("meta_job_args.experiment_dir", "-> results_dir (one directory per job inside)")
    script = t.path(meta, "base_train_fname")
    t.out["fixed_params"] = {"mle_toolbox": {"train_script": script}}
    job_type = t.job_type(meta)
    if job_type == "hyperparameter-search":
        t.out["fixed_params"]["mle_toolbox"]["base_config"] = t.path(meta, "base_train_config")
        t.search(t.section(data, "param_search_args", ()))
    elif job_type == "multiple-experiments":
        t.multiple(t.section(data, "multi_experiment_args", ("config_fnames", "num_seeds")))
    else:
        why = f"job_type {job_type!r} is not supported; hpoptim runs {' and '.join(JOB_TYPES)}"
        t.error("meta_job_args.job_type", why)
    t.single_job(t.section(data, "single_job_args", SINGLE_JOB_KEYS))
    for key in data:
        if key not in MLE_KEYS:
            t.out[key] = data[key]  # native keys beside the experiment's own
    return t.out, t.notes


class _Translation:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.out: dict[str, Any] = {}
        self.notes: list[Note] = []

    def note(self, path: str, message: str, target: str = "") -> None:
        self.notes.append(Note(path, "translated", message, target))

    def ignore(self, path: str, why: str) -> None:
        self.notes.append(Note(path, "ignored", f"ignored: {why}"))

    def error(self, path: str, message: str, valid: tuple[str, ...] | None = None) -> None:
        self.notes.append(Note(path, "error", message, valid_keys=valid))

    def put(self, path: str, target: str, value: Any, why: str = "") -> None:
        *parents, leaf = target.split(".")
        node = self.out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        self.note(path, f"-> {target}{why}", target)

    def section(self, data: Mapping[str, Any], name: str, valid: tuple[str, ...]) -> dict[str, Any]:
        value = data.get(name) or {}
        if not isinstance(value, Mapping):
            self.error(name, f"must be a mapping, got {value!r}")
            return {}
        for key in value:
            if valid and key not in valid:
                self.error(f"{name}.{key}", f"unknown {name} key{did_you_mean(key, valid)}", valid)
        return dict(value)

    def path(self, meta: Mapping[str, Any], key: str) -> str:
        value = meta.get(key)
        if not isinstance(value, str) or not value:
            self.error(f"meta_job_args.{key}", f"required: a file name, got {value!r}")
            return ""
        resolved = str((self.cwd / value).resolve())
        target = f"fixed_params.mle_toolbox.{_WRAPPER_KEYS[key]}"
        self.note(f"meta_job_args.{key}", f"-> {target} ({value!r} in {self.cwd})", target)
        return resolved

    def search(self, args: dict[str, Any]) -> None:
        flat = _flatten_search(args)
        for key in [k for k in flat if k not in SEARCH_KEYS]:
            why = f"unknown param_search_args key{did_you_mean(key, SEARCH_KEYS)}"
            self.error(f"param_search_args.{key}", why, SEARCH_KEYS)
        for key, why in SEARCH_DROPPED.items():
            if key in flat:
                self.note(f"param_search_args.{key}", f"dropped: {why}")
        search_type = flat.get("search_type", "random")
        optimizer = OPTIMIZERS.get(search_type)
        if optimizer is None:
            valid = ", ".join(OPTIMIZERS)
            self.error("param_search_args.search_type", f"{search_type!r} is not one of {valid}")
            return
        self.put("param_search_args.search_type", "optimizer_str", optimizer[0], optimizer[1])
        space = flat.get("search_params", flat.get("params_to_search"))
        self.out["optimized_params"] = search_space(space, search_type, self.notes)
        self.note("param_search_args.search_params", "-> optimized_params (train_config.<name>)")
        self.objective(flat)
        self.budget(flat)

    def objective(self, flat: Mapping[str, Any]) -> None:
        metrics = flat.get("eval_metrics", flat.get("eval_score_type"))
        if isinstance(metrics, list):
            metrics = metrics[0] if metrics else None
        if not isinstance(metrics, str):
            self.error(
                "param_search_args.eval_metrics", f"a metric name is required, got {metrics!r}"
            )
        else:
            self.put("param_search_args.eval_metrics", "metric_to_optimize", metrics)
        maximize = flat.get("max_objective", flat.get("maximize_objective", False))
        self.put("param_search_args.max_objective", "minimize", not bool(maximize))

    def budget(self, flat: Mapping[str, Any]) -> None:
        """Older ``num_search_batches`` x ``num_iter_per_batch`` (or ``num_evals_per_batch``)
        with ``num_evals_per_iter``; newer ``num_total_evals``, ``max_running_jobs``,
        ``num_seeds_per_eval``."""
        n = {}
        for key in BUDGET_KEYS:
            value = flat.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                self.error(
                    f"param_search_args.{key}", f"must be a whole number >= 1, got {value!r}"
                )
                return
            n[key] = value
        per_batch_key = "num_iter_per_batch" if n["num_iter_per_batch"] else "num_evals_per_batch"
        per_batch = n[per_batch_key]
        if n["num_total_evals"]:
            self.put("param_search_args.num_total_evals", "number_of_samples", n["num_total_evals"])
        else:
            total = (n["num_search_batches"] or 1) * (per_batch or 1)
            why = f" (num_search_batches x {per_batch_key})"
            self.put("param_search_args.num_search_batches", "number_of_samples", total, why)
        if n["max_running_jobs"]:
            self.put(
                "param_search_args.max_running_jobs", "n_jobs_per_iteration", n["max_running_jobs"]
            )
        else:
            in_flight = per_batch or self.out["number_of_samples"]
            self.put(f"param_search_args.{per_batch_key}", "n_jobs_per_iteration", in_flight)
        seeds_key = "num_seeds_per_eval" if n["num_seeds_per_eval"] else "num_evals_per_iter"
        why = " (the score is the mean over the evaluations)"
        self.put(f"param_search_args.{seeds_key}", "n_reruns", n[seeds_key] or 1, why)
        if flat.get("random_seeds") is not None:
            self.ignore(
                "param_search_args.random_seeds", "each evaluation's seed comes from the run's seed"
            )
        if flat.get("aggregate_seeds", "mean") != "mean":
            self.ignore(
                "param_search_args.aggregate_seeds", "the score is the mean over the evaluations"
            )

    def job_type(self, meta: Mapping[str, Any]) -> Any:
        """``job_type`` (older) or ``experiment_type`` (newer); notes on the other meta keys."""
        if "report_generation" in meta:
            self.note(
                "meta_job_args.report_generation",
                "dropped: hpoptim writes report.md when the run ends",
            )
        if "remote_exec_dir" in meta:
            self.ignore(
                "meta_job_args.remote_exec_dir", "jobs run in the directory hpoptim is started in"
            )
        key = "experiment_type" if "experiment_type" in meta else "job_type"
        return meta.get(key)

    def multiple(self, args: Mapping[str, Any]) -> None:
        names = args.get("config_fnames")
        seeds = args.get("num_seeds", 1)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.error(
                "multi_experiment_args.config_fnames",
                f"must be a list of file names, got {names!r}",
            )
            return
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            self.error(
                "multi_experiment_args.num_seeds", f"must be a whole number >= 1, got {seeds!r}"
            )
            return
        files = [str((self.cwd / n).resolve()) for n in names]
        self.out["optimized_params"] = [
            {"param": "mle_toolbox.base_config", "distribution": "Discrete", "options": files},
            {
                "param": "mle_toolbox.seed_id",
                "distribution": "Discrete",
                "options": list(range(seeds)),
            },
        ]
        self.note(
            "multi_experiment_args",
            "-> optimized_params (a grid over config_fnames x seeds)",
            "optimized_params",
        )
        self.out.update(
            {
                "optimizer_str": "gridsearch",
                "number_of_samples": len(files) * seeds,
                "n_jobs_per_iteration": len(files) * seeds,
                "metric_to_optimize": None,
            }
        )
        self.note(
            "multi_experiment_args", "every metric the jobs report is collected; no setting is best"
        )

    def single_job(self, args: Mapping[str, Any]) -> None:
        for key, why in SINGLE_JOB_DROPPED.items():
            if key in args:
                self.note(f"single_job_args.{key}", f"dropped: {why}")
        if "num_logical_cores" in args:
            self.put(
                "single_job_args.num_logical_cores",
                "resources.n_cpus_per_job",
                args["num_logical_cores"],
            )
        if "num_gpus" in args:
            self.put("single_job_args.num_gpus", "resources.n_gpus_per_job", args["num_gpus"])
        if "time_per_job" in args:
            minutes = slurm_minutes(args["time_per_job"])
            if minutes is None:
                self.error(
                    "single_job_args.time_per_job",
                    f"not a time (hh:mm:ss), got {args['time_per_job']!r}",
                )
            else:
                self.put("single_job_args.time_per_job", "resources.time_limit_min", minutes)
        if "memory_per_job" in args:
            mb = args["memory_per_job"]
            if isinstance(mb, bool) or not isinstance(mb, (int, float)):
                self.error("single_job_args.memory_per_job", f"must be a number of MB, got {mb!r}")
            else:
                self.put(
                    "single_job_args.memory_per_job", "resources.mem_gb", mb / 1024, f" ({mb} MB)"
                )
        if "extra_cmd_line_input" in args:
            why = "extra script arguments are not supported; put the values in the base config"
            self.error("single_job_args.extra_cmd_line_input", why)
        if args.get("exclude_nodes"):
            nodes = ",".join(map(str, args["exclude_nodes"]))
            self.put(
                "single_job_args.exclude_nodes",
                "slurm.extra_sbatch_options",
                [f"--exclude={nodes}"],
            )


def _flatten_search(args: Mapping[str, Any]) -> dict[str, Any]:
    """param_search_args of both layouts as one flat mapping."""
    flat = {
        k: v
        for k, v in args.items()
        if k not in ("search_logging", "search_resources", "search_config")
    }
    for part in ("search_logging", "search_resources", "search_config"):
        if isinstance(args.get(part), Mapping):
            flat.update(args[part])
    return flat
