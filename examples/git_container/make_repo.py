"""Create the small training repository (and a stand-in image) used by examples/git_container.

Usage (from the hpoptim repository root)::

    python examples/git_container/make_repo.py [DIR]

DIR (default ``results/git_container_src``) receives:

* ``train_repo/`` - a git repository with two commits on ``main``: the first is
  tagged ``v1.0`` (``train.py`` with ``CODE_VERSION = 1``), the second changes the
  training code (``CODE_VERSION = 2``). The example's config checks out ``v1.0``,
  so every job reports ``code_version`` 1 although the branch has moved on.
* ``image.sif`` - a placeholder image file for the Apptainer double in
  ``tests/fakes`` (it only checks that the file exists). With a real Apptainer,
  replace it by a real image that has ``python3`` (see README.md).

Author, committer and dates are fixed, so the commits (and the tag's SHA) are the
same on every machine. An existing repository is left as it is. Standard library
only; git is called with argument lists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

TRAIN_PY = '''\
"""A tiny training job: gradient descent with momentum on an ill-conditioned quadratic.

Follows the hpoptim job contract with the standard library only (the container
image needs nothing but python3): params file in, metrics.json out, exit code 0.
"""

import json
import os
import sys
from pathlib import Path

CODE_VERSION = {version}
N_STEPS = {n_steps}


def train(lr, momentum, n_steps):
    curvature = (1.0, 25.0)
    x, v = [1.0, 1.0], [0.0, 0.0]
    for _ in range(n_steps):
        for i, c in enumerate(curvature):
            v[i] = momentum * v[i] - lr * c * x[i]
            x[i] += v[i]
    return 0.5 * sum(c * xi * xi for c, xi in zip(curvature, x))


def main():
    doc = json.loads(Path(sys.argv[1]).read_text())
    params, job = doc["params"], doc["job"]
    loss = train(params["optimizer"]["lr"], params["optimizer"]["momentum"], N_STEPS)
    run_dir = Path(job["run_dir"])
    container = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    script = str(Path(__file__).resolve())
    provenance = {{"script": script, "cwd": os.getcwd(), "container": container}}
    (run_dir / "provenance.json").write_text(json.dumps(provenance))
    metrics = {{"loss": min(loss, 1e6), "code_version": CODE_VERSION}}
    tmp = run_dir / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics))
    os.replace(tmp, job["metrics_file"])


if __name__ == "__main__":
    main()
'''

README = "Training code for the hpoptim git_container example.\n"
IMAGE_TEXT = "placeholder image for the Apptainer double in tests/fakes; not a real image\n"


def _git(repo: Path, *args: str, day: int = 1) -> str:
    stamp = f"2024-01-0{day}T12:00:00+00:00"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "hpoptim example",
        "GIT_AUTHOR_EMAIL": "example@hpoptim.invalid",
        "GIT_COMMITTER_NAME": "hpoptim example",
        "GIT_COMMITTER_EMAIL": "example@hpoptim.invalid",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def make_repo(repo: Path) -> str:
    """Create the repository at ``repo``; return the SHA of the commit tagged ``v1.0``."""
    repo.mkdir(parents=True)
    _git(repo, "init", "--quiet", "--initial-branch", "main")
    (repo / "README.md").write_text(README)
    (repo / "train.py").write_text(TRAIN_PY.format(version=1, n_steps=20))
    _git(repo, "add", "README.md", "train.py")
    _git(repo, "commit", "--quiet", "-m", "Train with momentum for 20 steps")
    _git(repo, "tag", "--annotate", "v1.0", "--message", "First release")
    (repo / "train.py").write_text(TRAIN_PY.format(version=2, n_steps=5))
    _git(repo, "commit", "--quiet", "--all", "-m", "Train for 5 steps only", day=2)
    return _git(repo, "rev-parse", "v1.0^{commit}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default="results/git_container_src", type=Path)
    args = parser.parse_args(argv)
    repo, image = args.dir / "train_repo", args.dir / "image.sif"
    if (repo / ".git").is_dir():
        tagged = _git(repo, "rev-parse", "v1.0^{commit}")
        print(f"{repo} already exists; v1.0 is {tagged}")
    else:
        tagged = make_repo(repo)
        print(f"created {repo}: tag v1.0 = {tagged}, main = {_git(repo, 'rev-parse', 'HEAD')}")
    if not image.exists():
        image.write_text(IMAGE_TEXT)
        print(f"created {image} (a placeholder for the Apptainer double)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
