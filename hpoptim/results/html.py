"""``report.html``: one self-contained page with the run's plots, best settings and failures.

Images are embedded as base64 PNG and also saved under ``plots/``; the page loads
nothing from anywhere (no scripts, no fonts, no network). During a run a child
process redraws it now and then (:class:`hpoptim.results.drawing.HtmlReporter`,
throttled so that its cost stays a small, bounded share of the machine however many
settings there are) and once more at the end; ``hpoptim report`` draws it at once.
"""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import pandas as pd

from hpoptim.results.drawing import HTML_NAME
from hpoptim.results.load import RunData, load_run
from hpoptim.state.storage import write_text_atomic

PLOTS_DIR = "plots"
N_ROWS = 15
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 4px 8px; margin: 0; white-space: pre-wrap; }
"""


def write_html_report(root: Path, ranking: tuple[str, bool] | None = None) -> Path:
    """Read the run in ``root`` (read-only) and write ``report.html`` and ``plots/*.png``
    (ranked by ``ranking``, ``(metric, minimize)``, if given; see :func:`load_run`)."""
    run = load_run(root, ranking)
    images = _draw(run, root / PLOTS_DIR)
    path = root / HTML_NAME
    write_text_atomic(path, render(run, images))
    return path


def _draw(run: RunData, plots_dir: Path) -> dict[str, tuple[str, bytes]]:
    from matplotlib import rcParams

    from hpoptim.results.plots import PLOTS

    rcParams["svg.fonttype"] = "none"
    images: dict[str, tuple[str, bytes]] = {}
    plots_dir.mkdir(parents=True, exist_ok=True)
    for stem, (title, draw) in PLOTS.items():
        fig = None if run.metric is None else draw(run)  # each plots the metric
        target = plots_dir / f"{stem}.png"
        if fig is None:
            target.unlink(missing_ok=True)
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        data = buf.getvalue()
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        images[stem] = (title, data)
    return images


def render(run: RunData, images: dict[str, tuple[str, bytes]]) -> str:
    """The page's HTML."""
    e = html.escape
    settings = run.settings
    n_failed = int((settings["status"] == "failed").sum())
    n_stopped = int((settings["status"] == "stopped").sum())
    n_done = int(settings["status"].isin(["complete", "failed", "stopped"]).sum())
    stopped = f", {n_stopped} stopped early" if n_stopped else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(run.root.name)} · hpoptim report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(run.root.name)}</h1>",
        "<p>",
        f"{n_done} of {run.config.get('number_of_samples', len(settings))} settings finished "
        f"({n_failed} failed{stopped}), {len(run.jobs)} jobs; {_metric_text(run)}. ",
        f"Written {e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}.</p>",
    ]
    if run.provenance is not None:
        items = "".join(f"<li>{e(line)}</li>" for line in run.provenance.lines())
        parts.append(f'<ul class="provenance">{items}</ul>')
    parts += _best_table(run)
    for stem, (title, data) in images.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts += [
            f"<h2>{e(title)}</h2>",
            f'<img alt="{e(title)}" src="data:image/png;base64,{encoded}">',
            f"<p><small>{e(PLOTS_DIR)}/{e(stem)}.png</small></p>",
        ]
    parts += _stopped_table(run)
    parts += _failures_table(run)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _fmt(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _metric_text(run: RunData) -> str:
    if run.metric is None:
        return (
            "no metric to optimise, so no setting is best (<code>hpoptim report --metric "
            "NAME</code> ranks by one)"
        )
    direction = "minimised" if run.minimize else "maximised"
    return f"metric <code>{html.escape(run.metric)}</code> ({direction})"


def _stopped_table(run: RunData) -> list[str]:
    """The settings early stopping stopped: how far each got and its value there."""
    settings = run.settings
    if "stopped_at_iteration" not in settings.columns or run.metric is None:
        return []
    stopped = settings[settings["status"] == "stopped"]
    if stopped.empty:
        return []
    n_iterations = run.config.get("training_iterations", "")
    rows = [
        f"<tr><td>{_fmt(r['setting_id'])}</td><td>{int(r['stopped_at_iteration']) + 1}</td>"
        f"<td>{_fmt(r[run.metric])}</td></tr>"
        for _, r in stopped.tail(N_ROWS * 2).iterrows()
    ]
    return [
        "<h2>Stopped early</h2>",
        f"<p>{len(stopped)} setting(s) stopped early, each after the iterations shown "
        f"(of {html.escape(str(n_iterations))}); the value is the mean over its reruns "
        "at the last one.</p>",
        "<table><tr><th>setting</th><th>iterations run</th>"
        f"<th>{html.escape(run.metric)}</th></tr>",
        *rows,
        "</table>",
    ]


def _best_table(run: RunData) -> list[str]:
    done = run.settings[run.settings["status"] == "complete"]
    if done.empty:
        return ["<p>No setting has completed yet.</p>"]
    from hpoptim.results.plots import param_names

    names = param_names(run)
    if run.metric is None:  # every metric collected, settings in order
        known = {"setting_id", "status", "n_ok", *names}
        metrics = [c for c in run.settings.columns if c not in known and c not in _NOT_METRICS]
        return _table("Settings", done.head(N_ROWS), ["setting_id", "n_ok", *metrics, *names])
    best = done[done[run.metric].notna()].sort_values(run.metric, ascending=run.minimize)
    cols = ["setting_id", run.metric, f"{run.metric}_std", "n_ok", *names]
    return _table("Best settings", best.head(N_ROWS), cols)


#: settings.csv columns that are not metrics (see hpoptim.results.report.setting_rows).
_NOT_METRICS = {
    "n_failed",
    "n_iterations",
    "stopped_at_iteration",
    "n_attempts",
    "reason",
    "commit",
    "dirty",
    "image_sha256",
}


def _table(title: str, best: pd.DataFrame, cols: list[str]) -> list[str]:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["rank", *cols])
    rows = []
    for rank, (_, row) in enumerate(best.iterrows(), start=1):
        cells = "".join(f'<td class="num">{html.escape(_fmt(row[c]))}</td>' for c in cols)
        rows.append(f'<tr><td class="num">{rank}</td>{cells}</tr>')
    return [f"<h2>{title}</h2>", f"<table><tr>{head}</tr>", *rows, "</table>"]


def _failures_table(run: RunData) -> list[str]:
    jobs = run.jobs
    failed = jobs[~jobs["status"].isin(["completed", "resume", "pending", "abandoned"])]
    if failed.empty:
        return ["<h2>Failures</h2>", "<p>No job failed.</p>"]
    rows = [
        f"<tr><td>{html.escape(str(r['job_id']))}</td><td class='num'>{r['setting_id']}</td>"
        f"<td>{html.escape(str(r['status']))}</td><td><pre>{html.escape(str(r['reason']))}</pre>"
        f"</td><td>{html.escape(str(r['job_dir']))}</td></tr>"
        for _, r in failed.tail(N_ROWS * 2).iterrows()
    ]
    note = f" (the last {N_ROWS * 2} of {len(failed)})" if len(failed) > N_ROWS * 2 else ""
    return [
        f"<h2>Failures{html.escape(note)}</h2>",
        "<table><tr><th>job</th><th>setting</th><th>state</th><th>reason</th><th>directory</th>"
        "</tr>",
        *rows,
        "</table>",
    ]
