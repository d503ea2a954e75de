# syntax=docker/dockerfile:1
# One image for the whole suite: every process is `python -m <name> serve|migrate`.
# Build:  docker build -t zhongfu:dev .
# The runtime stage holds only the virtual environment and the city profile (config/): no uv,
# no sources, no compilers. It runs as uid 10001 and needs nothing writable but /tmp.

ARG PYTHON_IMAGE=python:3.11-slim

# uv comes from its official image, pinned to the version the repository is locked with.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Third-party dependencies first, from the lock alone: this layer survives source edits.
COPY pyproject.toml uv.lock ./
COPY libs/servicekit/pyproject.toml libs/servicekit/
COPY services/registry/pyproject.toml services/registry/
COPY services/scoring/pyproject.toml services/scoring/
COPY services/alerts/pyproject.toml services/alerts/
COPY services/matching/pyproject.toml services/matching/
COPY gateway/pyproject.toml gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace

# Then the workspace members, installed as ordinary (non-editable) packages so that the
# runtime stage needs the virtual environment only.
COPY libs/ libs/
COPY services/ services/
COPY gateway/ gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable


FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 zhongfu \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin zhongfu

# Owned by root and not writable by the process: the code is immutable at run time.
COPY --from=build /app/.venv /app/.venv
COPY config/ /app/config/

# Bytecode was compiled at build time; never try to write it on a read-only root.
# VAR_DIR: the embedded default (SQLite) lands on the writable /tmp when no DATABASE_URL is set.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    CONFIG_DIR=/app/config \
    VAR_DIR=/tmp/zhongfu \
    SECRETS_DIR=/run/secrets/zhongfu
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004

# The gateway by default; compose and Kubernetes name the process explicitly.
CMD ["python", "-m", "gateway", "serve"]
