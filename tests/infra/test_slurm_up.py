"""The package step of ``slurm_up.sh``, against an ``apt-get`` that behaves like one with
empty package lists (as on a fresh image): install fails until ``apt-get update`` ran."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "slurm_up.sh"

FAKE_APT_GET = """#!/bin/sh
echo "$*" >>"$APT_LOG"
case "$1" in
update) touch "$APT_LISTS"; exit 0 ;;
install)
    if [ ! -e "$APT_LISTS" ]; then
        echo "E: Unable to locate package slurm-wlm" >&2
        exit 100
    fi
    exit 0 ;;
esac
exit 1
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="slurm_up.sh runs as root")
def test_packages_are_installed_from_empty_package_lists(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(FAKE_APT_GET)
    fake.chmod(0o755)
    env = {
        # no slurmctld/munged/slurmdbd/mariadbd on this PATH, so the script installs them
        "PATH": f"{bin_dir}:/bin",
        "APT_LOG": str(tmp_path / "apt.log"),
        "APT_LISTS": str(tmp_path / "lists"),
        "SLURM_UP_PACKAGES_ONLY": "1",
    }
    proc = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["update", "install"]
    # the cluster, its authentication and its accounting (sacct)
    assert {"slurm-wlm", "munge", "slurmdbd", "mariadb-server"} <= set(calls[1].split())
