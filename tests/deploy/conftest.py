"""tests/deploy: offline checks of the kustomize overlays, compose.yaml and the Dockerfile."""

import sys
from pathlib import Path

# The shared checkers (checks.py) are imported by name from the test modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
