"""A setting's outcome: judged between iterations, finished, compared with the best.

Also the run's own outcome: too many failed settings stop it, and a run whose every
setting failed counts as failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpoptim.errors import JobSetupError, TooManyFailuresError
from hpoptim.log import get_logger
from hpoptim.run.early_stopping import EarlyStopper
from hpoptim.run.feed import SamplerFeed, setting_value
from hpoptim.run.plan import LoopSettings, ProgressHook
from hpoptim.run.recorder import Recorder
from hpoptim.state.events import EventKind
from hpoptim.state.history import RunHistory, SettingRecord
from hpoptim.state.setting import SettingResult, SettingState, is_better

logger = get_logger(__name__)


class Outcomes:
    """Decides what a setting's ended jobs mean for it and for the run.

    Args:
        settings: ``minimize``, ``n_samples`` and the failure rule are read.
        record: The run's recorder (journal + history).
        stopper: The early-stopping rule, None without early stopping.
        feed: Told each finished setting.
        jobs_dir: Where the job logs are, for messages.
        on_finished: Called after each finished setting (reports, best jobs, the
            dispatcher's resubmit rule), in order.
    """

    def __init__(
        self,
        settings: LoopSettings,
        record: Recorder,
        stopper: EarlyStopper | None,
        feed: SamplerFeed,
        jobs_dir: Path,
        on_finished: tuple[ProgressHook, ...] = (),
    ) -> None:
        self.settings = settings
        self.record = record
        self.history = record.history
        self.stopper = stopper
        self.feed = feed
        self.jobs_dir = jobs_dir
        self._on_finished = on_finished
        #: (value, setting id) of the best completed setting so far.
        self.best: tuple[float, int] | None = None
        self._failure_base = (0, 0)  # (finished, failed) settings before this driver ran

    def settle(self, sid: int) -> None:
        """A job of setting ``sid`` ended: judge the setting or finish it, when due."""
        setting = self.history.settings[sid]
        if setting.due_judgment() is not None:
            self.judge(sid)
        elif setting.all_reruns_done:
            self.finalize(sid)

    def judge(self, sid: int) -> None:
        """Every rerun of ``sid`` ended an iteration: the early-stopping rule decides on
        their mean whether they go on (the decision is journaled before anything runs)."""
        assert self.stopper is not None  # only a run with early stopping waits to be judged
        setting = self.history.settings[sid]
        iteration = setting.due_judgment()
        assert iteration is not None
        value = setting.iteration_value(iteration)
        stop = self.stopper.judge(sid, iteration + 1, value)
        self.record(EventKind.JUDGED, sid=sid, it=iteration, value=value, stop=stop)
        if stop:
            logger.debug(
                "setting %d stopped early after iteration %d (%s=%.6g)",
                sid,
                iteration,
                self.history.lifecycle.metric,
                value,
            )
        if setting.all_reruns_done:
            self.finalize(sid)

    def finalize(self, sid: int) -> None:
        """Journal the setting's result, and tell whoever needs to know."""
        result = self.history.aggregate(sid)
        self.record(EventKind.SETTING_FINISHED, sid=sid, result=result.to_dict())
        setting = self.history.settings[sid]
        if self.stopper is not None:
            self.stopper.finished(sid, result.value, stopped=result.stopped_at is not None)
        self.feed.finished(setting)
        self.note_best(setting)
        self._log_finished(setting, result)
        for hook in self._on_finished:
            hook(self.history, setting)

    def note_best(self, setting: SettingRecord) -> None:
        """Keep ``setting`` as the best if it completed with a better value."""
        value = setting_value(setting) if setting.stopped_at is None else None  # a partial run's
        if value is not None and (
            self.best is None or is_better(value, self.best[0], minimize=self.settings.minimize)
        ):
            self.best = (value, setting.setting_id)

    def start_failure_count(self) -> None:
        """Judge ``max_failed_fraction`` on the settings finished from now on.

        A resumed run counts only the settings it finishes itself, so a run stopped by
        failures continues once its script is fixed.
        """
        self._failure_base = (self.history.n_finished, self.history.n_failed_settings)

    def check_failures(self, setup_error: str | None) -> None:
        """Stop the run when a job could not set itself up or too many settings failed.

        Raises:
            JobSetupError: A job could not set itself up.
            TooManyFailuresError: Too many settings failed.
        """
        if setup_error is not None:
            raise JobSetupError(setup_error)
        s = self.settings
        base_done, base_failed = self._failure_base
        n_done = self.history.n_finished - base_done
        if n_done < s.n_settings_before_failure_check:
            return
        n_failed = self.history.n_failed_settings - base_failed
        if n_failed / n_done > s.max_failed_fraction:
            since = " since the run was resumed" if base_done else ""
            raise TooManyFailuresError(
                f"{n_failed} of {n_done} finished settings failed{since} "
                f"(more than max_failed_fraction={s.max_failed_fraction}); "
                f"see the job logs under {self.jobs_dir}"
            )

    def _log_finished(self, setting: SettingRecord, result: SettingResult) -> None:
        """One DEBUG line per finished setting: shown with ``-v`` and in the log file."""
        done = f"[{self.history.n_finished}/{self.settings.n_samples}]"
        if result.state is SettingState.FAILED:
            logger.debug("%s setting %d failed: %s", done, setting.setting_id, result.reason)
            return
        if result.value is None:  # a run that only collects metrics
            metrics = format_params(dict(result.metrics))
            logger.debug(
                "%s setting %d: %s %s",
                done,
                setting.setting_id,
                metrics,
                format_params(setting.params),
            )
            return
        best = self.best
        logger.debug(
            "%s setting %d: %s=%.6g (std %.3g, n=%d) %s; best %.6g (setting %d)",
            done,
            setting.setting_id,
            self.history.lifecycle.metric,
            result.value,
            result.std or 0.0,
            result.n_ok,
            format_params(setting.params),
            best[0] if best else float("nan"),
            best[1] if best else -1,
        )


def failed_run_reason(history: RunHistory) -> str:
    """Why a run that spent its budget counts as failed: every setting it finished
    failed ("" if one succeeded, or none finished)."""
    n = history.n_finished
    if not n or history.n_failed_settings < n:
        return ""
    last = history.settings[history.finished_order[-1]].result
    why = f" (last: {last.reason})" if last is not None and last.reason else ""
    return f"all {n} setting(s) failed{why}"


def format_params(params: Mapping[str, Any]) -> str:
    """``a=0.0123, b=4, c='relu'``: floats with 4 significant digits."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in params.items()
    )
