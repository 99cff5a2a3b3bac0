"""Run configuration: file -> dict -> overrides applied -> one typed validation.

:func:`load_config` reads a JSON, YAML or TOML file, applies ``key=value``
overrides and validates everything at once, raising one
:class:`~hpoptim.errors.ConfigError` that lists every problem with its dotted key
path. :func:`load_config_dict` validates an already-parsed dict (``hpoptim
resume`` reloads the saved ``config.json`` with it). Keys of earlier versions are
read as their new names (:mod:`hpoptim.config.renames`), each with a note in
``RunConfig.notes``. :func:`reference_markdown` renders the key reference kept in the
README; :func:`json_schema` the JSON Schema ``hpoptim schema`` prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpoptim.config.dialects import Note, knows, resolve_imports, translate
from hpoptim.config.files import SUFFIXES, check_depth, read_config_file
from hpoptim.config.overrides import apply_overrides, parse_overrides
from hpoptim.config.renames import RENAMES, translate_old_keys
from hpoptim.config.schema import (
    EarlyStopping,
    GitParams,
    JobResources,
    RunConfig,
    SingularityConfig,
    build,
    run_config_model,
    schema_knows,
    sections,
)
from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.sections import reference_rows
from hpoptim.space.distributions import DISTRIBUTIONS

__all__ = [
    "Check",
    "EarlyStopping",
    "GitParams",
    "JobResources",
    "RunConfig",
    "SingularityConfig",
    "json_schema",
    "load_config",
    "load_config_dict",
    "reference_markdown",
    "translate_dialect",
]

_log = logging.getLogger(__name__)

Check = Callable[[RunConfig], "list[ConfigProblem]"]
"""Extra checks run on a schema-valid config; their problems join the schema's."""


def load_config(path: Path, overrides: Sequence[str], check: Check | None = None) -> RunConfig:
    """Read a config file, apply overrides, and validate the result.

    Args:
        path: A ``.json``, ``.yaml``, ``.yml`` or ``.toml`` file whose top level is a
            mapping.
        overrides: ``key=value`` (change), ``+key=value`` (add) and ``~key`` (delete)
            strings, applied in order; values are Python literals.
        check: Further checks, run only when the schema is satisfied.

    Returns:
        The validated, immutable config.

    Raises:
        ConfigError: The file cannot be read or parsed, or the config is invalid;
            lists every problem, one per line, each naming its key path.
        OverrideError: An override cannot be parsed or applied.
    """
    return load_config_data(read_file_with_imports(path), overrides, check, source=path)


def load_config_data(
    data: Mapping[str, Any],
    overrides: Sequence[str] = (),
    check: Check | None = None,
    source: Path | None = None,
) -> RunConfig:
    """Apply overrides to a config given as a dict (as read from a file, or built in
    code), translate its dialect, and validate it, as :func:`load_config` does.

    Raises:
        ConfigError: The config is invalid (every problem, each naming its key path).
        OverrideError: An override cannot be parsed or applied.
    """
    if not isinstance(data, Mapping):
        raise ConfigError.single(
            "", f"a config must be a mapping, got {type(data).__name__}", source
        )
    data = apply_overrides(dict(data), parse_overrides(overrides), _file_knows)
    check_depth(data, source)
    data, notes = translate_dialect(data)
    errors = [n.problem() for n in notes if n.kind == "error"]
    try:
        cfg = load_config_dict(data, check, source=source)
    except ConfigError as exc:
        raise ConfigError([*errors, *exc.problems], source) from None
    if errors:
        raise ConfigError(errors, source)
    return cfg


def read_file_with_imports(path: Path) -> dict[str, Any]:
    """A config file with cluster_utils' (smart_settings') ``__import__`` files merged in.

    Raises:
        ConfigError: The file or an imported one cannot be read.
    """
    try:
        return resolve_imports(read_config_file(path), path, read_config_file)
    except ValueError as exc:
        raise ConfigError.single("__import__", str(exc), path) from None


def translate_dialect(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[Note]]:
    """A cluster_utils/LTTFS config in native keys (see :mod:`hpoptim.config.dialects`).

    Each ignored key is logged as one warning line, the source of each lifecycle value
    (``fixed_params.learning_runs_per_job`` -> ``n_reruns``) at INFO level and other
    translations at DEBUG level; the notes are returned too (``hpoptim migrate``
    comments with them).
    """
    data, notes = translate(
        data,
        is_native=lambda key: schema_knows((key,)),
        cwd=Path.cwd(),
    )
    for note in notes:
        if note.kind == "ignored":
            _log.warning("%s", note)
        elif note.kind == "translated" and note.path.startswith("fixed_params."):
            _log.info("%s", note)  # where a lifecycle value came from
        elif note.kind == "translated":
            _log.debug("%s", note)
    return data, notes


def _file_knows(path: tuple[str | int, ...]) -> bool:
    """Overrides address keys as the file writes them: native (old names too) or cluster_utils."""
    return schema_knows(path) or tuple(path) in RENAMES or knows(path)


