"""Recording a run's :class:`~hpoptim.state.provenance.Provenance` when it starts.

The checkout (or working directory) is described as it is; a dirty tree's changes
are stored as a patch in the run directory's owner-only ``provenance/``; the image
is resolved and digested; the versions are added. The record is journaled in the
``run_started`` event by the session.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpoptim import __version__
from hpoptim.config import RunConfig
from hpoptim.log import get_logger
from hpoptim.source.repo import CheckoutInfo
from hpoptim.source.snapshot import PATCH_DIR_NAME, patch_sha256, write_patch
from hpoptim.state.provenance import Provenance, SourceKind
from hpoptim.state.storage import ResultsLayout

logger = get_logger(__name__)


def excluded_paths(layout: ResultsLayout) -> tuple[Path, ...]:
    """Paths that are not the jobs' code though they may lie in the tree: the results."""
    return (layout.root.parent,)


def record_provenance(info: CheckoutInfo, cfg: RunConfig, layout: ResultsLayout) -> Provenance:
    """Describe what the run's jobs run, storing a dirty tree's patch; warn if dirty.

    Raises:
        CheckoutError: git cannot make the patch.
        LaunchError: The configured image cannot be read.
    """
    from hpoptim.launchers.container import configured_image, image_sha256

    section = cfg.singularity
    image = configured_image(section.image if section else None, cfg.fixed_params)
    patch = None
    if info.dirty and info.top is not None:
        patch = write_patch(
            info.top, info.changes, excluded_paths(layout), layout.root / PATCH_DIR_NAME
        )
    subdir = ""
    if info.top is not None and not info.cloned:
        subdir = Path(os.path.relpath(info.root, info.top)).as_posix().removeprefix(".")
    provenance = Provenance(
        source=_kind(info),
        root=str(info.root),
        repository=info.url,
        subdir=subdir,
        commit=info.commit,
        changes=info.changes,
        patch=patch,
        image=None if image is None else str(Path(os.path.expanduser(image)).resolve()),
        image_sha256=None if image is None else image_sha256(image),
        hpoptim_version=__version__,
        driver_python=sys.version.split()[0],
    )
    if provenance.dirty:
        logger.warning("%s differs from its commit; %s", info.root, provenance.code_line())
    elif provenance.commit is None:  # shown by status and the reports; the console stays calm
        logger.debug("%s", provenance.code_line())
    return provenance


def _kind(info: CheckoutInfo) -> SourceKind:
    if info.cloned:
        return SourceKind.CLONE
    return SourceKind.NO_REPOSITORY if info.top is None else SourceKind.WORKING_DIR


def warn_if_changed(info: CheckoutInfo, started: Mapping[str, Any], layout: ResultsLayout) -> None:
    """On resume: warn when the working tree is no longer the one the run started with.

    The record describes the tree at the start; jobs started from now on run the tree
    as it is, so a change since is said once, at the start of this driver.

    Raises:
        CheckoutError: git cannot read the tree.
    """
    recorded = Provenance.from_run_info(started)
    if recorded is None or info.cloned or info.top is None:
        return  # a clone is pinned to the recorded commit; outside git nothing can be told
    same = info.commit == recorded.commit and info.changes == recorded.changes
    if same and info.dirty and recorded.patch is not None and recorded.patch.sha256:
        now = patch_sha256(info.top, info.changes, excluded_paths(layout))
        same = now == recorded.patch.sha256
    if not same:
        logger.warning(
            "%s is no longer the tree this run started with (now: commit %s%s); jobs started "
            "from now on run it as it is, while the run's provenance records its start",
            info.root,
            info.commit,
            f" plus {info.changes.describe()}" if info.dirty else ", clean",
        )
