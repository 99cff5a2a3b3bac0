"""Reading what a finished job left in its run directory (a job is not trusted)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from hpoptim.jobspec import JobPaths
from hpoptim.results.output import (
    MAX_METRICS_BYTES,
    MAX_METRICS_KEYS,
    RunOutput,
    metric_problem,
    read_metrics,
    tail,
)

T = TypeVar("T")


@pytest.mark.parametrize(
    ("text", "metrics", "problem"),
    [
        pytest.param('{"loss": 0.5, "n": 3}', {"loss": 0.5, "n": 3.0}, "", id="numbers"),
        pytest.param(
            '{"loss": 0.5, "tag": "a"}', {"loss": 0.5}, "'tag' is a string ('a')", id="string"
        ),
        pytest.param('{"loss": true}', {}, "'loss' is a boolean (true)", id="boolean"),
        pytest.param('{"loss": NaN}', {}, "'loss' is NaN, not a finite number", id="nan"),
        pytest.param(
            '{"loss": 1, "x": -Infinity}', {"loss": 1.0}, "'x' is -Infinity", id="infinity"
        ),
        pytest.param('{"loss": null}', {}, "'loss' is null", id="null"),
        pytest.param('{"loss": [1]}', {}, "'loss' is a list, not a number", id="list"),
        pytest.param(
            '{"loss": 1' + "0" * 400 + ', "x": 2}',
            {"x": 2.0},
            "'loss' is an integer too large for a float",
            id="int-too-large-for-float",
        ),
        pytest.param(
            json.dumps({f"k{i}": "s" for i in range(5)}),
            {},
            "'k2' is a string ('s'); and 2 more",
            id="many-bad-values-are-summarised",
        ),
        pytest.param("[1, 2]", {}, "must hold a JSON object, got list", id="not-an-object"),
        pytest.param("{not json", {}, "is not valid JSON", id="torn"),
        pytest.param("[" * 100_000, {}, "is not valid JSON", id="too-deep"),
        pytest.param(None, {}, "no metrics file metrics.json was written", id="missing"),
        pytest.param(
            json.dumps({f"m{i}": i for i in range(MAX_METRICS_KEYS + 1)}),
            {},
            f"holds {MAX_METRICS_KEYS + 1} keys, more than the {MAX_METRICS_KEYS} allowed",
            id="too-many-keys",
        ),
        pytest.param(
            json.dumps({f"m{i}": i for i in range(MAX_METRICS_KEYS)}),
            {f"m{i}": float(i) for i in range(MAX_METRICS_KEYS)},
            "",
            id="as-many-keys-as-allowed",
        ),
        pytest.param(
            '{"loss": 1}' + " " * MAX_METRICS_BYTES,
            {},
            f"larger than the {MAX_METRICS_BYTES} bytes allowed",
            id="too-large",
        ),
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
    assert "\n" not in output.problem
    if problem:  # a job with an unusable metrics file has no usable metric
        assert metric_problem(output, "loss") == output.problem


def test_a_missing_metric_names_what_was_reported() -> None:
    output = RunOutput(metrics={"acc": 1.0, "b": 2.0})
    assert metric_problem(output, "loss") == (
        "metric 'loss' missing from metrics.json (reported: acc, b)"
    )
    assert metric_problem(output, "acc") == ""


def _in_thread(read: Callable[[], T]) -> T:
    """``read()`` in a thread, so that a read that blocks fails the test instead of
    hanging it."""
    result: list[T] = []
    reader = threading.Thread(target=lambda: result.append(read()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), "the read blocked"
    return result[0]


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        pytest.param(lambda p: os.mkfifo(p), "a FIFO", id="fifo"),
        pytest.param(lambda p: p.symlink_to("/dev/zero"), "a character device", id="dev-zero"),
        pytest.param(lambda p: p.mkdir(), "a directory", id="directory"),
    ],
)
def test_a_metrics_file_that_is_not_a_regular_file_is_refused_without_reading(
    tmp_path: Path, make: object, kind: str
) -> None:
    paths = JobPaths(tmp_path)
    make(paths.metrics_file)  # type: ignore[operator]
    output = _in_thread(lambda: read_metrics(paths))
    assert output == RunOutput(problem=f"metrics.json is not a regular file ({kind})")


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"loss": 2}')
    paths = JobPaths(tmp_path / "run")
    paths.run_dir.mkdir()
    paths.metrics_file.symlink_to(target)
    assert read_metrics(paths) == RunOutput(metrics={"loss": 2.0})


def test_tail_of_a_fifo_is_empty_and_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "stderr"
    os.mkfifo(fifo)
    assert _in_thread(lambda: tail(fifo, 5)) == ""
    log = tmp_path / "log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 2) == "line 98\nline 99"
