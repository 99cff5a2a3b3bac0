"""The job contract (hpoptim/contract.py): its helpers, and every copy of its names.

``wrappers/`` import nothing of hpoptim (a user's checkout may carry old copies of
them); the names they spell out must be the contract's.
"""

from __future__ import annotations

import json
import os
import runpy
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hpoptim import contract
from hpoptim.jobspec import JobPaths, JobState
from hpoptim.launchers import node

ROOT = Path(__file__).resolve().parents[1]


def _wrapper(name: str) -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "wrappers" / name), run_name=f"_wrapper_{name[:-3]}")


@pytest.mark.parametrize(
    ("wrapper", "names"),
    [
        pytest.param(
            "run_singularity.py",
            (
                "ENV_PARAMS_FILE",
                "ENV_RUN_DIR",
                "STDOUT_FILE_NAME",
                "STDERR_FILE_NAME",
                "SETUP_ERROR_EXIT_CODE",
                "ENV_PREFIX",
            ),
            id="run_singularity",
        ),
        pytest.param(
            "run_learning.py",
            ("ENV_PARAMS_FILE", "METRICS_FILE_NAME", "RESUME_EXIT_CODE", "SETUP_ERROR_EXIT_CODE"),
            id="run_learning",
        ),
        pytest.param("run_mle.py", ("ENV_PARAMS_FILE", "SETUP_ERROR_EXIT_CODE"), id="run_mle"),
    ],
)
def test_the_wrappers_copies_are_the_contracts_names(wrapper: str, names: tuple[str, ...]) -> None:
    module = _wrapper(wrapper)
    assert {n: module[n] for n in names} == {n: getattr(contract, n) for n in names}


def test_every_job_variable_has_the_prefix_and_a_context_key() -> None:
    assert all(name.startswith(contract.ENV_PREFIX) for name in contract.JOB_ENV_NAMES)
    keys = {name.removeprefix(contract.ENV_PREFIX).lower() for name in contract.JOB_ENV_NAMES}
    assert keys - set(contract.JOB_CONTEXT_KEYS) == {"params_file"}


def test_the_drivers_names_are_the_contracts() -> None:
    paths = JobPaths(Path("/r"))
    assert (paths.params_file.name, paths.metrics_file.name) == (
        contract.PARAMS_FILE_NAME,
        contract.METRICS_FILE_NAME,
    )
    assert (paths.stdout.name, paths.stderr.name) == (
        contract.STDOUT_FILE_NAME,
        contract.STDERR_FILE_NAME,
    )
    assert (node.EXIT_FILE_NAME, node.PROCESS_FILE_NAME) == (
        contract.EXIT_STATUS_FILE_NAME,
        contract.PROCESS_FILE_NAME,
    )
    assert JobState.from_exit_code(contract.RESUME_EXIT_CODE) is JobState.RESUME
    assert JobState.from_exit_code(contract.COMPLETED_EXIT_CODE) is JobState.COMPLETED


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        pytest.param(["a", "p.json"], {}, "p.json", id="last-argument"),
        pytest.param(["p.json"], {"HPOPTIM_PARAMS_FILE": "e.json"}, "e.json", id="env-first"),
        pytest.param(["p.json"], {"HPOPTIM_PARAMS_FILE": ""}, "p.json", id="empty-env-ignored"),
    ],
)
def test_params_file_path(argv: list[str], environ: dict[str, str], expected: str) -> None:
    assert contract.params_file_path(argv, environ) == expected


@pytest.mark.parametrize("argv", [pytest.param([], id="none"), pytest.param(["x.txt"], id="txt")])
def test_no_params_file_is_a_contract_error(argv: list[str]) -> None:
    with pytest.raises(contract.JobContractError, match="set HPOPTIM_PARAMS_FILE"):
        contract.params_file_path(argv, {})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("{", "cannot read params file", id="bad-json"),
        pytest.param('{"params": {}}', "is not an hpoptim params file", id="no-job"),
        pytest.param("[]", "is not an hpoptim params file", id="not-object"),
    ],
)
def test_unusable_params_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / contract.PARAMS_FILE_NAME
    path.write_text(text, encoding="utf-8")
    with pytest.raises(contract.JobContractError, match=match):
        contract.load_params(path)


@pytest.mark.parametrize(
    ("metrics", "error"),
    [
        pytest.param({"a": True}, TypeError, id="bool"),
        pytest.param({"a": "1"}, TypeError, id="string"),
        pytest.param({"a": float("nan")}, ValueError, id="nan"),
        pytest.param({"a": float("inf")}, ValueError, id="inf"),
    ],
)
def test_check_metrics_refuses(metrics: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="metric 'a' must be"):
        contract.check_metrics(metrics)


def test_check_metrics_gives_floats() -> None:
    checked = contract.check_metrics({"a": 1, "b": 2.5})
    assert checked == {"a": 1.0, "b": 2.5}
    assert all(type(v) is float for v in checked.values())


def test_write_json_atomic_follows_the_umask_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / contract.METRICS_FILE_NAME
    old = os.umask(0o027)
    try:
        contract.write_json_atomic(target, {"loss": 1.0})
    finally:
        os.umask(old)
    assert json.loads(target.read_text(encoding="utf-8")) == {"loss": 1.0}
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_write_json_atomic_removes_its_temporary_on_failure(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        contract.write_json_atomic(tmp_path / "m.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []


_LOADED = (
    "import sys\n"
    "std = {*sys.stdlib_module_names, '__main__'}\n"
    "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] not in std)))\n"
)


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        pytest.param(
            f"import hpoptim.job\n{_LOADED}", "hpoptim hpoptim.contract hpoptim.job", id="job"
        ),
        pytest.param(
            f"import hpoptim.compat\n{_LOADED}",
            "hpoptim hpoptim.compat hpoptim.contract",
            id="compat",
        ),
        pytest.param(
            f"import hpoptim.contract\n{_LOADED}", "hpoptim hpoptim.contract", id="contract"
        ),
        pytest.param(
            # the supervisor's own start: a script under -S -I that finds its package itself
            "import runpy, sys\n"
            f"runpy.run_path({str(ROOT / 'hpoptim/launchers/node.py')!r}, run_name='node')\n"
            f"{_LOADED}",
            "hpoptim hpoptim.contract",
            id="node-script",
        ),
        pytest.param(
            f"import runpy\nrunpy.run_path({str(ROOT / 'wrappers/run_learning.py')!r})\n{_LOADED}",
            "",
            id="run_learning",
        ),
        pytest.param(
            f"import runpy\nrunpy.run_path({str(ROOT / 'wrappers/run_mle.py')!r})\n{_LOADED}",
            "",
            id="run_mle",
        ),
        pytest.param(
            f"import runpy\nrunpy.run_path({str(ROOT / 'wrappers/run_singularity.py')!r})\n"
            f"{_LOADED}",
            "",
            id="run_singularity",
        ),
    ],
)
def test_the_job_side_loads_only_the_standard_library_and_the_contract(
    code: str, allowed: str
) -> None:
    """Started as a job would be in an image without hpoptim's dependencies: no site
    packages (-S), no environment or user paths (-I), the package directory at the end."""
    setup = f"import sys\nsys.path.append({str(ROOT)!r})\n"
    if "runpy" in code:
        setup = ""  # the node script finds the package itself; the wrappers need none
    out = subprocess.run(
        [sys.executable, "-S", "-I", "-c", setup + code],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert out.stdout.split() == allowed.split()
