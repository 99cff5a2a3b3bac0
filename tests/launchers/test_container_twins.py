"""The two builders of a container command line agree.

A container job is built by the driver (:func:`hpoptim.launchers.container.container_argv`,
for a config's ``singularity`` section) or inside the job by
``wrappers/run_singularity.py`` (for LTTFS-style ``fixed_params.singularity.*``, where
hpoptim is not imported). Both are fed the same image, flags, binds, environment and
options here, and must give the same runtime command line, up to the order of binds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hpoptim import contract
from hpoptim.jobspec import ContainerOptions, JobPaths, JobSpec
from hpoptim.launchers.container import container_argv
from tests.conftest import FakeContainerRuntime

WRAPPER = Path(__file__).resolve().parents[2] / "wrappers" / "run_singularity.py"


@pytest.fixture(scope="module")
def wrapper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_singularity_twin", WRAPPER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def job(tmp_path: Path) -> tuple[Path, Path, Path]:
    cwd = tmp_path / "checkout"
    run_dir = tmp_path / "results" / "jobs" / "0" / "run_0.0-0"
    (cwd / "scripts").mkdir(parents=True)
    run_dir.mkdir(parents=True)
    script = cwd / "scripts" / "train.py"
    script.write_text("print('x')\n")
    return cwd, run_dir, script


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == flag]


def _without(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in flags:
            skip = True
        else:
            out.append(word)
    return out


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="plain"),
        pytest.param({"nv": True, "cleanenv": True, "use_run": True}, id="flags"),
        pytest.param({"containall": True, "pwd": "/inside"}, id="pwd"),
        pytest.param({"bind": ["/opt:/opt:ro"], "options": ["--writable-tmpfs"]}, id="binds"),
        pytest.param(
            {"env": {"TOKEN": 'a$b`c"d\\e', "PAIR": "k=v", "Q": 'ends"'}}, id="hostile-env"
        ),
        pytest.param({"env": {"TOKEN": "$HOME"}, "options": ["--no-eval"]}, id="no-eval-env"),
    ],
)
def test_driver_and_wrapper_build_the_same_command(
    settings: dict[str, Any],
    wrapper: ModuleType,
    job: tuple[Path, Path, Path],
    fake_container_runtime: FakeContainerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cwd, run_dir, script = job
    paths = JobPaths(run_dir)
    hp_env = {
        contract.ENV_PARAMS_FILE: str(paths.params_file),
        contract.ENV_RUN_DIR: str(run_dir),
        contract.ENV_JOB_ID: "0_0.0-0",
    }
    for key in [k for k in list(os.environ) if k.startswith(contract.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in hp_env.items():
        monkeypatch.setenv(key, value)
    image = str(fake_container_runtime.image)
    options = ContainerOptions(image=image, executable="apptainer", **settings)
    spec = JobSpec(
        job_id="0_0.0-0",
        argv=(sys.executable, str(script), str(paths.params_file)),
        cwd=cwd,
        paths=paths,
        env=hp_env,
        container=options,
    )
    driver = container_argv(spec)
    twin = wrapper.build_argv(
        {"image": image, "executable": "apptainer", **settings},
        script,
        paths.params_file,
        run_dir,
        cwd,
    )
    assert Path(driver[0]).name == Path(twin[0]).name == "apptainer"
    assert _without(driver[1:], ("--bind",)) == _without(twin[1:], ("--bind",))
    assert sorted(_pairs(driver, "--bind")) == sorted(_pairs(twin, "--bind"))
    assert driver[-3:] == ["python3", str(script), str(paths.params_file)]
