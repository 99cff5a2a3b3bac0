"""The one-line cause of a failed job, found in its stderr."""

from __future__ import annotations

import pytest

from hpoptim.results.failure import MAX_CAUSE_CHARS, failure_cause, with_cause

TRACEBACK = """\
Traceback (most recent call last):
  File "/w/train.py", line 3, in <module>
    import torchh
    ^^^^^^^^^^^^^
ModuleNotFoundError: No module named 'torchh'
"""

CHAINED = """\
Traceback (most recent call last):
  File "t.py", line 2, in <module>
    {}["a"]
KeyError: 'a'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "t.py", line 4, in <module>
    raise ValueError("bad\\nsecond line")
ValueError: bad learning rate
second line
"""


@pytest.mark.parametrize(
    ("stderr", "cause"),
    [
        pytest.param(TRACEBACK, "ModuleNotFoundError: No module named 'torchh'", id="traceback"),
        pytest.param(
            "warming up\n" + TRACEBACK + "\n\n",
            "ModuleNotFoundError: No module named 'torchh'",
            id="traceback-then-blank-lines",
        ),
        pytest.param(CHAINED, "ValueError: bad learning rate", id="chained-takes-the-last"),
        pytest.param(
            "step 1\nCUDA out of memory\n\n   \n", "CUDA out of memory", id="skips-blank-lines"
        ),
        pytest.param(
            "cannot open data.csv\nsrun: error: node1: task 0: Exited with exit code 1\n",
            "cannot open data.csv",
            id="skips-srun-trailer",
        ),
        pytest.param(
            "bad input\nSegmentation fault (core dumped)\n", "bad input", id="skips-core-dumped"
        ),
        pytest.param(
            "loading hysr config\nhysr_one_ball_rl: pam_config.json: bad key 'robot_x'\n"
            "run_learning.py: error: learner ['/opt/mpi-is/bin/hysr_one_ball_rl', "
            "'--long', '/very/long/path/of/the/run/directory/main_config.json'] exited with "
            "code 2\n",
            "hysr_one_ball_rl: pam_config.json: bad key 'robot_x'",
            id="skips-run-learning-trailer",
        ),
        pytest.param("", "", id="empty"),
        pytest.param("\n\n", "", id="only-blank"),
    ],
)
def test_failure_cause(stderr: str, cause: str) -> None:
    assert failure_cause(stderr) == cause


def test_a_long_cause_is_cut_to_the_bound() -> None:
    cause = failure_cause("RuntimeError: " + "x" * 1000)
    assert len(cause) == MAX_CAUSE_CHARS
    assert cause.startswith("RuntimeError: xxx")
    assert cause.endswith("…")


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        pytest.param(
            TRACEBACK,
            "failed with exit code 1: ModuleNotFoundError: No module named 'torchh'",
            id="with",
        ),
        pytest.param("", "failed with exit code 1", id="without"),
    ],
)
def test_with_cause(stderr: str, reason: str) -> None:
    assert with_cause("failed with exit code 1", stderr) == reason
