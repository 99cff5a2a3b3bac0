"""A third-party package, installed for the test: a launcher, a sampler and a stopping rule
registered through entry points (a ``.dist-info`` with ``entry_points.txt`` on a
temporary ``sys.path`` entry, as pip leaves an installed package)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpoptim import plugins

PACKAGE = "hpoptim_nearby"

MODULE = '''\
"""Third-party hpoptim plug-ins: the ``nearby`` launcher, the ``shuffled`` sampler and the
``ceiling`` early-stopping rule."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from hpoptim.launchers.local import LocalLauncher, LocalSettings
from hpoptim.samplers.random import RandomSampler
from hpoptim.stopping.base import BaseStoppingRule, StoppingSettings


class NearbySettings(LocalSettings):
    """The nearby launcher (``nearby``): local jobs under another name."""

    section_path: ClassVar[str] = "nearby"


class NearbyLauncher(LocalLauncher):
    name = "nearby"
    settings_model = NearbySettings


class ShuffledSampler(RandomSampler):
    name: ClassVar[str] = "shuffled"


class CeilingSettings(StoppingSettings):
    """Stop a setting whose value is worse than a ceiling."""

    method: Literal["ceiling"] = Field("ceiling", description="Selects this rule.")
    ceiling: float = Field(1.0, description="Stop when the value is worse than this.")


class CeilingRule(BaseStoppingRule):
    name: ClassVar[str] = "ceiling"
    settings_model: ClassVar[type[StoppingSettings]] = CeilingSettings
    settings: CeilingSettings

    def judge(self, sid: int, step: int, value: float) -> bool:
        ceiling = self.settings.ceiling
        return value > ceiling if self.minimize else value < ceiling

    def finished(self, sid: int, value: float | None, *, stopped: bool) -> None:
        pass
'''

ENTRY_POINTS = f"""\
[hpoptim.launchers]
nearby = {PACKAGE}:NearbyLauncher

[hpoptim.samplers]
shuffled = {PACKAGE}:ShuffledSampler

[hpoptim.early_stopping]
ceiling = {PACKAGE}:CeilingRule
"""


def install(root: Path, name: str, module: str, entry_points: str) -> Path:
    """Lay ``name`` out in ``root`` as pip installs a package: module + dist-info."""
    (root / f"{name}.py").write_text(module, encoding="utf-8")
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n"
    (info / "METADATA").write_text(metadata, encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points), encoding="utf-8")
    return root


@pytest.fixture
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty directory on ``sys.path``, with the entry points read afresh."""
    root = tmp_path_factory.mktemp("site")
    sys.path.insert(0, str(root))
    plugins.clear_cache()
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "") or "").startswith(str(root)):
                del sys.modules[name]
        plugins.clear_cache()


@pytest.fixture
def installed(site: Path) -> Path:
    """The third-party package installed in ``site``."""
    return install(site, PACKAGE, MODULE, ENTRY_POINTS)
