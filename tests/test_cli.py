"""End-to-end runs of the CLI on examples/ and on small generated configs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from hpoptim.state.storage import read_journal

REPO = Path(__file__).resolve().parent.parent
ZERO_WORK = """\
import json, os, sys
p = json.load(open(sys.argv[-1]))
x = p["params"]["x"]
out = {"loss": (x - 0.3) ** 2}
tmp = os.environ["HPOPTIM_METRICS_FILE"] + ".tmp"
json.dump(out, open(tmp, "w")); os.replace(tmp, os.environ["HPOPTIM_METRICS_FILE"])
"""


def _config(tmp_path: Path, script: str = ZERO_WORK, **extra: Any) -> Path:
    (tmp_path / "job.py").write_text(script)
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "t",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 6,
        "n_jobs_per_iteration": 3,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 1,
        "local": {"n_parallel_jobs": 2},
    }
    cfg.update(extra)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_small_run_writes_every_result_file(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(_config(in_tmp))]) == 0
    out = capsys.readouterr().out
    root = in_tmp / "results" / "t"
    assert "best loss = " in out
    assert str(root) in out
    jobs = pd.read_csv(root / "jobs.csv")
    settings = pd.read_csv(root / "settings.csv")
    assert len(jobs) == 6
    assert len(settings) == 6
    assert set(jobs["status"]) == {"completed"}
    assert (jobs["exit_code"] == 0).all()
    assert jobs["loss"].tolist() == pytest.approx(((jobs["x"] - 0.3) ** 2).tolist())
    best = json.loads((root / "best_params.json").read_text())
    assert best["value"] == pytest.approx(settings["loss"].min())
    assert sorted(p.name for p in (root / "best_jobs").iterdir() if p.is_dir()) == sorted(
        f"setting_{i}" for i in settings.nsmallest(3, "loss")["setting_id"]
    )
    assert json.loads((root / "config.json").read_text())["number_of_samples"] == 6
    assert (root / "journal.jsonl").exists()
    assert (root / "report.md").exists()


def test_invalid_config_launches_nothing(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(in_tmp, number_of_samples=0, n_sampels=3)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "number_of_samples" in err
    assert "n_sampels" in err
    assert not (in_tmp / "results").exists()


def test_override_changes_the_run(in_tmp: Path) -> None:
    assert (
        main([str(_config(in_tmp)), "number_of_samples=2", 'optimization_procedure_name="u"']) == 0
    )
    assert len(pd.read_csv(in_tmp / "results" / "u" / "settings.csv")) == 2


def test_non_literal_override_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(_config(in_tmp)), "optimization_procedure_name=run_2"]) == 2
    assert 'optimization_procedure_name="run_2"' in capsys.readouterr().err


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        pytest.param("import sys; sys.exit(2)", "exit code 2", id="exit-2"),
        pytest.param(
            "print('loading')\nraise RuntimeError('boom')",
            "exit code 1: RuntimeError: boom",
            id="crash-says-why",
        ),
        pytest.param(
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "signal 9", id="killed"
        ),
        pytest.param("pass", "no metrics file", id="no-metrics"),
    ],
)
def test_failing_jobs_are_seen_at_once_and_recorded(
    in_tmp: Path, script: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(in_tmp, script, number_of_samples=2, max_attempts=2, max_failed_fraction=1.0)
    # fewer settings than n_settings_before_failure_check (5), all failed: the run failed
    assert main([str(path)]) == 1
    root = in_tmp / "results" / "t"
    jobs = pd.read_csv(root / "jobs.csv")
    assert len(jobs) == 4  # 2 settings x 2 attempts, each in its own directory
    assert jobs["job_dir"].nunique() == 4
    assert all(reason in r for r in jobs["reason"])
    assert set(jobs["status"]) == {"failed"}
    settings = pd.read_csv(root / "settings.csv")
    assert set(settings["status"]) == {"failed"}
    assert all(reason in r for r in settings["reason"])
    assert reason in (root / "report.md").read_text()
    out, err = capsys.readouterr()
    assert "no setting completed" in out
    assert reason in err
    assert err.splitlines()[-1].startswith("hpoptim: error: all 2 setting(s) failed (last: ")
    assert str(root / "jobs") in err.splitlines()[-1]
    assert "Traceback" not in err
    assert main([str(path)]) == 1  # and still so when asked again
    assert "already complete" in capsys.readouterr().out


def test_too_many_failures_stop_the_run(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(
        in_tmp,
        "import sys; sys.exit(1)",
        number_of_samples=20,
        max_attempts=1,
        n_settings_before_failure_check=3,
        max_failed_fraction=0.5,
    )
    assert main([str(path)]) == 1
    assert "max_failed_fraction" in capsys.readouterr().err
    settings = pd.read_csv(in_tmp / "results" / "t" / "settings.csv")
    assert len(settings) < 20


def test_rerunning_a_finished_run_does_nothing_and_overwrite_keeps_the_old(in_tmp: Path) -> None:
    path = _config(in_tmp)
    assert main([str(path)]) == 0
    journal = (in_tmp / "results" / "t" / "journal.jsonl").read_text()
    assert main([str(path)]) == 0
    assert (in_tmp / "results" / "t" / "journal.jsonl").read_text() == journal
    assert main([str(path), "number_of_samples=3"]) == 2  # different config, same dir
    assert main([str(path), "number_of_samples=3", "--overwrite"]) == 0
    olds = list((in_tmp / "results").glob("t.old-*"))
    assert len(olds) == 1
    assert (olds[0] / "journal.jsonl").read_text() == journal


@pytest.mark.integration
def test_rosenbrock_example_gets_close_to_the_optimum(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpoptim",
            str(REPO / "examples/rosenbrock/config.yaml"),
            f"results_dir={str(tmp_path)!r}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = json.loads((tmp_path / "rosenbrock" / "best_params.json").read_text())
    assert best["value"] < 0.1, best
    assert abs(best["params"]["point.x"] - 1) < 0.35
    assert abs(best["params"]["point.y"] - 1) < 0.7


def test_sigint_stops_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    slow = ZERO_WORK.replace("x = p", "import time; time.sleep(0.5); x = p")
    path = _config(tmp_path, slow, number_of_samples=10)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = tmp_path / "results" / "t" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not journal.exists() or '"e":"setting_finished"' not in journal.read_text()
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "hpoptim resume" in err
    root = tmp_path / "results" / "t"
    n_done = sum('"e":"setting_finished"' in line for line in journal.read_text().splitlines())
    assert n_done >= 1  # the reports written on the way out hold what the journal holds
    assert len(pd.read_csv(root / "settings.csv")) >= n_done
    assert f"- settings finished: {n_done} of " in (root / "report.md").read_text()
    assert main(["resume", str(tmp_path / "results" / "t")]) == 0
    settings = pd.read_csv(tmp_path / "results" / "t" / "settings.csv")
    assert sorted(settings["setting_id"]) == list(range(10))
    assert set(settings["status"]) == {"complete"}


def test_checkout_error_leaves_no_results_dir(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = in_tmp / "repo"
    repo.mkdir()
    (repo / "job.py").write_text(ZERO_WORK)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "job.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "job"], check=True)
    path = _config(in_tmp, run_in_working_dir=False, git_params={"url": str(repo), "tag": "v9"})
    assert main([str(path)]) == 2
    assert "no tag 'v9'" in capsys.readouterr().err
    assert not (in_tmp / "results" / "t").exists()
    subprocess.run([*git, "tag", "v9"], check=True)
    assert main([str(path)]) == 0  # fixed: the same command now runs
    jobs = pd.read_csv(in_tmp / "results" / "t" / "jobs.csv")
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert set(jobs["commit"]) == {head.stdout.strip()}


@pytest.mark.parametrize(
    ("command", "saved", "message"),
    [
        pytest.param("resume", "{", "cannot read the saved config", id="resume-not-json"),
        pytest.param("report", '{"a":', "cannot read the saved config", id="report-torn"),
        pytest.param("resume", "[1]", "a config must be a mapping, got list", id="not-a-mapping"),
        pytest.param("run", "{", "cannot read the saved config", id="run-same-dir"),
    ],
)
def test_unreadable_saved_config_is_a_usage_error(
    in_tmp: Path, command: str, saved: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(in_tmp, number_of_samples=1)
    assert main([str(path)]) == 0
    root = in_tmp / "results" / "t"
    (root / "config.json").write_text(saved)
    capsys.readouterr()
    assert main([command, str(path if command == "run" else root)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert str(root / "config.json") in err


def test_run_stopped_by_failures_continues_once_the_script_is_fixed(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "import os, sys\nif not os.path.exists('fixed'): sys.exit(1)\n" + ZERO_WORK
    path = _config(
        in_tmp,
        broken,
        number_of_samples=8,
        max_attempts=1,
        n_settings_before_failure_check=2,
        n_jobs_per_iteration=1,
    )
    assert main([str(path)]) == 1
    assert "continue with: hpoptim resume" in capsys.readouterr().err
    (in_tmp / "fixed").touch()
    root = in_tmp / "results" / "t"
    assert main(["resume", str(root)]) == 0
    settings = pd.read_csv(root / "settings.csv")
    assert len(settings) == 8
    assert (settings["status"] == "failed").sum() == 2


@pytest.mark.parametrize(
    ("script", "mode", "extra", "message"),
    [
        pytest.param(None, 0, {}, "script 'job.py' does not exist under", id="missing"),
        pytest.param("run.sh", 0o644, {}, "must be an executable file", id="not-executable"),
        pytest.param("run.sh", 0o755, {}, "", id="executable"),
        pytest.param("run.sh", 0o644, {"interpreter": ["sh"]}, "", id="interpreter"),
    ],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_job_script_is_checked_before_anything_is_written(
    in_tmp: Path,
    command: str,
    script: str | None,
    mode: int,
    extra: dict[str, Any],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _config(in_tmp, number_of_samples=1, **extra)
    (in_tmp / "job.py").unlink()
    if script is not None:
        (in_tmp / script).write_text("#!/bin/sh\nexit 1\n")
        (in_tmp / script).chmod(mode)
        path.write_text(
            json.dumps({**json.loads(path.read_text()), "script_relative_path": script})
        )
    code = main([command, str(path)])
    if message:
        assert code == 2
        assert message in capsys.readouterr().err
        assert not (in_tmp / "results").exists()
    elif command == "check":
        assert code == 0
    else:
        assert code == 1  # a run runs the script (which fails) and ends: the run failed
        assert (in_tmp / "results" / "t" / "report.md").exists()


CLASHING_NAMES = """\
import json, os, sys
p = json.load(open(sys.argv[-1]))["params"]
out = {"loss": (p["x"] - 0.3) ** 2, "reason": 7.0, "x": 2 * p["x"]}
tmp = os.environ["HPOPTIM_METRICS_FILE"] + ".tmp"
json.dump(out, open(tmp, "w")); os.replace(tmp, os.environ["HPOPTIM_METRICS_FILE"])
"""


def test_params_and_metrics_named_like_result_columns_get_their_own_columns(
    in_tmp: Path,
) -> None:
    """A parameter called ``status`` or a metric called ``reason`` (or like a parameter)
    must not overwrite the bookkeeping columns, nor each other."""
    config = _config(
        in_tmp,
        CLASHING_NAMES,
        number_of_samples=3,
        optimized_params=[
            {"param": "x", "distribution": "Uniform", "bounds": [0, 1]},
            {"param": "status", "distribution": "Discrete", "options": ["a", "b"]},
        ],
    )
    assert main([str(config), "-q"]) == 0
    root = in_tmp / "results" / "t"
    for table in ("jobs", "settings"):
        frame = pd.read_csv(root / f"{table}.csv")
        assert set(frame["status"]) == {"completed" if table == "jobs" else "complete"}
        assert set(frame["param_status"]) <= {"a", "b"}
        assert frame["metric_x"].tolist() == pytest.approx((2 * frame["x"]).tolist())
        assert (frame["metric_reason"] == 7.0).all()
    assert set(pd.read_csv(root / "jobs.csv")["reason"]) == {"exit code 0"}


def test_check_resolves_the_git_ref_and_writes_nothing(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = in_tmp / "repo"
    repo.mkdir()
    (repo / "job.py").write_text(ZERO_WORK)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "job.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "job"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    wrong = _config(
        in_tmp, run_in_working_dir=False, git_params={"url": str(repo), "branch": "mian"}
    )
    assert main(["check", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "no branch 'mian'" in err
    assert "'main'" in err  # the closest branch is suggested
    right = _config(
        in_tmp, run_in_working_dir=False, git_params={"url": str(repo), "branch": "main"}
    )
    assert main(["check", str(right)]) == 0
    out = capsys.readouterr().out
    assert f"git OK: branch 'main' of {repo}: commit {head.stdout.strip()}" in out
    assert not (in_tmp / "results").exists()


def test_report_while_a_driver_runs_rewrites_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hpoptim report`` beside a live driver prints the summary from the journal but
    leaves the files to the driver; once the driver is gone it rewrites them."""
    go = tmp_path / "go"
    waits = ZERO_WORK.replace(
        "x = p", f"import time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)\nx = p"
    )
    path = _config(tmp_path, waits, number_of_samples=2, n_jobs_per_iteration=2)
    root = tmp_path / "results" / "t"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", str(path), "-q"], cwd=tmp_path, env=env
    )
    try:
        deadline = time.monotonic() + 60
        # both jobs started (the driver journals their pids, then only waits for them)
        while time.monotonic() < deadline and (
            len(
                {
                    job
                    for e in read_journal(root / "journal.jsonl")
                    if e["e"] == "native_ids"
                    for job, n in e["ids"].items()
                    if n
                }
            )
            < 2
        ):
            time.sleep(0.05)
        before = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
        assert main(["report", str(root)]) == 0
        out = capsys.readouterr().out
        assert "finished 0 setting(s), 0 failed, 0 job(s) run, 2 running" in out
        assert "a driver is running this run" in out
        assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == before  # untouched
    finally:
        go.write_text("")
        assert proc.wait(timeout=60) == 0
    (root / "settings.csv").unlink()
    assert main(["report", str(root)]) == 0
    assert "a driver is running" not in capsys.readouterr().out
    assert len(pd.read_csv(root / "settings.csv")) == 2


