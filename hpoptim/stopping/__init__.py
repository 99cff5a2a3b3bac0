"""Early-stopping registry: ``early_stopping.method`` names -> rules and their settings.

======================  ==========================================================
``method``              rule
======================  ==========================================================
``none``                no early stopping (:class:`~hpoptim.stopping.base.NoStopping`)
``successive_halving``  :class:`~hpoptim.stopping.successive_halving.SuccessiveHalvingRule`
``hyperband``           :class:`~hpoptim.stopping.hyperband.HyperbandRule`
``median``              :class:`~hpoptim.stopping.median.MedianRule`
``threshold``           :class:`~hpoptim.stopping.threshold.ThresholdRule`
``rank``                :class:`~hpoptim.stopping.rank.RankRule`
======================  ==========================================================

A new rule is one module (its settings model and its :class:`BaseStoppingRule`) plus an
entry in :data:`RULES`, or an entry point in group ``hpoptim.early_stopping``
(:mod:`hpoptim.plugins`). The ``early_stopping`` section is a union discriminated by
``method`` (:func:`settings_from`): each method's model knows only its own keys, and a
key of another method is refused at any value, naming the methods it applies to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.messages import did_you_mean, show
from hpoptim.plugins import load_object, registered
from hpoptim.stopping.base import NO_METHOD, BaseStoppingRule, NoStopping, StoppingSettings

__all__ = [
    "RULES",
    "BaseStoppingRule",
    "NoStopping",
    "StoppingSettings",
    "available",
    "load",
    "make_rule",
    "settings_from",
    "settings_models",
]

RULES: dict[str, str] = {
    "successive_halving": "hpoptim.stopping.successive_halving:SuccessiveHalvingRule",
    "hyperband": "hpoptim.stopping.hyperband:HyperbandRule",
    "median": "hpoptim.stopping.median:MedianRule",
    "threshold": "hpoptim.stopping.threshold:ThresholdRule",
    "rank": "hpoptim.stopping.rank:RankRule",
}
"""Built-in methods -> ``module:Class`` of their rule (imported on use)."""

_PATH = "early_stopping.method"


def _all() -> dict[str, str]:
    return registered(RULES, "method", _PATH)


def available() -> list[str]:
    """Every method: none, the built-in rules, then the plug-ins."""
    return [NO_METHOD, *_all()]


def load(method: str) -> type[BaseStoppingRule]:
    """The rule registered as ``method`` (a built-in, else an entry point).

    Raises:
        ConfigError: ``method`` is not registered, or a plug-in is not a rule.
    """
    target = RULES.get(method) or _all().get(method)
    if target is None:
        raise ConfigError.single(_PATH, _unknown_method(method))
    rule: type[BaseStoppingRule] = load_object(target, BaseStoppingRule, _PATH, method)
    return rule


def settings_models(*, plugins: bool = True) -> dict[str, type[StoppingSettings]]:
    """Each method -> its settings model (``none`` first)."""
    names = available() if plugins else [NO_METHOD, *RULES]
    return {name: NoStopping if name == NO_METHOD else load(name).settings_model for name in names}


def _unknown_method(value: Any) -> str:
    names = available()
    quoted = [repr(n) for n in names]
    hint = did_you_mean(value, names) if isinstance(value, str) else ""
    return f"must be {', '.join(quoted[:-1])} or {quoted[-1]}, got {show(value)}{hint}"


def settings_from(data: Mapping[str, Any]) -> tuple[StoppingSettings | None, list[ConfigProblem]]:
    """The ``early_stopping`` section ``data`` as its method's model, or its problems.

    Key paths in the problems are relative to the section.
    """
    method = data.get("method", NO_METHOD)
    builtin = isinstance(method, str) and (method == NO_METHOD or method in RULES)
    if not builtin and not (isinstance(method, str) and method in _all()):
        return None, [ConfigProblem("method", _unknown_method(method))]
    model = NoStopping if method == NO_METHOD else load(method).settings_model
    models: Mapping[str, type[StoppingSettings]] = {method: model}
    if any(key not in model.model_fields for key in data):  # the other methods' keys matter
        models = settings_models(plugins=not builtin)
    foreign = [
        ConfigProblem(key, _not_for(key, method, models))
        for key in data
        if key not in model.model_fields and _known(key, models)
    ]
    own = {k: v for k, v in data.items() if k in model.model_fields or not _known(k, models)}
    settings, problems = model.validate_dict(own)
    problems = [*foreign, *problems]
    return (None, problems) if problems else (settings, [])


def _known(key: str, models: Mapping[str, type[StoppingSettings]]) -> bool:
    return any(key in m.model_fields for m in models.values())


def _not_for(key: str, method: str, models: Mapping[str, type[StoppingSettings]]) -> str:
    users = [m for m, model in models.items() if key in model.model_fields]
    valid = ", ".join(k for k in models[method].model_fields if k != "method") or "none"
    return (
        f"applies to method {' and '.join(repr(u) for u in users)}, not to {method!r} "
        f"(its keys: {valid})"
    )


def make_rule(settings: StoppingSettings, *, n_iterations: int, minimize: bool) -> BaseStoppingRule:
    """The rule of ``settings.method`` for a run (``method`` is not ``none``)."""
    return load(settings.method)(settings, n_iterations=n_iterations, minimize=minimize)
