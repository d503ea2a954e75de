"""Run every benchmark (`python -m bench`) or one (`python -m bench NAME`).

A benchmark is a module ``bench/NAME.py`` with a ``main() -> dict`` that calls
``bench.common.report``. Exit status is 0 even when a goal is missed: the figures are the output.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

SKIP = {"common", "__main__", "__init__"}


def names() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in SKIP and not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    wanted = [a for a in argv if a] or names()
    unknown = [w for w in wanted if w not in names()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names())}")
        return 2
    for name in wanted:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