def test_resume_runs_the_commit_the_run_started_with(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The branch moves on (here: to a fixed script) while a run is stopped; the
    resumed run still runs, and records, the commit it started with."""
    repo = in_tmp / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "job.py").write_text("import sys; sys.exit(1)\n")
    subprocess.run([*git, "add", "job.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "broken"], check=True)
    first = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    path = _config(
        in_tmp,
        run_in_working_dir=False,
        git_params={"url": str(repo), "branch": "main"},
        max_attempts=1,
        n_settings_before_failure_check=2,
        n_jobs_per_iteration=1,
    )
    assert main([str(path), "-q"]) == 1  # stopped: 2 of 2 settings failed
    (repo / "job.py").write_text(ZERO_WORK)
    subprocess.run([*git, "commit", "-qam", "fixed"], check=True)
    root = in_tmp / "results" / "t"
    assert main(["resume", str(root), "-q"]) == 1  # still the broken commit
    assert "max_failed_fraction" in capsys.readouterr().err
    jobs = pd.read_csv(root / "jobs.csv")
    assert len(jobs) == 4
    assert set(jobs["commit"]) == {first.strip()}
    assert set(jobs["status"]) == {"failed"}


@pytest.mark.parametrize("command", ["check", "run"])
def test_an_ext_git_url_is_refused_in_one_line_and_runs_nothing(
    in_tmp: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = in_tmp / "ran"
    url = f"ext::sh -c touch% {marker}"
    path = _config(in_tmp, run_in_working_dir=False, git_params={"url": url})
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [  # a config rule: the config error's header, then one line
        f"hpoptim: error: invalid configuration in {path} (1 problem(s)):",
        "  git_params.url: uses git's ext:: transport, which runs commands and is not allowed; "
        f"give a repository URL (https://, ssh://, git@host:path) or a local path, got {url!r}",
    ]
    assert not marker.exists()
    assert not (in_tmp / "results" / "t").exists()
