"""``python -m gateway serve``: uvicorn (uvloop, httptools) with a draining graceful shutdown.

On SIGTERM /readyz fails at once while the gateway keeps serving for ``drain_seconds`` (so the
load balancer takes it out of rotation), then uvicorn stops accepting, in-flight requests get
``shutdown_timeout_seconds`` to finish, and the lifespan closes the upstream pool. A second
signal skips the drain.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import FrameType

import uvicorn

from gateway.app import Gateway, create_app
from gateway.issuer import DemoAccountsError
from gateway.logs import configure_logging
from gateway.routes import RouteTableError
from gateway.settings import GatewaySettings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Gateway, drain_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_seconds = drain_seconds
        self._drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_deadline is None and self._drain_seconds > 0:
            # Readiness fails before anything else; keep serving while the balancer notices.
            self._app.state.shutting_down = True
            self._drain_deadline = time.monotonic() + self._drain_seconds
            self._captured_signals.append(sig)
            return
        self._app.state.shutting_down = True
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_deadline is not None and time.monotonic() >= self._drain_deadline:
            self.should_exit = True
        return await super().on_tick(counter)


def serve(settings: GatewaySettings) -> int:
    configure_logging(settings.service_name, settings.log_level)
    try:
        app = create_app(settings)
    except (RouteTableError, DemoAccountsError) as exc:
        print(f"gateway: refusing to start: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,  # the gateway writes its own, without query strings
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # X-Forwarded-For is believed only from configured proxies, never from clients.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        server_header=False,
        backlog=2048,
    )
    DrainingServer(config, app, settings.drain_seconds).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("command", choices=["serve"])
    parser.parse_args(argv if argv is not None else sys.argv[1:])
    try:
        settings = GatewaySettings()
    except Exception as exc:  # a configuration error is the operator's to fix: say what, exit 2
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
