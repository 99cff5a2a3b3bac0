"""Every decision of the loop goes through here: journaled, then folded into the history."""

from __future__ import annotations

from typing import Any

from hpoptim.run.plan import EventHook
from hpoptim.state.events import EventKind
from hpoptim.state.history import RunHistory
from hpoptim.state.storage import Journal


class Recorder:
    """Appends an event to the journal, applies it to the history, tells the event hook.

    The parts of the loop share one recorder, so the journal and the history can never
    disagree on what happened, whichever part decided it.
    """

    def __init__(self, journal: Journal, history: RunHistory, on_event: EventHook | None) -> None:
        self.journal = journal
        self.history = history
        self._on_event = on_event

    def __call__(self, event: EventKind, **fields: Any) -> None:
        record = self.journal.append(event, **fields)
        self.history.apply(record)
        if self._on_event is not None:
            self._on_event(self.history, record)

    def sync(self) -> None:
        """Make what was recorded so far durable."""
        self.journal.sync()
