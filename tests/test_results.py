"""Reading what a finished job left in its run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpoptim.jobspec import JobPaths
from hpoptim.results.output import metric_problem, read_metrics


@pytest.mark.parametrize(
    ("text", "metrics", "problem"),
    [
        pytest.param('{"loss": 0.5, "n": 3}', {"loss": 0.5, "n": 3.0}, "", id="numbers"),
        pytest.param(
            '{"loss": 0.5, "tag": "a", "ok": true, "l": [1]}', {"loss": 0.5}, "", id="non-numbers"
        ),
        pytest.param('{"loss": NaN, "x": Infinity}', {}, "", id="non-finite"),
        pytest.param(
            '{"loss": 1' + "0" * 400 + ', "x": 2}', {"x": 2.0}, "", id="int-too-large-for-float"
        ),
        pytest.param("[1, 2]", {}, "must hold a JSON object, got list", id="not-an-object"),
        pytest.param("{not json", {}, "is not valid JSON", id="torn"),
        pytest.param(None, {}, "no metrics file metrics.json was written", id="missing"),
    ],
)
def test_read_metrics(
    tmp_path: Path, text: str | None, metrics: dict[str, float], problem: str
) -> None:
    paths = JobPaths(tmp_path)
    if text is not None:
        paths.metrics_file.write_text(text)
    output = read_metrics(paths)
    assert output.metrics == metrics
    assert problem in output.problem
    assert bool(output.problem) == bool(problem)
    if not problem and "loss" not in metrics:
        assert metric_problem(output, "loss").startswith("metric 'loss' missing")
