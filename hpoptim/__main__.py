"""``python -m hpoptim``."""

from __future__ import annotations

import sys

from hpoptim.cli import main

if __name__ == "__main__":
    sys.exit(main())
