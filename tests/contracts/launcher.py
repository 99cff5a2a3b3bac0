"""Behaviour every launcher must show, as a reusable test class.

A launcher's tests subclass :class:`LauncherContract` and implement
:meth:`LauncherContract.make_launcher`::

    class TestLocalLauncher(LauncherContract):
        def make_launcher(self, tmp_path: Path) -> BaseLauncher:
            return LocalLauncher(n_parallel_jobs=4)

To run the cases where a later driver takes over jobs (adopt a finished result,
follow a running job, cancel it, time limits without a driver), a subclass also
implements :meth:`LauncherContract.abandon`; without it they are skipped.

Timings are class attributes so a slow scheduler can stretch them, and a
subclass can skip a case it cannot support by naming it in ``skip_cases``
with the reason. Every job is a tiny ``python -c`` program.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobPaths, JobResources, JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher

# Every job script may use these names.
PRELUDE = "import json, os, signal, sys, time\nfrom pathlib import Path\n"
RUN_DIR = "Path(os.environ['CONTRACT_RUN_DIR'])"
# Written atomically: a test that sees the file may read the pid in it at once.
STARTED = (
    f"{RUN_DIR}.joinpath('started.tmp').write_text(str(os.getpid()))\n"
    f"{RUN_DIR}.joinpath('started.tmp').rename({RUN_DIR}.joinpath('started'))\n"
)
# Appends one line per start of the job, so a test can tell a job that ran twice.
COUNT_START = f"{RUN_DIR}.joinpath('starts').open('a').write(str(os.getpid()) + '\\n')\n"
HOSTILE_ARGS = (
    "two words",
    "'single'",
    '"double"',
    "$(touch pwned_subst)",
    "`touch pwned_backtick`",
    "; touch pwned_semicolon",
    "&& touch pwned_and",
    "| cat",
    "*",
    "",
    "back\\slash",
    "new\nline",
    "ünïcødé",
    "$HOME",
)


class LauncherContract:
    """Tests every launcher must pass; subclasses implement :meth:`make_launcher`."""

    #: How long a test waits for its jobs to end before failing.
    wait_s: float = 30.0
    #: The ``timeout_s`` passed to each ``poll``.
    poll_timeout_s: float = 0.2
    #: How long the launcher is polled after the last job ended, to catch repeats.
    quiet_s: float = 0.3
    #: Wall time of the timeout cases, in minutes, and the signal's lead in seconds.
    timeout_min: float = 0.05
    signal_lead_s: float = 1.5
    #: How many jobs the many-jobs case runs.
    n_many_jobs: int = 12
    #: Test names (without the ``test_`` prefix) this launcher skips, with the reason.
    skip_cases: ClassVar[Mapping[str, str]] = {}
    #: Where a slow launcher's cases are split over two classes (and so two test files,
    #: which run beside each other): the cases this class runs (None: all of them) and
    #: those it leaves to the other class. The others are deselected, not skipped
    #: (``tests/conftest.py``).
    only_cases: ClassVar[frozenset[str] | None] = None
    other_cases: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def runs_case(cls, name: str) -> bool:
        """Whether this class runs case ``name`` (without the ``test_`` prefix)."""
        if cls.only_cases is not None:
            return name in cls.only_cases
        return name not in cls.other_cases

    def make_launcher(self, tmp_path: Path) -> BaseLauncher:
        """Return a fresh launcher whose files (if any) live under ``tmp_path``."""
        raise NotImplementedError

    def abandon(self, launcher: BaseLauncher) -> None:
        """Forget ``launcher`` as a driver killed with SIGKILL would: its jobs run on.

        The reattach cases need it; a launcher that cannot do it skips them.
        """
        pytest.skip(f"{type(self).__name__} does not say how to abandon a launcher")

    # -- fixtures and helpers ----------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _skip_listed(self, request: pytest.FixtureRequest) -> None:
        name = request.function.__name__.removeprefix("test_")
        if name in self.skip_cases:
            pytest.skip(self.skip_cases[name])

    @pytest.fixture
    def launcher(self, tmp_path: Path) -> Iterator[BaseLauncher]:
        with self.make_launcher(tmp_path) as launcher:
            yield launcher

    def spec(
        self,
        tmp_path: Path,
        job_id: str,
        body: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout_min: float | None = None,
    ) -> JobSpec:
        """A job running ``PRELUDE + body`` with ``python -c``; its run dir is created."""
        run_dir = tmp_path / "jobs" / job_id
        run_dir.mkdir(parents=True)
        return JobSpec(
            job_id=job_id,
            argv=(sys.executable, "-c", PRELUDE + body, *args),
            cwd=run_dir,
            paths=JobPaths(run_dir),
            env={"CONTRACT_RUN_DIR": str(run_dir), **(env or {})},
            resources=JobResources(time_limit_min=timeout_min, signal_lead_s=self.signal_lead_s),
        )

    def run_jobs(self, launcher: BaseLauncher, specs: Sequence[JobSpec]) -> dict[str, JobStatus]:
        """Submit ``specs`` as capacity allows; return each job's terminal status.

        Fails if a job is reported terminal twice, reported after its end, or an
        unknown job is reported.
        """
        queue = list(specs)
        ended: dict[str, JobStatus] = {}
        expected = {s.job_id for s in specs}
        deadline = time.monotonic() + self.wait_s
        while len(ended) < len(specs):
            left = expected - set(ended)
            assert time.monotonic() < deadline, f"jobs {sorted(left)} still running"
            free = launcher.capacity()
            n = len(queue) if free is None else min(free, len(queue))
            if n:
                native = launcher.submit(queue[:n])
                assert set(native) == {s.job_id for s in queue[:n]}
                assert all(isinstance(v, str) for v in native.values())
                del queue[:n]
            self.record(launcher.poll(self.poll_timeout_s), ended, expected)
        self.assert_quiet(launcher, ended)
        return ended

    @staticmethod
    def record(
        statuses: Sequence[JobStatus], ended: dict[str, JobStatus], expected: set[str]
    ) -> None:
        """Add terminal ``statuses`` to ``ended``, checking each job ends exactly once."""
        for status in statuses:
            assert status.job_id in expected, f"unknown job reported: {status}"
            assert status.job_id not in ended, f"reported again after its end: {status}"
            if status.state.is_terminal:
                ended[status.job_id] = status

    def assert_quiet(self, launcher: BaseLauncher, ended: Mapping[str, JobStatus]) -> None:
        """Poll once more: no further news may come for jobs that ended."""
        late = [s for s in launcher.poll(self.quiet_s) if s.job_id in ended]
        assert late == [], f"jobs reported after their end: {late}"

    def wait_for_file(self, path: Path) -> None:
        """Wait until a job has written ``path``."""
        deadline = time.monotonic() + self.wait_s
        while not path.exists():
            assert time.monotonic() < deadline, f"{path} never appeared"
            time.sleep(0.02)

    def poll_until_ended(
        self, launcher: BaseLauncher, job_ids: set[str], expected: set[str]
    ) -> dict[str, JobStatus]:
        """Poll until every job of ``job_ids`` has ended (others may end too)."""
        ended: dict[str, JobStatus] = {}
        deadline = time.monotonic() + self.wait_s
        while not job_ids <= set(ended):
            assert time.monotonic() < deadline, f"jobs {job_ids - set(ended)} still running"
            self.record(launcher.poll(self.poll_timeout_s), ended, expected)
        return ended

    # -- built from its config section -------------------------------------------------------
    def test_builds_from_its_config_section(self, launcher: BaseLauncher, tmp_path: Path) -> None:
        """The registry's way in: the section's model with its defaults builds a launcher."""
        cls = type(launcher)
        section = cls.settings_model()
        assert section.section_path == cls.name
        assert cls.settings_model.model_validate(section.to_dict()) == section
        with cls.from_settings(section, work_dir=tmp_path / cls.name, name="contract") as built:
            assert isinstance(built, cls)

    # -- exit codes and signals ----------------------------------------------------------
    @pytest.mark.parametrize(
        ("body", "state", "exit_code", "signum"),
        [
            pytest.param("sys.exit(0)", JobState.COMPLETED, 0, None, id="exit-0"),
            pytest.param("pass", JobState.COMPLETED, 0, None, id="falls-off-the-end"),
            pytest.param("sys.exit(3)", JobState.RESUME, 3, None, id="exit-3-resume"),
            pytest.param("sys.exit(5)", JobState.FAILED, 5, None, id="exit-5"),
            pytest.param("raise RuntimeError('x')", JobState.FAILED, 1, None, id="raises"),
            pytest.param(
                "os.kill(os.getpid(), signal.SIGKILL)",
                JobState.FAILED,
                None,
                signal.SIGKILL,
                id="sigkill",
            ),
            pytest.param(
                "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.kill(os.getpid(), 15)",
                JobState.FAILED,
                None,
                signal.SIGTERM,
                id="sigterm",
            ),
        ],
    )
    def test_exit_status_maps_to_state(
        self,
        launcher: BaseLauncher,
        tmp_path: Path,
        body: str,
        state: JobState,
        exit_code: int | None,
        signum: int | None,
    ) -> None:
        ended = self.run_jobs(launcher, [self.spec(tmp_path, "j", body)])
        status = ended["j"]
        assert (status.state, status.exit_code, status.signal) == (state, exit_code, signum)

    def test_timeout_signal_comes_before_the_limit(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        trap = "signal.signal(signal.SIGTERM, on_term)\n" + STARTED
        cases = {
            # job id: (body, expected state)
            "hang": (STARTED + "time.sleep(600)", JobState.TIMEOUT),
            "checkpoint": (
                "def on_term(*_):\n"
                f"    {RUN_DIR}.joinpath('ckpt').write_text('saved'); os._exit(3)\n"
                + trap
                + "time.sleep(600)",
                JobState.RESUME,
            ),
            "finish-early": (
                "def on_term(*_): os._exit(0)\n" + trap + "time.sleep(600)",
                JobState.COMPLETED,
            ),
            "fail-on-signal": (
                "def on_term(*_): os._exit(1)\n" + trap + "time.sleep(600)",
                JobState.TIMEOUT,
            ),
            "ignore-signal": (
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + STARTED + "time.sleep(600)",
                JobState.TIMEOUT,
            ),
        }
        specs = [
            self.spec(tmp_path, job_id, body, timeout_min=self.timeout_min)
            for job_id, (body, _) in cases.items()
        ]
        start = time.monotonic()
        ended = self.run_jobs(launcher, specs)
        assert time.monotonic() - start < self.wait_s
        got = {k: s.state for k, s in ended.items()}
        assert got == {k: c[1] for k, c in cases.items()}, ended
        for status in ended.values():
            if status.state is JobState.TIMEOUT:
                assert "timeout" in status.reason, status
        assert (tmp_path / "jobs" / "checkpoint" / "ckpt").read_text() == "saved"

    def test_job_without_time_limit_is_not_signalled(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        body = "signal.signal(signal.SIGTERM, lambda *_: os._exit(9))\ntime.sleep(0.5)"
        ended = self.run_jobs(launcher, [self.spec(tmp_path, "j", body)])
        assert ended["j"].state is JobState.COMPLETED

    # -- files, environment, argv ------------------------------------------------------------
    def test_stdout_and_stderr_go_to_their_files(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        body = "print('to stdout', flush=True); print('to stderr', file=sys.stderr); sys.exit(2)"
        spec = self.spec(tmp_path, "j", body)
        ended = self.run_jobs(launcher, [spec])
        assert ended["j"].exit_code == 2
        assert "to stdout" in spec.paths.stdout.read_text()
        assert "to stdout" not in spec.paths.stderr.read_text()
        assert "to stderr" in spec.paths.stderr.read_text()

    def test_output_files_are_appended_to(self, launcher: BaseLauncher, tmp_path: Path) -> None:
        spec = self.spec(tmp_path, "j", "print('new', flush=True); print('new', file=sys.stderr)")
        spec.paths.stdout.write_text("old\n")
        spec.paths.stderr.write_text("old\n")
        self.run_jobs(launcher, [spec])
        assert spec.paths.stdout.read_text().split() == ["old", "new"]
        assert spec.paths.stderr.read_text().split() == ["old", "new"]

    def test_environment_and_cwd_are_honoured(
        self, launcher: BaseLauncher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CONTRACT_FROM_DRIVER", "driver value")
        monkeypatch.setenv("CONTRACT_OVERRIDDEN", "driver")
        env = {"CONTRACT_SPEC": "a b $x ; `y`", "CONTRACT_OVERRIDDEN": "spec"}
        work = tmp_path / "work dir"
        work.mkdir()
        body = (
            "names = ['CONTRACT_FROM_DRIVER', 'CONTRACT_SPEC', 'CONTRACT_OVERRIDDEN']\n"
            "seen = {'cwd': os.getcwd(), **{n: os.environ.get(n) for n in names}}\n"
            f"{RUN_DIR}.joinpath('seen.json').write_text(json.dumps(seen))"
        )
        spec = self.spec(tmp_path, "j", body, env=env)
        spec = dataclasses.replace(spec, cwd=work)
        self.run_jobs(launcher, [spec])
        seen = json.loads((spec.paths.run_dir / "seen.json").read_text())
        assert seen == {
            "cwd": str(work),
            "CONTRACT_FROM_DRIVER": "driver value",
            "CONTRACT_SPEC": env["CONTRACT_SPEC"],
            "CONTRACT_OVERRIDDEN": "spec",
        }

    def test_argv_is_passed_through_without_a_shell(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        body = f"{RUN_DIR}.joinpath('argv.json').write_text(json.dumps(sys.argv[1:]))"
        spec = self.spec(tmp_path, "j", body, args=HOSTILE_ARGS)
        ended = self.run_jobs(launcher, [spec])
        assert ended["j"].state is JobState.COMPLETED
        assert json.loads((spec.paths.run_dir / "argv.json").read_text()) == list(HOSTILE_ARGS)
        assert not list(tmp_path.rglob("pwned*"))

    def test_missing_executable_fails_cleanly(self, launcher: BaseLauncher, tmp_path: Path) -> None:
        spec = self.spec(tmp_path, "j", "pass")
        spec = dataclasses.replace(spec, argv=(str(tmp_path / "no such program"),))
        error, ended = "", {}
        try:
            ended = self.run_jobs(launcher, [spec])
        except LaunchError as exc:  # refused at submission: fine, if it says why
            error = str(exc)
        if error:
            assert "no such program" in error
        else:
            assert ended["j"].state is JobState.FAILED

    # -- cancel and many jobs --------------------------------------------------------------------
    def test_cancel_stops_the_chosen_jobs(self, launcher: BaseLauncher, tmp_path: Path) -> None:
        specs = [self.spec(tmp_path, f"j{i}", STARTED + "time.sleep(600)") for i in range(2)]
        expected = {s.job_id for s in specs}
        free = launcher.capacity()
        if free is not None and free < 2:
            pytest.skip(f"needs two free slots, has {free}")
        launcher.submit(specs)
        for spec in specs:
            self.wait_for_file(spec.paths.run_dir / "started")
        launcher.cancel(["j0"])
        ended = self.poll_until_ended(launcher, {"j0"}, expected)
        assert list(ended) == ["j0"]
        assert ended["j0"].state is JobState.CANCELLED
        launcher.cancel()
        rest = self.poll_until_ended(launcher, {"j1"}, expected - {"j0"})
        assert rest["j1"].state is JobState.CANCELLED
        self.assert_quiet(launcher, {**ended, **rest})

    def test_cancel_kills_a_job_that_ignores_sigterm(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        body = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + STARTED + "time.sleep(600)"
        spec = self.spec(tmp_path, "j", body)
        launcher.submit([spec])
        self.wait_for_file(spec.paths.run_dir / "started")
        launcher.cancel(["j"])
        ended = self.poll_until_ended(launcher, {"j"}, {"j"})
        assert ended["j"].state is JobState.CANCELLED

    def test_cancel_of_finished_or_unknown_jobs_is_harmless(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        ended = self.run_jobs(launcher, [self.spec(tmp_path, "j", "pass")])
        launcher.cancel(["j", "never-submitted"])
        self.assert_quiet(launcher, ended)

    def test_many_jobs_each_end_exactly_once(self, launcher: BaseLauncher, tmp_path: Path) -> None:
        body = (
            "i = int(sys.argv[1])\n"
            f"{RUN_DIR}.joinpath('out').write_text(str(i * i))\n"
            "sys.exit(0 if i % 3 else 3)"
        )
        specs = [
            self.spec(tmp_path, f"job-{i}", body, args=[str(i)]) for i in range(self.n_many_jobs)
        ]
        ended = self.run_jobs(launcher, specs)
        for i, spec in enumerate(specs):
            want = JobState.RESUME if i % 3 == 0 else JobState.COMPLETED
            assert ended[spec.job_id].state is want
            assert (spec.paths.run_dir / "out").read_text() == str(i * i)

    # -- a later driver ------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("body", "state", "exit_code", "wait_for_end"),
        [
            pytest.param("pass", JobState.COMPLETED, 0, True, id="ended-0"),
            pytest.param("sys.exit(3)", JobState.RESUME, 3, True, id="ended-3"),
            pytest.param("sys.exit(5)", JobState.FAILED, 5, True, id="ended-5"),
            pytest.param(
                f"while not {RUN_DIR}.joinpath('go').exists(): time.sleep(0.01)",
                JobState.COMPLETED,
                0,
                False,
                id="still-running",
            ),
        ],
    )
    def test_reattach_takes_over_a_job_of_an_earlier_driver(
        self,
        launcher: BaseLauncher,
        tmp_path: Path,
        body: str,
        state: JobState,
        exit_code: int,
        wait_for_end: bool,
    ) -> None:
        spec = self.spec(tmp_path, "j", COUNT_START + STARTED + body)
        run_dir = spec.paths.run_dir
        native = launcher.submit([spec])
        self.wait_for_file(run_dir / "started")
        self.abandon(launcher)
        if wait_for_end:
            self.wait_for_job_end(spec)
        with self.make_launcher(tmp_path) as later:
            assert later.reattach(spec, native["j"]) is True
            (run_dir / "go").touch()
            ended = self.poll_until_ended(later, {"j"}, {"j"})
            assert (ended["j"].state, ended["j"].exit_code) == (state, exit_code)
            self.assert_quiet(later, ended)
        assert len((run_dir / "starts").read_text().split()) == 1  # adopted, not run again

    def test_time_limit_holds_while_no_driver_follows_the_job(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        body = (
            f"signal.signal(signal.SIGTERM, lambda *_: {RUN_DIR}.joinpath('term').touch())\n"
            + STARTED
            + "time.sleep(600)"
        )
        spec = self.spec(tmp_path, "j", COUNT_START + body, timeout_min=self.timeout_min)
        native = launcher.submit([spec])
        self.wait_for_file(spec.paths.run_dir / "started")
        self.abandon(launcher)
        self.wait_for_file(spec.paths.run_dir / "term")  # the signal came, though nobody watched
        with self.make_launcher(tmp_path) as later:
            assert later.reattach(spec, native["j"]) is True
            ended = self.poll_until_ended(later, {"j"}, {"j"})
            assert ended["j"].state is JobState.TIMEOUT, ended
        assert len((spec.paths.run_dir / "starts").read_text().split()) == 1

    def test_cancel_stops_a_reattached_job(self, launcher: BaseLauncher, tmp_path: Path) -> None:
        spec = self.spec(tmp_path, "j", STARTED + "time.sleep(600)")
        native = launcher.submit([spec])
        self.wait_for_file(spec.paths.run_dir / "started")
        self.abandon(launcher)
        with self.make_launcher(tmp_path) as later:
            assert later.reattach(spec, native["j"]) is True
            later.cancel(["j"])
            ended = self.poll_until_ended(later, {"j"}, {"j"})
            assert ended["j"].state is JobState.CANCELLED
            self.assert_quiet(later, ended)

    def test_reattach_to_a_job_never_submitted_is_refused(
        self, launcher: BaseLauncher, tmp_path: Path
    ) -> None:
        spec = self.spec(tmp_path, "j", "pass")
        assert launcher.reattach(spec, "") is False
        self.assert_quiet(launcher, {})
        assert not spec.paths.stdout.exists()

    def wait_for_job_end(self, spec: JobSpec) -> None:
        """Wait until the job's process is gone (best effort: ``started`` holds its pid)."""
        pid = int((spec.paths.run_dir / "started").read_text())
        deadline = time.monotonic() + self.wait_s
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, f"job {spec.job_id} still runs"
            time.sleep(0.02)
