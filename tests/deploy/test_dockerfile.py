"""The image builds every workspace member and runs unprivileged."""

from __future__ import annotations

import re
import tomllib

from checks import (
    REPO,
    UID,
)


def test_dockerfile_builds_every_workspace_member_and_runs_unprivileged():
    dockerfile = (REPO / "Dockerfile").read_text()
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]
    members = sorted(
        {
            p.parent.relative_to(REPO).as_posix()
            for pattern in workspace
            for p in REPO.glob(f"{pattern}/pyproject.toml")
        }
    )
    assert len(members) == 6
    for member in members:  # the dependency layer needs every member's manifest
        assert f"COPY {member}/pyproject.toml {member}/" in dockerfile, member
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS runtime$", dockerfile, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    assert dockerfile.count("uv sync --frozen --no-dev --all-packages") == 2
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users == [f"{UID}:{UID}"]
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", ".dockerignore is an allow-list: it ignores everything first"
    allowed_back = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    assert allowed_back == {"pyproject.toml", "uv.lock", "libs", "services", "gateway", "config"}
