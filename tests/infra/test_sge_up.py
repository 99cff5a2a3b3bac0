"""The package step of ``sge_up.sh``, against an ``apt-get`` that behaves like one with
empty package lists (as on a fresh image), and a ``debconf-set-selections`` that records
the answers the packages' questions get."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "sge_up.sh"

FAKE_APT_GET = """#!/bin/sh
echo "$*" >>"$APT_LOG"
case "$1" in
update) touch "$APT_LISTS"; exit 0 ;;
install)
    if [ ! -e "$APT_LISTS" ]; then
        echo "E: Unable to locate package gridengine-master" >&2
        exit 100
    fi
    exit 0 ;;
esac
exit 1
"""
FAKE_DEBCONF = """#!/bin/sh
cat >>"$DEBCONF_LOG"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="sge_up.sh runs as root")
def test_packages_are_installed_non_interactively(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("apt-get", FAKE_APT_GET), ("debconf-set-selections", FAKE_DEBCONF)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for name in ("bash", "cat", "hostname", "id", "touch"):  # no Grid Engine tool here
        (bin_dir / name).symlink_to(subprocess.check_output(["which", name], text=True).strip())
    env = {
        "PATH": str(bin_dir),
        "APT_LOG": str(tmp_path / "apt.log"),
        "APT_LISTS": str(tmp_path / "lists"),
        "DEBCONF_LOG": str(tmp_path / "debconf.log"),
        "SGE_UP_PACKAGES_ONLY": "1",
    }
    proc = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["update", "install"]
    assert {"gridengine-master", "gridengine-exec", "gridengine-client"} <= set(calls[1].split())
    answers = (tmp_path / "debconf.log").read_text().splitlines()
    # the packages create the cell `default` with this host as its master, unasked
    host = socket.gethostname()
    assert f"gridengine-master shared/gridenginemaster string {host}" in answers
    assert "gridengine-common shared/gridengineconfig boolean true" in answers
    assert "gridengine-common shared/gridenginecell string default" in answers