def load_config_dict(
    data: Mapping[str, Any], check: Check | None = None, source: Path | None = None
) -> RunConfig:
    """Validate a config given as a dict (e.g. a saved ``config.json``).

    Args:
        data: The config's top-level mapping (not modified).
        check: Further checks, run only when the schema is satisfied.
        source: The file the dict came from, named in the error.

    Returns:
        The validated, immutable config.

    Raises:
        ConfigError: Every problem found, the schema's and then ``check``'s.
    """
    if not isinstance(data, Mapping):
        raise ConfigError.single(
            "", f"a config must be a mapping, got {type(data).__name__}", source
        )
    check_depth(data, source)
    translated = translate_old_keys(data)
    cfg, problems = build(translated.data)
    problems = translated.problems + [_at_origin(p, translated.origins) for p in problems]
    if cfg is not None and not problems and check is not None:
        problems = list(check(cfg))
    if cfg is None or problems:
        raise ConfigError(problems, source)
    object.__setattr__(cfg, "_notes", tuple(translated.notes))
    return cfg


def _at_origin(problem: ConfigProblem, origins: Mapping[str, str]) -> ConfigProblem:
    """``problem`` at the old key its value was given under, if it was."""
    for new, old in origins.items():
        if problem.path == new or problem.path.startswith((f"{new}.", f"{new}[")):
            return problem.at(old + problem.path[len(new) :])
    return problem


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema (draft 2020-12), for editors that complete and check configs.

    Generated from the same models that validate a config; old key names are not in it.
    """
    from hpoptim.config.stopping import section_json_schema
    from hpoptim.launchers import available
    from hpoptim.samplers import available as samplers

    schema = run_config_model().model_json_schema(mode="validation")
    schema["properties"]["launcher"]["enum"] = available()
    schema["properties"]["optimizer_str"]["enum"] = samplers()
    stopping = section_json_schema()
    schema.setdefault("$defs", {}).update(stopping.pop("$defs", {}))
    schema["properties"]["early_stopping"] = {
        **stopping,
        "description": schema["properties"]["early_stopping"].get("description", ""),
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hpoptim run configuration"
    return schema


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


_INTRO = """\
Generated from the config models (`hpoptim/config/schema.py` and each launcher's
`settings_model`) by `hpoptim.config.reference_markdown()`; a test fails when this section
is out of date. `hpoptim schema` prints the same keys as a JSON Schema, for editors: save it
(`hpoptim schema > hpoptim.schema.json`) and start a YAML config with
`# yaml-language-server: $schema=hpoptim.schema.json` (VS Code YAML), or map it to your
config files in PyCharm's JSON Schema settings.

Config files may be JSON, YAML or TOML: {suffixes}.
Unknown keys are errors; `null` means "not set"; relative paths are relative to the current
directory and `~` is expanded. `hpoptim check` and `hpoptim run` report every problem at once,
one line each (a rule over several keys too, as long as those keys are valid), then one line
listing the valid keys of each section that has an unknown key.

Each entry of `optimized_params` is `{{param, distribution, bounds}}` or, for `Discrete`,
`{{param, distribution, options}}`. `param` is a dotted name (`model.lr`,
`config.net_arch:1`); `distribution` is one of:
{distributions}.

Keys of earlier versions still work and are read as their new names, with a note on
stderr: `job_timeout_min`, `signal_lead_s`, `timeout_signal`, `slurm.n_cpus_per_job`,
`slurm.n_gpus_per_job`, `slurm.mem_gb` and `slurm.time_limit_min` are now in `resources`.

Overrides on the command line address the same keys: `resources.mem_gb=16`,
`'+fixed_params.model.wd=0.01'`, `'~singularity'`. List elements are addressed by index,
`'optimized_params[0].bounds=[0, 2]'`, and `+optimized_params[N]={{...}}` with `N` the
list's length appends. A key of `fixed_params` matches whether the file wrote it flat
(`model.lr: 0.1`) or nested.
"""


def _method_of(cls: type) -> str:
    """The method of an ``early_stopping`` model of one method ("" for any other section)."""
    from hpoptim.stopping import StoppingSettings

    if not issubclass(cls, StoppingSettings) or cls is StoppingSettings:
        return ""
    return str(cls.model_fields["method"].default)


def _summary(name: str, cls: type) -> str:
    if not name:
        return "Keys at the top level of the config file."
    return (cls.__doc__ or "").strip().splitlines()[0].replace("``", "`")


def reference_markdown() -> str:
    """The configuration reference (every key: type, default, required, description).

    Returns:
        Markdown text, kept in the README after ``<!-- config-reference -->``.
    """
    parts = [
        _INTRO.format(
            suffixes=", ".join(f"`{s}`" for s in SUFFIXES),
            distributions=", ".join(f"`{d}`" for d in DISTRIBUTIONS),
        )
    ]
    for name, cls in sections():
        title = "Top level" if not name else f"`{name}`"
        method = _method_of(cls)
        title += f" with `method: {method}`" if method else ""
        parts.append(f"### {title}\n\n{_summary(name, cls)}\n")
        rows = [
            "| key | type | default | required | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key, kind, default, required, doc in reference_rows(cls):
            cells = (f"`{key}`", kind, f"`{default}`" if default != "—" else default, required, doc)
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)
