"""``report.md`` and the end-of-run summary, read from a run's history."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hpoptim.results.provenance import run_provenance
from hpoptim.results.ranking import (
    Ranking,
    best_params,
    ranked,
    reported_metrics,
    value_of,
)
from hpoptim.results.redact import redact
from hpoptim.state.history import RunHistory, SettingRecord
from hpoptim.state.setting import SettingState


def markdown_report(history: RunHistory, reporter: Ranking, n_rows: int = 10) -> str:
    """A short markdown report: counts, the best settings, the failures."""
    order = ranked(history, reporter.metric, minimize=reporter.minimize)
    n_failed = history.n_failed_settings
    n_stopped = history.n_stopped_settings
    stopped_note = f", {n_stopped} stopped early" if n_stopped else ""
    lines = [
        f"# {reporter.layout.root.name}",
        "",
        f"- settings finished: {history.n_finished} of {history.n_asked} asked "
        f"({n_failed} failed{stopped_note})",
        f"- jobs run: {len(history.jobs)}",
        _metric_line(history, reporter),
        "- plots, best settings and failures: [report.html](report.html)",
    ]
    if (provenance := run_provenance(history)) is not None:
        lines += [f"- {line}" for line in provenance.lines()]
    if order:
        lines += _best_lines(history, order[:n_rows], reporter.metric or "")
    elif reporter.metric is None:
        lines += _collected_lines(history, n_rows)
    if reporter.metric is not None:
        lines += _stopped_lines(history, reporter.metric, n_rows)
    failed = [s for s in history.settings.values() if s.state is SettingState.FAILED]
    if failed:
        lines += ["", "## Failed settings", ""]
        lines += [
            f"- setting {s.setting_id}: {redact(s.result.reason) if s.result else ''}"
            for s in failed[:n_rows]
        ]
    return "\n".join(lines) + "\n"


def _metric_line(history: RunHistory, reporter: Ranking) -> str:
    if reporter.metric is None:
        names = ", ".join(f"`{m}`" for m in reported_metrics(history)) or "none yet"
        return (
            f"- metrics collected: {names}; no metric to optimise, so no setting is best "
            "(`hpoptim report --metric NAME [--maximize]` ranks by one)"
        )
    return f"- metric: `{reporter.metric}` ({'minimised' if reporter.minimize else 'maximised'})"


def _params_cells(setting: SettingRecord, names: Sequence[str]) -> list[str]:
    # JSON escapes line breaks; a "|" would end the table cell
    return [json.dumps(setting.params[n]).replace("|", "\\|") for n in names]


def _best_lines(history: RunHistory, order: Sequence[SettingRecord], metric: str) -> list[str]:
    names = list(order[0].params)
    lines = [
        "",
        "## Best settings",
        "",
        "| rank | setting | value | std | n | " + " | ".join(names) + " |",
    ]
    lines.append("|" + " --- |" * (5 + len(names)))
    own = metric == history.lifecycle.metric
    for rank, s in enumerate(order, start=1):
        assert s.result is not None
        std = f"{s.result.std or 0:.3g}" if own else ""
        cells = [
            str(rank),
            str(s.setting_id),
            f"{value_of(s, metric):.6g}",
            std,
            str(s.result.n_ok),
        ]
        lines.append("| " + " | ".join(cells + _params_cells(s, names)) + " |")
    return lines


def _collected_lines(history: RunHistory, n_rows: int) -> list[str]:
    """The completed settings of a run without a metric to optimise, in order, with the
    mean of every metric they reported."""
    done = [s for s in history.settings.values() if s.state is SettingState.COMPLETE]
    if not done:
        return []
    names, metrics = list(done[0].params), reported_metrics(history)
    lines = ["", "## Settings", "", "| setting | n | " + " | ".join([*metrics, *names]) + " |"]
    lines.append("|" + " --- |" * (2 + len(metrics) + len(names)))
    for s in done[:n_rows]:
        assert s.result is not None
        values = [s.result.metrics.get(m) for m in metrics]
        cells = [str(s.setting_id), str(s.result.n_ok)]
        cells += ["" if v is None else f"{v:.6g}" for v in values]
        lines.append("| " + " | ".join(cells + _params_cells(s, names)) + " |")
    if len(done) > n_rows:
        lines += ["", f"(the first {n_rows}; all are in settings.csv)"]
    return lines


def _stopped_lines(history: RunHistory, metric: str, n_rows: int) -> list[str]:
    """The settings stopped early, most recent last: where they stopped and their value."""
    stopped = [s for s in history.settings.values() if s.state is SettingState.STOPPED]
    if not stopped:
        return []
    n_iterations = history.lifecycle.training_iterations
    lines = [
        "",
        "## Stopped early",
        "",
        f"{len(stopped)} setting(s) stopped early; each ran the iterations shown of "
        f"{n_iterations}, and `{metric}` is its mean over the reruns at the last one.",
        "",
        f"| setting | iterations run | {metric} |",
        "| --- | --- | --- |",
    ]
    for s in stopped[-n_rows:]:
        assert s.result is not None
        assert s.result.stopped_at is not None
        value = "" if s.result.value is None else f"{s.result.value:.6g}"
        lines.append(f"| {s.setting_id} | {s.result.stopped_at + 1} | {value} |")
    if len(stopped) > n_rows:
        lines += ["", f"(the last {n_rows}; all are in settings.csv)"]
    return lines


def summary(history: RunHistory, reporter: Ranking) -> str:
    """The end-of-run summary printed by the CLI."""
    best = best_params(history, reporter.layout, reporter.metric, minimize=reporter.minimize)
    n_running = len(history.active_jobs())
    running = f", {n_running} running" if n_running else ""
    n_stopped = history.n_stopped_settings
    stopped = f"{n_stopped} stopped early, " if n_stopped else ""
    lines = [
        f"finished {history.n_finished} setting(s), {history.n_failed_settings} failed, "
        f"{stopped}{len(history.jobs) - n_running} job(s) run{running}",
    ]
    if reporter.metric is None:
        n_done = history.n_finished - history.n_failed_settings - history.n_stopped_settings
        names = ", ".join(reported_metrics(history)) or "none"
        lines.append(
            f"{n_done} setting(s) completed; metrics collected: {names} "
            "(no metric to optimise, so none is best)"
        )
    elif best is None:
        lines.append("no setting completed")
    else:
        std = "" if best["std"] is None else f"std {best['std']:.3g}, "
        lines.append(
            f"best {reporter.metric} = {best['value']:.6g} ({std}"
            f"n={best['n_reruns']}) from setting {best['setting_id']}"
        )
        lines += [f"  {k} = {json.dumps(v)}" for k, v in best["params"].items()]
    lines.append(f"results: {reporter.layout.root}")
    return "\n".join(lines)
