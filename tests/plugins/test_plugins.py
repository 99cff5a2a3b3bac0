"""Third-party launchers, samplers and stopping rules through entry points (hpoptim/plugins.py).

The package ``tests/plugins/conftest.py`` installs registers the ``nearby`` launcher,
the ``shuffled`` sampler and the ``ceiling`` rule; a run uses all three through the CLI,
and each passes the contract suite of its kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim import launchers, samplers, stopping
from hpoptim.cli import main
from hpoptim.errors import ConfigError
from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.local import LocalLauncher
from hpoptim.state.storage import read_journal
from tests.contracts.launcher import LauncherContract
from tests.contracts.sampler import SamplerContract
from tests.contracts.stopping import StoppingContract
from tests.plugins.conftest import PACKAGE, install

JOB = """\
from hpoptim import job
x = job.get_params()["x"]
job.report({"loss": x + 0.1 * job.iteration()})
if job.iteration() == 0:
    job.exit_for_resume()
"""


def _config(tmp_path: Path, **changes: Any) -> Path:
    (tmp_path / "job.py").write_text(JOB, encoding="utf-8")
    data = {
        "optimization_procedure_name": "plugins",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "number_of_samples": 8,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "training_iterations": 2,
        "seed": 3,
        **changes,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


PLUGGED = {
    "launcher": "nearby",
    "nearby": {"n_parallel_jobs": 2},
    "optimizer_str": "shuffled",
    "early_stopping": {"method": "ceiling", "ceiling": 0.5},
}


@pytest.mark.usefixtures("installed")
def test_a_run_uses_the_third_party_launcher_sampler_and_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(_config(tmp_path, **PLUGGED)), "-q"]) == 0
    root = tmp_path / "results" / "plugins"
    saved = json.loads((root / "config.json").read_text(encoding="utf-8"))
    assert {k: saved[k] for k in PLUGGED} == PLUGGED | {"nearby": {"n_parallel_jobs": 2}}
    settings = pd.read_csv(root / "settings.csv")
    assert len(settings) == 8
    stopped = settings["status"] == "stopped"
    # the ceiling rule stopped exactly the settings above it after their first iteration
    assert list(stopped) == list(settings["x"] > 0.5)
    assert 0 < stopped.sum() < 8
    assert set(settings.loc[stopped, "n_iterations"]) == {1}
    assert set(settings.loc[~stopped, "n_iterations"]) == {2}
    events = list(read_journal(root / "journal.jsonl"))
    assert sum(e["e"] == "judged" and e["stop"] for e in events) == stopped.sum()


@pytest.mark.usefixtures("installed")
def test_check_lists_the_plug_ins_among_the_valid_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launchers.available() == sorted([*launchers.LAUNCHERS, "nearby"])
    assert samplers.available()[-1] == "shuffled"
    assert stopping.available()[-1] == "ceiling"
    bad = {**PLUGGED, "early_stopping": {"method": "ceilin"}}
    assert main(["check", str(_config(tmp_path, **bad))]) == 2
    err = capsys.readouterr().err
    assert "early_stopping.method: must be 'none', 'successive_halving'" in err
    assert "'rank' or 'ceiling', got 'ceilin'; did you mean 'ceiling'?" in err


def test_without_the_package_its_names_are_unknown(site: Path) -> None:
    del site
    assert "nearby" not in launchers.available()
    assert samplers.load("shuffled") is None
    with pytest.raises(ConfigError, match="early_stopping.method: must be 'none'"):
        stopping.load("ceiling")


@pytest.mark.parametrize(
    ("group", "name", "path", "kind"),
    [
        pytest.param("hpoptim.launchers", "local", "launcher", "launcher", id="launcher"),
        pytest.param("hpoptim.samplers", "random", "optimizer_str", "sampler", id="sampler"),
        pytest.param(
            "hpoptim.early_stopping", "median", "early_stopping.method", "method", id="rule"
        ),
    ],
)
def test_a_plug_in_cannot_take_a_built_in_name(
    site: Path, group: str, name: str, path: str, kind: str
) -> None:
    install(site, "hpoptim_shadow", "", f"[{group}]\n{name} = {PACKAGE}:Anything\n")
    registry = {"launcher": launchers, "optimizer_str": samplers}.get(path, stopping)
    with pytest.raises(ConfigError) as info:
        registry.available()
    (problem,) = info.value.problems
    assert problem.path == path
    assert problem.message.startswith(
        f"{kind} plug-in {name!r} ({PACKAGE}:Anything, from package 'hpoptim_shadow') takes "
        f"the name of a built-in {kind}; a built-in cannot be replaced"
    )


def test_a_plug_in_that_is_not_a_launcher_is_refused(site: Path) -> None:
    install(
        site,
        "hpoptim_odd",
        "class Odd:\n    pass\n",
        "[hpoptim.launchers]\nodd = hpoptim_odd:Odd\n",
    )
    with pytest.raises(
        ConfigError, match=r"launcher: 'odd' \(hpoptim_odd:Odd\) is not a BaseLauncher"
    ):
        launchers.load("odd")


# -- each plug-in passes the contract suite of its kind --------------------------------------
@pytest.mark.usefixtures("installed")
class TestShuffledSamplerContract(SamplerContract):
    name = "shuffled"


@pytest.mark.usefixtures("installed")
class TestCeilingRuleContract(StoppingContract):
    method = "ceiling"
    section = {"ceiling": 4.5}


@pytest.mark.usefixtures("installed")
class TestNearbyLauncherContract(LauncherContract):
    timeout_min = 0.05
    signal_lead_s = 1.5

    def make_launcher(self, tmp_path: Path) -> BaseLauncher:
        cls = launchers.load("nearby")
        settings = cls.settings_model.model_validate({"n_parallel_jobs": 5})
        return cls.from_settings(settings, work_dir=tmp_path, name="plugins")

    def abandon(self, launcher: BaseLauncher) -> None:
        assert isinstance(launcher, LocalLauncher)
        launcher.detach()


def test_a_run_of_built_ins_reads_no_entry_points(tmp_path: Path) -> None:
    """Plug-ins are looked up only for a name that is not built in: a run that uses
    only built-ins never scans the installed packages (it costs start-up time)."""
    from hpoptim import plugins
    from hpoptim.config import load_config
    from hpoptim.run.assembly import make_sampler_for

    plugins.clear_cache()
    early = {"method": "median", "n_startup_settings": 2}
    cfg = load_config(_config(tmp_path, early_stopping=early, slurm={"partition": "x"}), ["seed=4"])
    make_sampler_for(cfg, 4)
    stopping.make_rule(cfg.early_stopping, n_iterations=2, minimize=True)
    launchers.load(cfg.launcher)
    assert plugins._entry_points.cache_info().currsize == 0
