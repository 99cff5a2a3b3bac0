"""Container wrapping: golden argv, runtime resolution, and real runs through the double.

Golden files (``golden/*.txt``) hold one argv element per line, with the test's
temporary directory written as ``<TMP>``. Regenerate them after an intended change
with ``HPOPTIM_UPDATE_GOLDEN=1 python -m pytest tests/launchers/test_container.py``
and review the diff.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import LaunchError
from hpoptim.jobspec import ContainerOptions, JobPaths, JobSpec
from hpoptim.launchers.container import (
    container_argv,
    env_flag_value,
    evaluation_safe,
    image_sha256,
    job_side_paths,
    resolve_executable,
)
from tests.conftest import FAKES_DIR, FakeContainerRuntime

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
HOSTILE = "sp ace 'q' \"dq\" $(touch pwned) `id` ; & | ü ☃"

PROBE = """\
import json, os, sys
keys = json.loads(os.environ["PROBE_KEYS"])
out = {"argv": sys.argv[2:], "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in keys}}
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump(out, handle)
"""


def _layout(root: Path, name: str = "run_0.0-0") -> tuple[Path, Path, Path]:
    checkout = root / "checkout"
    results = root / "results"
    run_dir = results / "jobs" / "0" / name
    for d in (checkout, run_dir):
        d.mkdir(parents=True, exist_ok=True)
    return checkout, results, run_dir


def _spec(
    root: Path,
    image: Path,
    argv: tuple[str, ...] = ("python3", "train.py"),
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> JobSpec:
    checkout, results, run_dir = _layout(root)
    params = run_dir / "params.json"
    job_env = {"HPOPTIM_RUN_DIR": str(run_dir), "HPOPTIM_JOB_ID": "0_0.0-0"}
    job_env.update(env or {})
    return JobSpec(
        job_id="0_0.0-0",
        argv=(*argv, str(params)),
        cwd=checkout,
        paths=JobPaths(run_dir),
        env=job_env,
        container=ContainerOptions(image=image, **options),
        binds=(checkout, results),
    )


GOLDEN_CASES = [
    pytest.param("exec_plain", {}, id="exec_plain"),
    pytest.param("run", {"use_run": True}, id="run"),
    pytest.param("nv", {"nv": True}, id="nv"),
    pytest.param("containall", {"containall": True}, id="containall"),
    pytest.param("cleanenv", {"cleanenv": True}, id="cleanenv"),
    pytest.param("pwd", {"pwd": "/inside/work"}, id="pwd"),
    pytest.param("bind", {"bind": ("<TMP>/data", "<TMP>/data:/data:ro")}, id="bind"),
    pytest.param("options", {"options": ("--no-home", "--writable-tmpfs")}, id="options"),
    pytest.param(
        "env",
        {"env": (("OMP_NUM_THREADS", "1"), ("EQ", "a=b"), ("QUOTED", 'say "hi"'))},
        id="env",
    ),
    pytest.param(
        "everything",
        {
            "use_run": True,
            "nv": True,
            "containall": True,
            "cleanenv": True,
            "pwd": "/inside",
            "bind": ("<TMP>/data:/data",),
            "options": ("--no-eval",),
            "env": (("A", "1"),),
            "executable": "singularity",
        },
        id="everything",
    ),
]


@pytest.mark.parametrize(("name", "options"), GOLDEN_CASES)
def test_argv_matches_golden_file(
    name: str,
    options: dict[str, Any],
    tmp_path: Path,
    fake_container_runtime: FakeContainerRuntime,
) -> None:
    (tmp_path / "data").mkdir()
    image = tmp_path / "image.sif"
    image.write_bytes(b"img")
    resolved = {
        key: tuple(v.replace("<TMP>", str(tmp_path)) for v in value) if key == "bind" else value
        for key, value in options.items()
    }
    resolved.setdefault("executable", "apptainer")
    argv = container_argv(_spec(tmp_path, image, **resolved))
    source = str(job_side_paths()[0].parent)  # where hpoptim is installed or checked out
    text = "\n".join(argv).replace(str(tmp_path), "<TMP>").replace(source, "<SRC>") + "\n"
    golden = GOLDEN_DIR / f"{name}.txt"
    if os.environ.get("HPOPTIM_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def _runtime_dir(root: Path, names: tuple[str, ...]) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in names:
        (bin_dir / name).symlink_to(FAKES_DIR / "apptainer")
    return bin_dir


@pytest.mark.parametrize(
    ("on_path", "given", "expected"),
    [
        pytest.param(("apptainer", "singularity"), None, "apptainer", id="prefers-apptainer"),
        pytest.param(("singularity",), None, "singularity", id="only-singularity"),
        pytest.param(("apptainer",), None, "apptainer", id="only-apptainer"),
        pytest.param(("apptainer", "singularity"), "singularity", "singularity", id="given"),
    ],
)
def test_resolve_executable_finds_runtime(
    on_path: tuple[str, ...],
    given: str | None,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(_runtime_dir(tmp_path, on_path)))
    opts = ContainerOptions(image=tmp_path / "x.sif", executable=given)
    assert resolve_executable(opts) == expected


def test_resolve_executable_accepts_full_path(tmp_path: Path) -> None:
    exe = str(_runtime_dir(tmp_path, ("singularity",)) / "singularity")
    assert resolve_executable(ContainerOptions(image=tmp_path, executable=exe)) == exe


@pytest.mark.parametrize(
    ("given", "expected_words"),
    [
        pytest.param(None, ["apptainer and singularity", "PATH", "singularity"], id="none"),
        pytest.param("apptainer", ["='apptainer'", "PATH", "singularity.executable"], id="given"),
    ],
)
def test_resolve_executable_without_runtime_says_what_was_looked_for(
    given: str | None,
    expected_words: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(_runtime_dir(tmp_path, ())))
    with pytest.raises(LaunchError) as info:
        resolve_executable(ContainerOptions(image=tmp_path / "x.sif", executable=given))
    for word in expected_words:
        assert word in str(info.value)
    assert str(tmp_path / "bin") in str(info.value)


def test_tilde_in_image_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_container_runtime: FakeContainerRuntime
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (home / "img.sif").write_bytes(b"tilde image")
    argv = container_argv(_spec(tmp_path, Path("~/img.sif")))
    assert str(home / "img.sif") in argv
    assert not any(a.startswith("~") for a in argv)
    assert image_sha256(Path("~/img.sif")) == hashlib.sha256(b"tilde image").hexdigest()


def test_image_sha256_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    image = tmp_path / "big.sif"
    image.write_bytes(data)
    assert image_sha256(image) == hashlib.sha256(data).hexdigest()


def test_missing_image_is_a_clear_error(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    image = tmp_path / "nope" / "missing.sif"
    for call in (lambda: container_argv(_spec(tmp_path, image)), lambda: image_sha256(image)):
        with pytest.raises(LaunchError, match="singularity.image") as info:
            call()
        assert str(image) in str(info.value)


def test_binds_drop_nested_and_duplicate_paths(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    spec = _spec(tmp_path, fake_container_runtime.image, bind=(str(tmp_path / "checkout"),))
    spec = dataclasses.replace(spec, binds=(*spec.binds, spec.cwd, tmp_path / "results" / "jobs"))
    argv = container_argv(spec)
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    job_side = [str(p) for p in job_side_paths()]
    assert binds == [str(tmp_path / "checkout"), str(tmp_path / "results"), *job_side]


@pytest.mark.parametrize(
    ("bind", "match"),
    [
        pytest.param(("/no/such/dir:/x",), "does not exist on the host", id="missing-user-bind"),
        pytest.param(("/tmp,/no/such/other",), "does not exist on the host", id="comma-list"),
    ],
)
def test_bad_user_binds_are_rejected(
    bind: tuple[str, ...], match: str, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    with pytest.raises(LaunchError, match=match):
        container_argv(_spec(tmp_path, fake_container_runtime.image, bind=bind))


@pytest.mark.parametrize("char", [pytest.param(",", id="comma"), pytest.param(":", id="colon")])
def test_job_paths_the_runtime_cannot_bind_are_rejected(
    char: str, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    root = tmp_path / f"res{char}ults"
    with pytest.raises(LaunchError, match="--bind"):
        container_argv(_spec(root, fake_container_runtime.image))


def test_spec_without_container_is_refused(tmp_path: Path) -> None:
    spec = dataclasses.replace(_spec(tmp_path, tmp_path / "x.sif"), container=None)
    with pytest.raises(LaunchError, match="no container options"):
        container_argv(spec)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("A", "plain", id="plain"),
        pytest.param("A", "", id="empty"),
        pytest.param("A", "x=y=z", id="equals"),
        pytest.param("A", 'ends with "quote"', id="trailing-quote"),
        pytest.param("A", '"leading', id="leading-quote"),
        pytest.param("A", "a,b,c", id="commas"),
        pytest.param("A", 'a=b,"c",d', id="commas-quotes-equals"),
        pytest.param("A", HOSTILE, id="hostile"),
        pytest.param("A", "line\nbreak", id="newline"),
    ],
)
def test_env_values_reach_the_payload_unchanged(
    key: str, value: str, fake_container_runtime: FakeContainerRuntime, tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    code = "import json, os, sys; json.dump(os.environ.get(sys.argv[2]), open(sys.argv[1], 'w'))"
    encoded = env_flag_value(key, evaluation_safe(value))
    argv = ["apptainer", "exec", "--cleanenv", "--env", encoded]
    argv += [str(fake_container_runtime.image), "python3", "-c", code, str(out), key]
    subprocess.run(argv, check=True, timeout=60)
    assert json.loads(out.read_text(encoding="utf-8")) == value


def test_invalid_env_name_is_rejected() -> None:
    with pytest.raises(LaunchError, match="not valid"):
        env_flag_value("1BAD", "x")


def _probe_spec(root: Path, image: Path, args: tuple[str, ...], **options: Any) -> JobSpec:
    keys = ["HPOPTIM_RUN_DIR", "HPOPTIM_JOB_ID", "HOSTILE", "HOST_ONLY"]
    env = {"HOSTILE": HOSTILE, "PROBE_KEYS": json.dumps(keys)}
    spec = _spec(root, image, argv=(), env=env, **options)
    probe = spec.cwd / "probe.py"  # in the checkout, which the job binds
    probe.write_text(PROBE, encoding="utf-8")
    out = spec.paths.run_dir / "probe.json"
    return dataclasses.replace(spec, argv=(sys.executable, str(probe), str(out), *args))


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="exec"),
        pytest.param({"use_run": True}, id="run"),
        pytest.param({"cleanenv": True}, id="cleanenv"),
        pytest.param({"containall": True, "nv": True}, id="containall"),
    ],
)
def test_hostile_values_pass_through_the_double_unharmed(
    options: dict[str, Any],
    tmp_path: Path,
    fake_container_runtime: FakeContainerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / HOSTILE
    args = (HOSTILE, "--flag=$(echo x)", "a;b", "", "-B", "/nonexistent", "ü")
    spec = _probe_spec(root, fake_container_runtime.image, args, **options)
    monkeypatch.setenv("HOST_ONLY", "from host")
    proc = subprocess.run(container_argv(spec), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads((spec.paths.run_dir / "probe.json").read_text(encoding="utf-8"))
    assert seen["argv"] == list(args)
    assert seen["cwd"] == str(spec.cwd)
    assert seen["env"]["HOSTILE"] == HOSTILE
    assert seen["env"]["HPOPTIM_RUN_DIR"] == str(spec.paths.run_dir)
    clean = options.get("cleanenv") or options.get("containall")
    assert seen["env"]["HOST_ONLY"] == (None if clean else "from host")
    assert not list(tmp_path.rglob("pwned"))
    assert fake_container_runtime.calls()[-1]["argv"][1:] == container_argv(spec)[1:]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("raise SystemExit(0)", 0, id="ok"),
        pytest.param("raise SystemExit(3)", 3, id="resume"),
        pytest.param("raise SystemExit(1)", 1, id="failure"),
        pytest.param("raise SystemExit(77)", 77, id="other"),
        pytest.param("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 143, id="sigterm"),
        pytest.param("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 137, id="sigkill"),
    ],
)
def test_exit_code_and_signal_death_pass_through(
    script: str, expected: int, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    spec = _spec(tmp_path, fake_container_runtime.image, argv=(sys.executable, "-c", script))
    proc = subprocess.run(container_argv(spec), capture_output=True, timeout=60)
    assert proc.returncode == expected


def test_signal_sent_to_runtime_reaches_payload(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    marker = tmp_path / "got_signal"
    script = (
        "import signal, sys, time, pathlib\n"
        "def h(s, f):\n"
        f"    pathlib.Path({str(marker)!r}).write_text(str(s)); sys.exit(3)\n"
        "signal.signal(signal.SIGUSR1, h)\n"
        f"pathlib.Path({str(marker)!r} + '.ready').touch()\n"
        "time.sleep(60)\n"
    )
    spec = _spec(tmp_path, fake_container_runtime.image, argv=(sys.executable, "-c", script))
    proc = subprocess.Popen(container_argv(spec))
    try:
        _wait_for(Path(f"{marker}.ready"))
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=30) == 3
    finally:
        proc.kill()
        proc.wait()
    assert marker.read_text() == str(int(signal.SIGUSR1))


def _wait_for(path: Path, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.02)


class TestDoubleCli:
    """The double against the real CLI's documented behaviour (see its docstring)."""

    @pytest.mark.parametrize(
        ("args", "code", "stderr_start"),
        [
            pytest.param(
                ["exec", "--bogus", "IMG", "true"],
                1,
                'Error for command "exec": unknown flag: --bogus',
                id="unknown-flag",
            ),
            pytest.param(
                ["run", "-Z", "IMG"],
                1,
                "Error for command \"run\": unknown shorthand flag: 'Z' in -Z",
                id="unknown-shorthand",
            ),
            pytest.param(["exec", "IMG"], 1, 'Error for command "exec": requires', id="no-cmd"),
            pytest.param(
                ["exec", "--env", "NOEQUALS", "IMG", "true"],
                1,
                'Error for command "exec": invalid argument "NOEQUALS" for "--env" flag',
                id="bad-env",
            ),
            pytest.param(
                ["exec", "-B", "/no/such/src", "IMG", "true"],
                255,
                "FATAL:   container creation failed: mount hook function failure: "
                "mount /no/such/src->/no/such/src",
                id="missing-bind",
            ),
            pytest.param(
                ["exec", "IMG", "no-such-command-xyz"],
                255,
                'FATAL:   "no-such-command-xyz": executable file not found in $PATH',
                id="command-not-found",
            ),
        ],
    )
    def test_errors_look_like_the_real_cli(
        self,
        args: list[str],
        code: int,
        stderr_start: str,
        fake_container_runtime: FakeContainerRuntime,
    ) -> None:
        argv = [a.replace("IMG", str(fake_container_runtime.image)) for a in args]
        proc = subprocess.run(["apptainer", *argv], capture_output=True, text=True, timeout=30)
        assert proc.returncode == code
        assert proc.stderr.startswith(stderr_start)
        assert fake_container_runtime.calls()[-1]["argv"] == ["apptainer", *argv]

    def test_missing_image_is_fatal_255(
        self, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
    ) -> None:
        image = tmp_path / "x.sif"
        proc = subprocess.run(
            ["singularity", "exec", str(image), "true"], capture_output=True, text=True
        )
        assert proc.returncode == 255
        assert proc.stderr == (
            f"FATAL:   could not open image {image}: failed to retrieve path for {image}: "
            f"lstat {image}: no such file or directory\n"
        )

    def test_pwd_env_and_cleanenv(
        self, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
    ) -> None:
        code = "import json, os; print(json.dumps([os.getcwd(), dict(os.environ)]))"
        env = {**os.environ, "KEEP_ME": "host", "APPTAINERENV_FROM_PREFIX": "p", "TERM": "t"}
        base = ["apptainer", "exec", "--pwd", str(tmp_path), "--env", "A=1,B=x=y"]
        base += ["--bind", str(tmp_path)]  # -C hides the host's /tmp
        tail = [str(fake_container_runtime.image), "python3", "-c", code]
        results = {}
        for flags in ([], ["--cleanenv"], ["-C"]):
            proc = subprocess.run(
                [*base, *flags, *tail], env=env, capture_output=True, text=True, check=True
            )
            results[tuple(flags)] = json.loads(proc.stdout)
        for flags, (cwd, inner) in results.items():
            assert cwd == str(tmp_path)
            assert (inner["A"], inner["B"], inner["FROM_PREFIX"]) == ("1", "x=y", "p")
            assert inner["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            assert inner["TERM"] == "t"
            assert inner.get("KEEP_ME") == (None if flags else "host")
            assert inner.get("LANG") == ("C" if flags else os.environ.get("LANG"))
        assert not any(
            k.startswith("APPTAINERENV_") for _, inner in results.values() for k in inner
        )

    def test_version(self, fake_container_runtime: FakeContainerRuntime) -> None:
        proc = subprocess.run(["apptainer", "--version"], capture_output=True, text=True)
        assert proc.returncode == 0
        assert proc.stdout.startswith("apptainer version ")


def _real_runtime() -> str | None:
    for name in ("apptainer", "singularity"):
        found = shutil.which(name)
        if found and Path(found).resolve().parent != FAKES_DIR.resolve():
            return found
    return None


@pytest.mark.apptainer_real
@pytest.mark.skipif(
    _real_runtime() is None or not os.environ.get("HPOPTIM_TEST_IMAGE"),
    reason="needs a real apptainer/singularity on PATH and HPOPTIM_TEST_IMAGE=<a .sif with "
    "python3>; none on this machine, so these checks run against tests/fakes/apptainer only",
)
class TestRealRuntime:
    """The checks above, against a real runtime and an image that has python3."""

    def _image(self) -> Path:
        return Path(os.environ["HPOPTIM_TEST_IMAGE"])

    @pytest.mark.parametrize(("code", "expected"), [(0, 0), (3, 3), (1, 1)])
    def test_exit_code_passes_through(self, code: int, expected: int, tmp_path: Path) -> None:
        script = f"raise SystemExit({code})"
        spec = _spec(tmp_path, self._image(), argv=("python3", "-c", script))
        spec = dataclasses.replace(spec, container=_with_runtime(spec))
        assert subprocess.run(container_argv(spec), timeout=300).returncode == expected

    def test_hostile_values_pass_through(self, tmp_path: Path) -> None:
        root = tmp_path / HOSTILE
        args = (HOSTILE, "a;b", "ü")
        spec = _probe_spec(root, self._image(), args, cleanenv=True, options=("--no-eval",))
        spec = dataclasses.replace(
            spec, argv=("python3", *spec.argv[1:]), container=_with_runtime(spec)
        )
        subprocess.run(container_argv(spec), check=True, timeout=300)
        seen = json.loads((spec.paths.run_dir / "probe.json").read_text(encoding="utf-8"))
        assert seen["argv"] == list(args)
        assert seen["cwd"] == str(spec.cwd)
        assert seen["env"]["HOSTILE"] == HOSTILE


def _with_runtime(spec: JobSpec) -> ContainerOptions:
    assert spec.container is not None
    return dataclasses.replace(spec.container, executable=_real_runtime())


# -- the double isolates what the runtime isolates ----------------------------------------------
JOB_SIDE = (
    "import json, os, sys, hpoptim.job\n"
    "open(os.path.join(os.environ['HPOPTIM_RUN_DIR'], 'inside.json'), 'w').write(\n"
    "    json.dumps([sys.executable, hpoptim.job.RESUME_EXIT_CODE]))\n"
)


def _without_bind(argv: list[str], source: str) -> list[str]:
    at = argv.index(source)
    assert argv[at - 1] == "--bind"
    return argv[: at - 1] + argv[at + 1 :]


@pytest.mark.parametrize(
    "options", [pytest.param({}, id="exec"), pytest.param({"containall": True}, id="containall")]
)
def test_job_side_module_is_visible_inside_the_image(
    options: dict[str, Any], tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    spec = _spec(tmp_path, fake_container_runtime.image, argv=(sys.executable, "-c", JOB_SIDE))
    spec = dataclasses.replace(
        spec, container=ContainerOptions(image=spec.container.image, **options)
    )  # type: ignore[union-attr]
    argv = container_argv(spec)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads((spec.paths.run_dir / "inside.json").read_text(encoding="utf-8"))
    assert seen == ["/usr/bin/python3", 3]  # the image's interpreter, not the driver's


@pytest.mark.parametrize(
    ("options", "removed", "expected"),
    [
        # --containall: without it Apptainer binds $HOME and /tmp, where the source tree
        # (and so the package) may lie, which would make the package's bind unneeded
        pytest.param(
            {"containall": True}, "package", "No module named 'hpoptim'", id="hpoptim-package"
        ),
        pytest.param({"containall": True}, "run_dir", "No such file", id="run-dir-containall"),
    ],
)
def test_a_job_fails_when_a_required_bind_is_removed(
    options: dict[str, Any],
    removed: str,
    expected: str,
    tmp_path: Path,
    fake_container_runtime: FakeContainerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the runtime binds its working directory; not the source tree
    argv = (sys.executable, "-c", JOB_SIDE)
    spec = _spec(tmp_path, fake_container_runtime.image, argv=argv, **options)
    source = str(job_side_paths()[0]) if removed == "package" else str(tmp_path / "results")
    proc = subprocess.run(
        _without_bind(container_argv(spec), source), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert expected in proc.stderr


def test_the_drivers_interpreter_is_not_in_the_image(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # --containall: without it Apptainer binds $HOME and /tmp, where the virtualenv may lie
    image = str(fake_container_runtime.image)
    argv = ["apptainer", "exec", "--containall", image, sys.executable, "-c", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if Path(sys.executable).is_relative_to("/usr"):  # no virtualenv: the path is the image's too
        pytest.skip("the driver runs the system python, which the stand-in image holds")
    assert proc.returncode == 255
    assert proc.stderr == f"FATAL:   stat {sys.executable}: no such file or directory\n"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param([], "/inside/home", id="evaluated"),
        pytest.param(["--no-eval"], "$HOME", id="no-eval"),
    ],
)
def test_env_values_are_evaluated_like_apptainer(
    flags: list[str], expected: str, fake_container_runtime: FakeContainerRuntime
) -> None:
    code = "import os; print(os.environ['A'])"
    argv = ["apptainer", "exec", *flags, "--env", "HOME=/inside/home", "--env", "A=$HOME"]
    argv += [str(fake_container_runtime.image), "python3", "-c", code]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout == expected + "\n"


def test_unescaped_env_values_would_be_expanded(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    out = tmp_path / "env.json"
    code = "import json, os, sys; json.dump(os.environ['A'], open(sys.argv[1], 'w'))"
    argv = ["apptainer", "exec", "--env", env_flag_value("A", "x$HOME`true`")]
    argv += [str(fake_container_runtime.image), "python3", "-c", code, str(out)]
    subprocess.run(argv, check=True, timeout=60)
    assert json.loads(out.read_text(encoding="utf-8")) == f"x{os.path.expanduser('~')}"
