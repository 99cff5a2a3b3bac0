"""The ``early_stopping`` section: whether and how settings are stopped between iterations.

The section is a union discriminated by ``method``: each method is a rule of
:mod:`hpoptim.stopping` with its own settings model, and a key of another method is
refused at any value, naming the methods it applies to (:func:`hpoptim.stopping.settings_from`).
A config saved by an earlier version holds every method's keys at their values; such a
section loads with the keys of other methods left out when they hold their old defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import SerializeAsAny, ValidatorFunctionWrapHandler, WrapValidator

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.sections import rule_error
from hpoptim.stopping import NoStopping, StoppingSettings, settings_from

__all__ = [
    "EarlyStopping",
    "EarlyStoppingSection",
    "NoStopping",
    "early_stopping_settings",
    "stopping_problems",
]

#: The type of every method's settings (``method``, ``enabled``); the run config holds one.
EarlyStopping = StoppingSettings

#: Keys of the single section earlier versions had, with its defaults (see the docstring).
_EARLIER_DEFAULTS: Mapping[str, Any] = {
    "min_iterations": 1,
    "reduction_factor": 3,
    "min_early_stopping_rate": 0,
    "n_startup_settings": 5,
    "percentile": 50.0,
    "lower": None,
    "upper": None,
    "target_rank": 5,
    "how_many_stds": 3.0,
}


def _as_saved_today(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """An earlier version's whole saved section (every key) without the unused defaults."""
    if set(data) != {"method", *_EARLIER_DEFAULTS}:
        return data
    from hpoptim.stopping import settings_models

    model = settings_models(plugins=False).get(str(data["method"]))
    if model is None:
        return data
    return {
        k: v
        for k, v in data.items()
        if k in model.model_fields or k not in _EARLIER_DEFAULTS or v != _EARLIER_DEFAULTS[k]
    }


def early_stopping_settings(data: Mapping[str, Any]) -> StoppingSettings:
    """The ``early_stopping`` section ``data`` as its method's settings.

    Raises:
        ConfigError: The method is unknown, or a key is wrong for it.
    """
    settings, problems = settings_from(_as_saved_today(data))
    if settings is None:
        raise ConfigError([p.at(f"early_stopping.{p.path}") for p in problems])
    return settings


def stopping_problems(stopping: Any, iterations: int) -> list[ConfigProblem]:
    """Early stopping decides between chained iterations, so it needs more than one.

    ``stopping`` is the section, or the mapping it is built from (when other keys of the
    config are invalid, the rule sees the valid keys as given)."""
    if isinstance(stopping, Mapping):
        stopping = early_stopping_settings(stopping)
    if not stopping.enabled or iterations > 1:
        return []
    return [
        ConfigProblem(
            "early_stopping.method",
            "needs training_iterations > 1 (a setting is judged after each chained "
            f"iteration), got training_iterations={iterations}; set training_iterations "
            "or method: none",
        )
    ]


def _by_method(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, StoppingSettings) or not isinstance(value, Mapping):
        return handler(value)  # a non-mapping: "must be a section"
    settings, problems = settings_from(_as_saved_today(value))
    if settings is None:
        raise rule_error(problems=problems)
    return settings


#: The run config's ``early_stopping`` key: any method's settings, saved with their own keys.
EarlyStoppingSection = Annotated[SerializeAsAny[StoppingSettings], WrapValidator(_by_method)]


def section_json_schema() -> dict[str, Any]:
    """The section's JSON Schema: one schema per method, discriminated by ``method``
    (their definitions under ``$defs``)."""
    from typing import Union

    from pydantic import Field, TypeAdapter

    from hpoptim.stopping import settings_models

    models = tuple(settings_models().values())
    union = Annotated[Union[models], Field(discriminator="method")]  # type: ignore[valid-type]  # noqa: UP007, E501
    return TypeAdapter(union).json_schema(mode="validation", ref_template="#/$defs/{model}")
