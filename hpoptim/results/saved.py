"""A run's saved config and its journal folded into a history, without pandas: what
``hpoptim status`` and ``ls`` read, and :func:`hpoptim.results.load.load_run` builds on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hpoptim.errors import StorageError
from hpoptim.state.history import Lifecycle, RunHistory, load_history
from hpoptim.state.storage import ResultsLayout, open_regular

__all__ = ["fold_journal", "lifecycle_of", "read_saved_config"]


def read_saved_config(layout: ResultsLayout) -> dict[str, Any]:
    """The run's ``config.json`` as a dict.

    Raises:
        StorageError: It is missing, unreadable or not a JSON object.
    """
    path = layout.config_file
    try:
        with open_regular(path) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise StorageError(f"{layout.root} holds no hpoptim run (no config.json)", path) from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read the saved config {path}: {exc}", path) from None
    if not isinstance(data, dict) or "metric_to_optimize" not in data:
        raise StorageError(f"{path} is not an hpoptim config", path)
    return data


def lifecycle_of(config: Mapping[str, Any]) -> Lifecycle:
    """The lifecycle rules recorded in a saved config."""
    return Lifecycle(
        metric=config["metric_to_optimize"],
        n_reruns=int(config.get("n_reruns", 1)),
        max_attempts=int(config.get("max_attempts", 3)),
        training_iterations=int(config.get("training_iterations", 1)),
        judge_iterations=_early_stopping_method(config) not in (None, "none"),
    )


def _early_stopping_method(config: Mapping[str, Any]) -> Any:
    section = config.get("early_stopping")
    return section.get("method") if isinstance(section, Mapping) else None


def fold_journal(layout: ResultsLayout, config: Mapping[str, Any]) -> RunHistory:
    """Replay the journal (read-only) into a :class:`RunHistory`, checking each event.

    Raises:
        StorageError: A journal line before the last is damaged (named in the message).
    """
    return load_history(layout.journal, lifecycle_of(config))[0]
