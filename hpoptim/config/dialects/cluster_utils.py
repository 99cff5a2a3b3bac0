"""cluster_utils' config keys (2.x, 3.0; hp_optimization and grid_search) -> native keys.

The meaning of each key is cluster_utils' (its docs/configuration.rst and
server/job.py, server/slurm_cluster_system.py): see :class:`Translation`.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from hpoptim.config.dialects.notes import Note
from hpoptim.config.dialects.smart_settings import evaluate_expressions
from hpoptim.space import did_you_mean

CLUSTER_UTILS_KEYS = frozenset(
    {
        "optimization_setting",
        "cluster_requirements",
        "environment_setup",
        "hyperparam_list",
        "num_best_jobs_whose_data_is_kept",
        "remove_jobs_dir",
        "remove_working_dirs",
        "generate_report",
        "no_user_interaction",
        "kill_bad_jobs_early",
        "early_killing_params",
        "restarts",
        "samples",
        "local_run",
        "load_existing_results",
    }
)
OPTIMIZATION_SETTING = (
    "metric_to_optimize",
    "minimize",
    "number_of_samples",
    "n_jobs_per_iteration",
    "n_completed_jobs_before_resubmit",
)
#: cluster_requirements keys only HTCondor reads, each a key of the ``htcondor`` section.
HTCONDOR_ONLY = (
    "bid",
    "cuda_requirement",
    "gpu_memory_mb",
    "concurrency_limit",
    "concurrency_limit_tag",
    "hostname_list",
)
#: cluster_requirements keys hpoptim has no use for on any launcher.
UNUSED = ("max_cpus",)
#: Where cluster_utils keys live, for overrides the file does not write yet.
KNOWN_SECTIONS = {
    "optimization_setting": (*OPTIMIZATION_SETTING, "run_local"),
    "environment_setup": (
        "virtual_env_path",
        "conda_env_path",
        "pre_job_script",
        "variables",
        "is_python_script",
        "run_as_module",
        "custom_python_executable_path",
    ),
    "cluster_requirements": (
        "request_cpus",
        "request_gpus",
        "memory_in_mb",
        "request_time",
        "partition",
        "forbidden_hostnames",
        "signal_seconds_to_timeout",
        "extra_submission_options",
        *HTCONDOR_ONLY,
        *UNUSED,
    ),
}


def cluster_launcher() -> str:
    """The launcher of ``run_local: false``: HTCondor where its submit command is on PATH
    (it wins when Slurm's sbatch is there too), Slurm otherwise."""
    if shutil.which("condor_submit") or shutil.which("condor_submit_bid"):
        return "htcondor"
    return "slurm"


def is_cluster_utils(data: Mapping[str, Any]) -> bool:
    """Whether the config uses a top-level key only cluster_utils has."""
    return any(key in data for key in CLUSTER_UTILS_KEYS)


def knows(path: tuple[str | int, ...]) -> bool:
    """Whether cluster_utils defines the key at ``path`` (for ``key=value`` overrides)."""
    if len(path) == 1:
        return path[0] in CLUSTER_UTILS_KEYS or path[0] in KNOWN_SECTIONS
    if len(path) == 2 and isinstance(path[0], str):
        return path[1] in KNOWN_SECTIONS.get(path[0], ())
    return False


class Translation:
    """One config's translation: each method handles a group of keys."""

    def __init__(self, out: dict[str, Any], notes: list[Note]) -> None:
        self.out, self.notes = out, notes

    def put(
        self,
        source: str,
        target: str,
        value: Any,
        why: str = "",
        kind: Literal["translated", "ignored"] = "translated",
    ) -> None:
        """Set native ``target`` (dotted) unless the file gives it with another value.

        ``kind="ignored"``: the value is kept at ``target`` but does nothing here, and
        ``why`` (the whole message) is the warning line that says so.
        """
        *parents, leaf = target.split(".")
        node = self.out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                self.notes.append(
                    Note(source, "error", f"-> {target}, but {part} is not a section")
                )
                return
        if leaf in node and node[leaf] != value:
            self.notes.append(
                Note(
                    source,
                    "error",
                    f"gives {value!r} but {target} is also set to {node[leaf]!r}; "
                    "keep one of the two",
                )
            )
            return
        node[leaf] = value
        message = f"ignored: {why}" if kind == "ignored" else f"-> {target}{why}"
        self.notes.append(Note(source, kind, message, target))

    def ignore(self, source: str, why: str) -> None:
        self.notes.append(Note(source, "ignored", f"ignored: {why}"))

    def section(self, name: str) -> dict[str, Any]:
        value = self.out.pop(name, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.notes.append(Note(name, "error", f"must be a mapping, got {value!r}"))
            return {}
        return dict(value)

    def optimization_setting(self) -> None:
        section = self.section("optimization_setting")
        for key in OPTIMIZATION_SETTING:
            if key in section:
                self.put(f"optimization_setting.{key}", key, section.pop(key))
        if "run_local" in section:
            launcher = "local" if section.pop("run_local") else cluster_launcher()
            if "launcher" in self.out and self.out["launcher"] != launcher:
                self.ignore(
                    "optimization_setting.run_local", f"launcher is {self.out['launcher']!r}"
                )
            else:
                self.put("optimization_setting.run_local", "launcher", launcher)
        self._unknown("optimization_setting", section)

    def environment_setup(self) -> None:
        section = self.section("environment_setup")
        variables = section.pop("variables", None)
        if isinstance(variables, Mapping):
            for key, value in variables.items():
                self.put(f"environment_setup.variables.{key}", f"environment.{key}", str(value))
        elif variables is not None:
            self.notes.append(
                Note(
                    "environment_setup.variables", "error", f"must be a mapping, got {variables!r}"
                )
            )
        command = _job_command(section, self)
        if command is not None:
            self.put("environment_setup", "interpreter", command[0], command[1])
        self._unknown("environment_setup", section)

    def cluster_requirements(self) -> None:
        section = self.section("cluster_requirements")
        simple = {"request_cpus": "n_cpus_per_job", "request_gpus": "n_gpus_per_job"}
        for key, target in simple.items():
            if key in section:
                self.put(f"cluster_requirements.{key}", f"resources.{target}", section.pop(key))
        if "memory_in_mb" in section:
            mb = section.pop("memory_in_mb")
            source = "cluster_requirements.memory_in_mb"
            if isinstance(mb, bool) or not isinstance(mb, (int, float)):
                self.notes.append(Note(source, "error", f"must be a number of MB, got {mb!r}"))
            else:
                why = f" ({mb} MB = {mb / 1024:g} GB: hpoptim gives memory in GB)"
                self.put(source, "resources.mem_gb", mb / 1024, why)
        if "request_time" in section:
            self._time(section.pop("request_time"))
        if "signal_seconds_to_timeout" in section:
            lead = section.pop("signal_seconds_to_timeout")
            self.put(
                "cluster_requirements.signal_seconds_to_timeout", "resources.signal_lead_s", lead
            )
            self.put(
                "cluster_requirements.signal_seconds_to_timeout",
                "resources.timeout_signal",
                "USR1",
                " (cluster_utils sends SIGUSR1)",
            )
        if "partition" in section:
            self.put("cluster_requirements.partition", "slurm.partition", section.pop("partition"))
        self._sbatch_options(section)
        for key in [k for k in HTCONDOR_ONLY if k in section]:
            self._htcondor(key, section.pop(key))
        for key in [k for k in UNUSED if k in section]:
            self.ignore(f"cluster_requirements.{key}", "hpoptim has no use for it")
            section.pop(key)
        self._unknown("cluster_requirements", section)

    def _htcondor(self, key: str, value: Any, why: str = "") -> None:
        """An HTCondor key -> the ``htcondor`` section (the local and Slurm launchers
        ignore it, apart from hostname_list, which Slurm refuses)."""
        source = f"cluster_requirements.{key}"
        if value is None:
            self.notes.append(Note(source, "translated", "dropped: not set"))
        else:
            self.put(source, f"htcondor.{key}", value, why)

    def _time(self, value: Any) -> None:
        minutes = slurm_minutes(value)
        source = "cluster_requirements.request_time"
        if minutes is None:
            self.notes.append(Note(source, "error", f"not a Slurm time limit: {value!r}"))
            return
        self.put(source, "resources.time_limit_min", minutes, f" ({value!r} = {minutes:g} min)")

    def _sbatch_options(self, section: dict[str, Any]) -> None:
        options: list[str] = []
        hosts = section.pop("forbidden_hostnames", None)
        if hosts:
            options.append(f"--exclude={','.join(map(str, hosts))}")
            self.notes.append(
                Note(
                    "cluster_requirements.forbidden_hostnames",
                    "translated",
                    "-> slurm.extra_sbatch_options --exclude",
                    "slurm.extra_sbatch_options",
                )
            )
            self._htcondor("forbidden_hostnames", [str(h) for h in hosts])
        extra = section.pop("extra_submission_options", None)
        if isinstance(extra, str):
            extra = shlex.split(extra)
        if isinstance(extra, Mapping):
            self._htcondor(
                "extra_submission_options",
                dict(extra),
                " (a mapping is HTCondor's submit-file form)",
            )
        elif extra:
            options += [str(o) for o in extra]
            self.notes.append(
                Note(
                    "cluster_requirements.extra_submission_options",
                    "translated",
                    "-> slurm.extra_sbatch_options",
                    "slurm.extra_sbatch_options",
                )
            )
        if options:
            slurm = self.out.setdefault("slurm", {})
            slurm["extra_sbatch_options"] = [*slurm.get("extra_sbatch_options", []), *options]

    def top_level(self) -> None:
        if "num_best_jobs_whose_data_is_kept" in self.out:
            value = self.out.pop("num_best_jobs_whose_data_is_kept")
            self.put("num_best_jobs_whose_data_is_kept", "n_best_jobs_to_keep", value)
        # key -> (values that need no feature hpoptim lacks, why it is ignored otherwise)
        behaviours: dict[str, tuple[tuple[Any, ...], str]] = {
            "remove_jobs_dir": ((True, False), "job logs live in the results directory"),
            "remove_working_dirs": ((False,), "hpoptim keeps every job's directory"),
            "generate_report": (
                ("never", "when_finished", "NEVER", "WHEN_FINISHED"),
                "hpoptim writes report.md when the run ends (and on `hpoptim report`)",
            ),
            "no_user_interaction": ((True, False), "hpoptim never asks questions"),
            "load_existing_results": ((False,), "use `hpoptim resume` to continue a run"),
        }
        for key, (harmless, why) in behaviours.items():
            if key not in self.out:
                continue
            value = self.out.pop(key)
            if value in harmless:
                self.notes.append(Note(key, "translated", f"dropped: {why}"))
            else:
                self.ignore(key, why)

    def grid_search(self) -> None:
        grid = self.out.pop("hyperparam_list", None)
        if grid is None:
            return
        entries = [e for i, item in enumerate(grid) if (e := self._grid_entry(i, item))]
        zipped = any(isinstance(e["param"], list) for e in entries)
        why = " (Discrete options; a list of params is zipped)" if zipped else " (Discrete options)"
        self.put("hyperparam_list", "optimized_params", entries, why)
        self.put("hyperparam_list", "optimizer_str", "gridsearch")
        size = 1
        for entry in entries:
            size *= max(1, len(entry["options"]))
        samples = self.out.pop("samples", None)
        if samples is not None:
            self.put(
                "samples",
                "number_of_samples",
                min(int(samples), size),
                " (a random subset of the grid)",
            )
            self.put("samples", "optimizer_settings.shuffle", True)
        else:
            self.out.setdefault("number_of_samples", size)
        self.out.setdefault("n_jobs_per_iteration", self.out["number_of_samples"])
        if "restarts" in self.out:
            self.put("restarts", "n_reruns", self.out.pop("restarts"))
        if "local_run" in self.out:
            self.put("local_run", "launcher", "local" if self.out.pop("local_run") else "slurm")
        if "metric_to_optimize" not in self.out:
            self.notes.append(
                Note(
                    "hyperparam_list",
                    "translated",
                    "a grid search without metric_to_optimize: every metric the jobs report "
                    "is collected, and no setting is best (`hpoptim report --metric NAME` "
                    "ranks by one afterwards)",
                )
            )

    def _grid_entry(self, i: int, item: Any) -> dict[str, Any] | None:
        """One ``hyperparam_list`` entry as a Discrete entry (zipped if ``param`` is a list)."""
        where = f"hyperparam_list[{i}]"
        param = item.get("param") if isinstance(item, Mapping) else None
        values = item.get("values") if isinstance(item, Mapping) else None
        names: list[str] | None = None
        if isinstance(param, list) and param and all(isinstance(p, str) for p in param):
            names = param
        if not isinstance(param, str) and names is None:
            why = f"param must be a parameter name or a list of names, got {param!r}"
            self.notes.append(Note(f"{where}.param", "error", why))
            return None
        if not isinstance(values, list):
            why = (
                f"values must be a list, got {values!r} (smart_settings expressions "
                "'{...}' are not evaluated)"
            )
            self.notes.append(Note(f"{where}.values", "error", why))
            return None
        if names is not None:
            arity = len(names)
            bad = [j for j, v in enumerate(values) if not isinstance(v, list) or len(v) != arity]
            for j in bad:
                why = (
                    f"a zipped entry needs {arity} values per element, one for each of "
                    f"{', '.join(names)}; got {values[j]!r}"
                )
                self.notes.append(Note(f"{where}.values[{j}]", "error", why))
            if bad:
                return None
        return {"param": param, "distribution": "Discrete", "options": list(values)}

    def singularity(self) -> None:
        section = self.out.get("singularity")
        if not isinstance(section, dict) or "args" not in section:
            return
        args = section.pop("args")
        section["options"] = [*section.get("options", []), *args]
        self.notes.append(
            Note("singularity.args", "translated", "-> singularity.options", "singularity.options")
        )

    def git_params(self, cwd: Path) -> None:
        git = self.out.get("git_params")
        if not isinstance(git, dict):
            return
        if self.out.get("run_in_working_dir") is True:  # cluster_utils then ignores them
            self.out.pop("git_params")
            self.notes.append(Note("git_params", "translated", "dropped: run_in_working_dir"))
            return
        if git.pop("remove_local_copy", None) is not None:
            self.ignore(
                "git_params.remove_local_copy",
                "hpoptim keeps its checkout in the results directory",
            )
        for key in [k for k, v in git.items() if v is None and k in ("branch", "commit", "tag")]:
            git.pop(key)
        if not git.get("url"):
            root = repository_root(cwd)
            if root is None:
                self.notes.append(
                    Note(
                        "git_params.url",
                        "error",
                        f"not given and {cwd} is not inside a git repository",
                    )
                )
                return
            self.put(
                "git_params.url",
                "git_params.url",
                str(root),
                " (the repository containing the current directory, used as is, so "
                "unpushed commits work)",
            )

    def dynamic_references(self, config: Mapping[str, Any]) -> None:
        """smart_settings' ``"{...}"`` expressions, evaluated over ``config`` (the file as
        read), as when cluster_utils loads it (see :func:`evaluate_expressions`)."""
        self.notes += evaluate_expressions(self.out, config)

    def _unknown(self, section: str, rest: Mapping[str, Any]) -> None:
        valid = KNOWN_SECTIONS[section]
        for key in rest:
            hint = did_you_mean(str(key), valid)
            self.notes.append(
                Note(
                    f"{section}.{key}",
                    "error",
                    f"unknown cluster_utils {section} key{hint}",
                    valid_keys=tuple(valid),
                )
            )

    def resembling(self, is_native: Callable[[str], bool]) -> None:
        """Top-level keys in neither dialect that look like a cluster_utils key."""
        for key in [k for k in self.out if not is_native(k) and k not in CLUSTER_UTILS_KEYS]:
            hint = did_you_mean(str(key), sorted(CLUSTER_UTILS_KEYS))
            if hint:
                self.out.pop(key)
                self.notes.append(Note(key, "error", f"unknown key (cluster_utils config){hint}"))


#: The keys of ``early_killing_params`` (both also keys of the ``rank`` method).
_EARLY_KILLING_KEYS = ("target_rank", "how_many_stds")


def early_killing(data: Mapping[str, Any], out: dict[str, Any], notes: list[Note]) -> None:
    """``kill_bad_jobs_early`` + ``early_killing_params`` -> ``early_stopping`` method ``rank``.

    cluster_utils ranks a running job's reported values against completed jobs'
    curves (:class:`hpoptim.run.early_stopping.RankRule` is the same rule); hpoptim's
    values are those of chained training iterations, so it needs training_iterations > 1
    (read after the lifecycle keys are translated).
    """
    kill = out.pop("kill_bad_jobs_early", None)
    params = out.pop("early_killing_params", None)
    if kill is None and params is None:
        return
    if not kill:
        for key in ("kill_bad_jobs_early", "early_killing_params"):
            if key in data:
                notes.append(Note(key, "translated", "dropped: no job is stopped early"))
        return
    iterations = out.get("training_iterations", 1)
    if not isinstance(iterations, int) or iterations <= 1:
        why = "hpoptim stops settings early between chained training iterations only; set "
        notes.append(Note("kill_bad_jobs_early", "ignored", f"ignored: {why}training_iterations"))
        return
    section: dict[str, Any] = {"method": "rank"}
    if isinstance(params, Mapping):
        for key, value in params.items():
            if key in _EARLY_KILLING_KEYS:
                section[key] = value
            else:
                hint = did_you_mean(str(key), _EARLY_KILLING_KEYS)
                notes.append(Note(f"early_killing_params.{key}", "error", f"unknown key{hint}"))
    elif params is not None:
        notes.append(Note("early_killing_params", "error", f"must be a mapping, got {params!r}"))
    if "early_stopping" in out:
        why = "gives method 'rank' but early_stopping is also set; keep one of the two"
        notes.append(Note("kill_bad_jobs_early", "error", why))
        return
    out["early_stopping"] = section
    notes.append(
        Note(
            "kill_bad_jobs_early",
            "translated",
            "-> early_stopping (method 'rank', with early_killing_params): judged after "
            "each chained training iteration",
            "early_stopping",
        )
    )


def _job_command(section: dict[str, Any], t: Translation) -> tuple[list[str], str] | None:
    """``environment_setup`` as an interpreter command: venv/conda, pre-job script, python."""
    venv = section.pop("virtual_env_path", None)
    conda = section.pop("conda_env_path", None)
    pre = section.pop("pre_job_script", None)
    python = section.pop("custom_python_executable_path", None)
    is_python = section.pop("is_python_script", True)
    if section.pop("run_as_module", False):
        t.notes.append(
            Note(
                "environment_setup.run_as_module",
                "error",
                "running the script as a module (python -m) is not supported; point "
                "script_relative_path at the file",
            )
        )
    if not (venv or conda or pre or python or not is_python):
        return None
    steps = []
    if venv:
        steps.append(f". {shlex.quote(str(Path(venv).expanduser() / 'bin' / 'activate'))}")
    if conda:
        steps.append(f'export PATH={shlex.quote(str(Path(conda).expanduser() / "bin"))}:"$PATH"')
    if pre:
        steps.append(f"./{shlex.quote(str(pre))} || exit $?")
    runner = f'exec {shlex.quote(str(python or "python3"))} "$@"' if is_python else 'exec "$@"'
    if not steps:
        return [str(python)] if is_python else [], ""
    script = "; ".join([*steps, runner])
    return [
        "/bin/sh",
        "-c",
        script,
        "job",
    ], " (the job runs `sh -c` with these steps, as cluster_utils' job script did)"


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def slurm_minutes(value: Any) -> float | None:
    """Minutes of a Slurm time limit ("minutes", "m:s", "h:m:s", "d-h", "d-h:m", "d-h:m:s")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _TIME.match(str(value).strip())
    if match is None:
        return None
    days, a, b, c = match.groups()
    if days is not None:  # d-h[:m[:s]]
        parts = [int(days) * 24 + int(a), int(b or 0), int(c or 0)]
        return parts[0] * 60 + parts[1] + parts[2] / 60
    if c is not None:  # h:m:s
        return int(a) * 60 + int(b) + int(c) / 60
    if b is not None:  # m:s
        return int(a) + int(b) / 60
    return float(a)


def repository_root(start: Path) -> Path | None:
    """The git work tree containing ``start`` (a ``.git`` entry in it or a parent)."""
    for candidate in (start.resolve(), *start.resolve().parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def misplaced_memory(out: dict[str, Any], notes: list[Note]) -> None:
    """``memory_in_mb`` outside ``cluster_requirements``: name hpoptim's key and its unit."""
    for section in ("", "slurm", "resources"):
        node = out.get(section) if section else out
        if not isinstance(node, dict) or "memory_in_mb" not in node:
            continue
        mb = node.pop("memory_in_mb")
        target = f"{section}.mem_gb" if section else "resources.mem_gb"
        gb = f"{mb / 1024:g}" if isinstance(mb, (int, float)) else "MB / 1024"
        where = f"{section}.memory_in_mb" if section else "memory_in_mb"
        notes.append(
            Note(
                where,
                "error",
                "memory_in_mb is cluster_utils' key, in MB (under cluster_requirements); "
                f"hpoptim's is {target}, in GB: {target.rsplit('.', 1)[1]}: {gb}",
            )
        )
