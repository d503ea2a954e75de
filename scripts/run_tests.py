"""Run every test suite of the project, each package in its own pytest process.

Each service owns its SQLModel metadata and its conftest, so packages run apart (as they deploy
apart). The closing line sums them up; a package that collects no tests counts as a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = [
    "libs/servicekit/tests",
    "services/registry/tests",
    "services/scoring/tests",
    "services/alerts/tests",
    "services/matching/tests",
    "gateway/tests",
    "tests",
]


def counts(junit: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not junit.exists():
        return totals
    root = ET.parse(junit).getroot()
    for suite in root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def main(argv: list[str]) -> int:
    wanted = [s for s in SUITES if not argv or any(s.startswith(a.rstrip("/")) for a in argv)]
    backend = "PostgreSQL" if os.environ.get("DATABASE_URL") else "the embedded default (SQLite)"
    print(f"running {len(wanted)} test suites on {backend}{' with Redis' if os.environ.get('REDIS_URL') else ''}", flush=True)
    passed = failed = skipped = 0
    bad: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for suite in wanted:
            if not (ROOT / suite).is_dir():
                print(f"!! {suite}: missing", flush=True)
                bad.append(suite)
                continue
            junit = Path(tmp) / (suite.replace("/", "_") + ".xml")
            t0 = time.monotonic()
            print(f"\n=== {suite}", flush=True)
            rc = subprocess.call(
                [sys.executable, "-m", "pytest", suite, "-q", "--junitxml", str(junit)], cwd=ROOT
            )
            c = counts(junit)
            n_failed = c["failures"] + c["errors"]
            n_passed = c["tests"] - n_failed - c["skipped"]
            passed, failed, skipped = passed + n_passed, failed + n_failed, skipped + c["skipped"]
            print(f"=== {suite}: {n_passed} passed, {n_failed} failed, {c['skipped']} skipped "
                  f"in {time.monotonic() - t0:.0f}s (exit {rc})", flush=True)
            if rc != 0 or c["tests"] == 0:  # exit 5 (no tests collected) is a failure too
                bad.append(suite)
    print(f"\nsuites failing: {', '.join(bad)}" if bad else "\nall suites passed", flush=True)
    print(f"{time.monotonic() - started:.0f}s in all", flush=True)
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
