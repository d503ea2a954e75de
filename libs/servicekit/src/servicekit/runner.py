"""``python -m SERVICE serve|migrate``: the one entry point of every service process.

``serve`` runs uvicorn (uvloop, httptools) with a graceful shutdown: on SIGTERM the app is
marked not ready at once, uvicorn stops accepting, finishes in-flight requests within the grace
period, and the lifespan stops consumers after their current batch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn
from pydantic import ValidationError
from fastapi import FastAPI

from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

GRACE_SECONDS = 20


class _GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Readiness fails before anything else, so a load balancer stops sending work here.
        self._app.state.shutting_down = True
        super().handle_exit(sig, frame)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # An app may bring its own subclass of uvicorn's httptools protocol: the gateway does, and a
        # service with fast reads (servicekit.fastread).
        http=getattr(app, "http_protocol", "httptools"),
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACE_SECONDS,
        proxy_headers=False,
        server_header=False,
    )
    _GracefulServer(config, app).run()


def main(
    *,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    migrations_dir: Path | None,
    extra_commands: dict[str, Callable[[ServiceSettings, list[str]], int]] | None = None,
    argv: list[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {settings_factory.__module__.split('.')[0]}")
    commands = ["serve"] + (["migrate"] if migrations_dir else []) + sorted(extra_commands or {})
    parser.add_argument("command", choices=commands)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv if argv is not None else sys.argv[1:])
    try:
        settings = settings_factory()
    except ValidationError as exc:  # the operator's to fix: say what, never echo the values
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            print(f"configuration error: {where}: {error['msg']}", file=sys.stderr)
        return 2
    if ns.command == "migrate":
        from servicekit.migrations import upgrade

        assert migrations_dir is not None
        upgrade(migrations_dir, settings)
        print(f"{settings.service_name}: migrations at head ({settings.effective_database_url.split('@')[-1]})")
        return 0
    if ns.command == "serve":
        serve(app_factory(settings), settings)
        return 0
    assert extra_commands is not None
    return extra_commands[ns.command](settings, ns.args)
