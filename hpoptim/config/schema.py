"""The run configuration: typed, frozen sections with their keys, defaults and rules.

Every key is declared once, here or next to the code that uses it (each launcher's
section is the launcher's ``settings_model``), as a pydantic model field with its
type, default, bounds, one-line doc and rule. :func:`build` checks a plain dict and
collects every problem at once, each naming its dotted key path (``slurm.poll_interval_s``,
``optimized_params[2].bounds``), the rule and the offending value; unknown keys get a
"did you mean" and the list of valid keys. The launcher sections are looked up in the
launcher registry by name, so a new launcher adds its section without a change here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
)

from hpoptim.config.stopping import (
    EarlyStopping,
    EarlyStoppingSection,
    NoStopping,
    stopping_problems,
)
from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.jobspec import ContainerOptions, EnvVars, JobResources
from hpoptim.messages import did_you_mean, json_problem, show
from hpoptim.sections import AbsolutePath, Section, Strings, cross_rule, knows, rule_error
from hpoptim.source.git_source import GitSource
from hpoptim.space import SearchSpace, entry_names, flatten, nest
from hpoptim.stopping import settings_models as stopping_models

__all__ = [
    "SYNONYMS",
    "EarlyStopping",
    "GitParams",
    "JobResources",
    "RunConfig",
    "SingularityConfig",
    "build",
    "run_config_model",
    "schema_knows",
    "sections",
]

#: The ``git_params`` section (declared next to the checkout code that uses it).
GitParams = GitSource

#: Names used by cluster_utils (and likely slips) -> the key meant here; for "did you mean".
SYNONYMS: dict[str, str] = {
    "num_best_jobs_whose_data_is_kept": "n_best_jobs_to_keep",
    "cluster_requirements": "resources",
    "environment_setup": "environment",
    "run_local": "launcher",
    "num_samples": "number_of_samples",
    "n_samples": "number_of_samples",
    "num_jobs_per_iteration": "n_jobs_per_iteration",
    "num_reruns": "n_reruns",
    "learning_runs_per_job": "n_reruns",
    "restarts": "n_reruns",
    "args": "options",
    **{old: f"resources.{new}" for old, new in JobResources.synonyms.items()},
}

# ---------------------------------------------------------------- field rules


def _directory_name(value: str) -> str:
    if value in ("", ".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise rule_error(
            f"must be usable as one directory name (no '/', not '.' or '..'), got {value!r}"
        )
    return value


def _existing_image(value: Path) -> Path:
    if not value.exists():
        raise rule_error(f"image file {str(value)!r} does not exist")
    return value


def _json_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    if json_problem(value):
        raise rule_error(f"must be a mapping, got {show(value)}")
    return value


def _nested_params(value: Mapping[str, Any]) -> dict[str, Any]:
    _json_mapping(value)
    flat = flatten(value)
    bad = [
        ConfigProblem(key, "must be a dotted name without empty parts (such as 'model.lr')")
        for key in flat
        if "" in key.split(".")
    ]
    if bad:
        raise rule_error(problems=bad)
    try:
        return nest(flat)
    except ConfigError as exc:
        raise rule_error(problems=exc.problems) from None


def _search_space(value: tuple[Any, ...]) -> tuple[dict[str, Any], ...]:
    if not value:
        raise rule_error("must be a non-empty list, got []")
    if not all(isinstance(v, Mapping) and all(isinstance(k, str) for k in v) for v in value):
        raise rule_error(f"must be a list of mappings, got {show(value)}")
    try:
        SearchSpace.from_config(value, path="optimized_params")
    except ConfigError as exc:
        relative = [p.at(p.path.removeprefix("optimized_params")) for p in exc.problems]
        raise rule_error(problems=relative) from None
    return tuple(copy.deepcopy(dict(v)) for v in value)


def _list_of_entries(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(value)
    raise rule_error(f"must be a list of mappings, got {show(value)}")


# ------------------------------------------------------------------- sections


class _Section(Section):
    synonyms: ClassVar[Mapping[str, str]] = SYNONYMS


class SingularityConfig(ContainerOptions):
    """Run every job inside a Singularity/Apptainer image (``singularity``).

    The container options jobs are wrapped with, checked when the config is read:
    the image must exist.
    """

    synonyms: ClassVar[Mapping[str, str]] = SYNONYMS

    @field_validator("image")
    @classmethod
    def _image_exists(cls, value: Path) -> Path:
        return _existing_image(value)


def _checkout_problems(in_wd: bool, git: Any) -> list[ConfigProblem]:
    """``git_params`` is needed unless the script runs from the working dir, and only then."""
    if not in_wd and git is None:
        return [
            ConfigProblem(
                "git_params",
                "required when run_in_working_dir is false: give the repository to check "
                "out, or set run_in_working_dir: true",
            )
        ]
    if in_wd and git is not None:
        return [
            ConfigProblem(
                "git_params",
                "must be null when run_in_working_dir is true (the script runs from the "
                "current directory); remove one of the two",
            )
        ]
    return []


def _overlap_problems(fixed: Mapping[str, Any], entries: tuple[Any, ...]) -> list[ConfigProblem]:
    """A fixed parameter must not be, contain or sit inside an optimised one."""
    names = [name for entry in entries for name in entry_names(entry)]
    problems = []
    for key in flatten(fixed):
        for name in names:
            if key == name or key.startswith(f"{name}.") or name.startswith(f"{key}."):
                problems.append(
                    ConfigProblem(
                        f"fixed_params.{key}",
                        f"overlaps the optimised parameter {name!r}; give each "
                        "parameter in one place",
                    )
                )
    return problems


def _stopping_enabled(stopping: Any) -> bool:
    """Whether the section (or the mapping it is built from) stops settings early."""
    if isinstance(stopping, Mapping):
        return bool(stopping.get("method", "none") != "none")
    return bool(stopping.enabled)


def _launcher_name(value: str) -> str:
    from hpoptim.launchers import LAUNCHERS, available

    if value in LAUNCHERS:  # a built-in: the installed plug-ins are not read
        return value
    names = available()
    if value not in names:
        *first, last = (repr(n) for n in names)
        listed = f"{', '.join(first)} or {last}" if first else last
        raise rule_error(f"must be {listed}, got {value!r}" + did_you_mean(value, names))
    return value


class RunConfig(_Section):
    """A whole, validated run configuration (immutable).

    Build it with :func:`hpoptim.config.load_config` or
    :func:`hpoptim.config.load_config_dict`; :meth:`to_dict` gives the form saved
    as ``config.json``, which loads back equal. Each launcher's section (``local``,
    ``slurm``, ...) is a key named after the launcher, holding its ``settings_model``.
    """

    # Configs are validated by run_config_model()'s subclass: its validator is built
    # when that is first used, this one never.
    model_config = ConfigDict(**_Section.model_config, defer_build=True)

    optimization_procedure_name: Annotated[str, AfterValidator(_directory_name)] = Field(
        description="Name of the run; results go to results_dir/optimization_procedure_name.",
        json_schema_extra={"rule_doc": "one directory name"},
    )
    results_dir: AbsolutePath = Field(
        description="Results root; a relative path is relative to the current dir."
    )
    script_relative_path: str = Field(
        min_length=1,
        description="The job script, relative to the checkout root (or the working dir).",
    )
    run_in_working_dir: bool = Field(
        False, description="Run the script from the current dir instead of a git checkout."
    )
    git_params: GitParams | None = Field(
        None, description="Repository to check out; required unless run_in_working_dir is true."
    )
    fixed_params: Annotated[dict[str, Any], AfterValidator(_nested_params)] = Field(
        default_factory=dict,
        description="Parameters passed to every job; dotted keys and nested mappings, mixed.",
    )
    optimized_params: Annotated[
        tuple[Any, ...], BeforeValidator(_list_of_entries), AfterValidator(_search_space)
    ] = Field(
        description="The search space, one entry per parameter (see above).",
        json_schema_extra={"rule_doc": "non-empty"},
    )
    optimizer_str: str = Field(
        "tpe_cmaes",
        description="Sampler: tpe_cmaes, cem_metaoptimizer, tpe, cmaes, quasirandom, random "
        "or gridsearch.",
    )
    optimizer_settings: Annotated[dict[str, Any], AfterValidator(_json_mapping)] = Field(
        default_factory=dict, description="The sampler's settings."
    )
    number_of_samples: int = Field(ge=1, description="Settings to evaluate in total.")
    n_jobs_per_iteration: int = Field(ge=1, description="Settings in flight at once.")
    n_completed_jobs_before_resubmit: int = Field(
        1, ge=1, description="Settings to finish before new ones are sampled."
    )
    metric_to_optimize: str | None = Field(
        None,
        min_length=1,
        description="Key of metrics.json to optimise; null: none, every metric reported is "
        "collected and no setting is best (gridsearch, random and quasirandom only).",
    )
    minimize: bool | None = Field(
        None,
        description="Minimise (true) or maximise (false) the metric; required with "
        "metric_to_optimize.",
    )
    n_best_jobs_to_keep: int = Field(
        3, ge=0, description="Best settings whose job dirs are copied to best_jobs/."
    )
    seed: int | None = Field(
        None, ge=0, description="Seed of the sampler and jobs; null: random (recorded)."
    )
    deterministic_order: bool | None = Field(
        None,
        description="Tell the sampler results in ask order, so a seeded run repeats whatever "
        "order jobs finish in; null: true when seed is set.",
    )
    n_reruns: int = Field(
        1, ge=1, description="Runs per setting (different seeds); the metric is their mean."
    )
    max_attempts: int = Field(3, ge=1, description="Tries per run before it counts as failed.")
    training_iterations: int = Field(
        1, ge=1, description="Chained processes per run (exit code 3 continues)."
    )
    early_stopping: EarlyStoppingSection = Field(
        default_factory=NoStopping,
        description="Stop settings between chained training iterations (see below).",
    )
    max_failed_fraction: float = Field(
        0.5, ge=0, le=1, description="Stop the run when more settings than this fraction failed."
    )
    n_settings_before_failure_check: int = Field(
        5, ge=1, description="Finished settings before max_failed_fraction applies."
    )
    interpreter: Strings | None = Field(
        None,
        min_length=1,
        description="Command that runs the script, e.g. ['python3', '-u']; null: by extension.",
    )
    environment: EnvVars = Field(
        default_factory=dict, description="Environment variables for every job."
    )
    resources: JobResources = Field(
        default_factory=JobResources,
        description="CPUs, GPUs, memory and time limit of every job, on any launcher.",
    )
    launcher: Annotated[str, AfterValidator(_launcher_name)] = Field(
        "local",
        description="Where jobs run: the name of a registered launcher, whose section "
        "(below) holds its settings.",
        json_schema_extra={"rule_doc": "a registered launcher"},
    )
    singularity: SingularityConfig | None = Field(
        None, description="Run jobs in a container image."
    )

    @cross_rule("run_in_working_dir", "git_params")
    def _checkout(self) -> RunConfig:
        if problems := _checkout_problems(self.run_in_working_dir, self.git_params):
            raise rule_error(problems=problems)
        return self

    @cross_rule("fixed_params", "optimized_params")
    def _no_overlap(self) -> RunConfig:
        if problems := _overlap_problems(self.fixed_params, tuple(self.optimized_params)):
            raise rule_error(problems=problems)
        return self

    @cross_rule("optimizer_str", "optimizer_settings", "optimized_params")
    def _sampler_accepts(self) -> RunConfig:
        from hpoptim.samplers import validate_optimizer

        space = self.search_space()
        if problems := validate_optimizer(self.optimizer_str, self.optimizer_settings, space):
            raise rule_error(problems=problems)
        return self

    @cross_rule("optimizer_str", "metric_to_optimize")
    def _metric_needed(self) -> RunConfig:
        from hpoptim.samplers import metric_problems

        if problems := metric_problems(self.optimizer_str, self.metric_to_optimize):
            raise rule_error(problems=problems)
        return self

    @cross_rule("metric_to_optimize", "minimize")
    def _direction_needed(self) -> RunConfig:
        if self.metric_to_optimize is not None and self.minimize is None:
            why = f"required with metric_to_optimize ({self.metric_to_optimize!r}): true or false"
            raise rule_error(problems=[ConfigProblem("minimize", why)])
        return self

    @cross_rule("metric_to_optimize", "early_stopping")
    def _stopping_needs_metric(self) -> RunConfig:
        if self.metric_to_optimize is None and _stopping_enabled(self.early_stopping):
            why = (
                "needs metric_to_optimize: the rule judges its values; set "
                "metric_to_optimize or method: none"
            )
            raise rule_error(problems=[ConfigProblem("early_stopping.method", why)])
        return self

    @cross_rule("early_stopping", "training_iterations")
    def _stopping_needs_iterations(self) -> RunConfig:
        if problems := stopping_problems(self.early_stopping, self.training_iterations):
            raise rule_error(problems=problems)
        return self

    @cross_rule("launcher", "htcondor")
    def _any_one_host(self) -> RunConfig:
        section = getattr(self, "htcondor", None)  # as given, when other keys are invalid
        if isinstance(section, Mapping):
            hosts = section.get("hostname_list") or ()
        else:
            hosts = getattr(section, "hostname_list", ())
        if self.launcher != "slurm" or not hosts:
            return self
        problem = ConfigProblem(
            "htcondor.hostname_list",
            f"asks for any one of the hosts {list(hosts)}, which Slurm cannot do "
            "(--nodelist asks for all of them at once); on Slurm leave it empty and keep "
            "jobs off other hosts with slurm.extra_sbatch_options ['--exclude=...'], or "
            "run with --launcher htcondor",
        )
        raise rule_error(problems=[problem])

    @property
    def lower_is_better(self) -> bool:
        """``minimize``, true when no metric is named (nothing is ranked then)."""
        return self.minimize is not False

    def launcher_settings(self) -> Section:
        """The section of :attr:`launcher` (an instance of its ``settings_model``)."""
        settings: Section = getattr(self, self.launcher)
        return settings

    @property
    def notes(self) -> tuple[str, ...]:
        """What loading changed on the way (old key names translated), one line each."""
        notes: tuple[str, ...] = self.__dict__.get("_notes", ())
        return notes

    def search_space(self) -> SearchSpace:
        """The search space of ``optimized_params`` (built once, then cached)."""
        space: SearchSpace | None = self.__dict__.get("_space")
        if space is None:
            space = SearchSpace.from_config(self.optimized_params, path="optimized_params")
            object.__setattr__(self, "_space", space)
        return space


@cache
def _model_for(launchers: tuple[tuple[str, type[Section]], ...]) -> type[RunConfig]:
    fields: dict[str, Any] = {
        name: (
            model,
            Field(
                default_factory=model,
                description=f"Settings of the {name} launcher.",
            ),
        )
        for name, model in launchers
    }
    built: type[RunConfig] = create_model(
        "RunConfig", __base__=RunConfig, __module__=__name__, **fields
    )
    return built


def run_config_model(*, plugins: bool = True) -> type[RunConfig]:
    """:class:`RunConfig` with a section per registered launcher (``local``, ``slurm``, ...);
    without ``plugins``, only the built-in launchers' (the installed packages are not read).
    """
    from hpoptim.launchers import settings_models

    launchers = tuple(settings_models(plugins=plugins).items())
    if taken := [name for name, _ in launchers if name in RunConfig.model_fields]:
        # a launcher's section would silently replace a key of the run config
        raise ConfigError.single(
            "launcher",
            f"launcher(s) {', '.join(map(repr, taken))} are named like a key of the run "
            "config; a launcher's name is its section's key, so it needs a name of its own",
        )
    return _model_for(launchers)


def _names_no_plugin(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` names only built-in launchers (the launcher, and sections)."""
    from hpoptim.launchers import LAUNCHERS

    known = {*RunConfig.model_fields, *LAUNCHERS}
    return data.get("launcher", "local") in LAUNCHERS and all(key in known for key in data)


def sections() -> tuple[tuple[str, type[Section]], ...]:
    """Each section key with its class, in the order of the reference ("" is the top level)."""
    from hpoptim.launchers import settings_models

    return (
        ("", run_config_model()),
        ("git_params", GitParams),
        ("resources", JobResources),
        ("early_stopping", EarlyStopping),
        *(("early_stopping", m) for m in stopping_models().values() if len(m.model_fields) > 1),
        *settings_models().items(),
        ("singularity", SingularityConfig),
    )


def build(data: Mapping[str, Any]) -> tuple[RunConfig | None, list[ConfigProblem]]:
    """Check a config dict against the run config model.

    Returns:
        The config (None if any problem was found) and every problem found.
    """
    return run_config_model(plugins=not _names_no_plugin(data)).validate_dict(data)


def schema_knows(path: tuple[str | int, ...]) -> bool:
    """Whether the config defines the key at ``path`` (e.g. ``("slurm", "partition")``);
    under ``early_stopping``, a key of any method."""
    if len(path) == 2 and path[0] == "early_stopping":
        return any(path[1] in m.model_fields for m in stopping_models(plugins=False).values())
    return knows(run_config_model(plugins=False), path) or knows(run_config_model(), path)
