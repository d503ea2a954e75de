"""``python -m gateway serve``: servicekit's runner (uvicorn with uvloop and httptools).

On SIGTERM the runner marks the app as shutting down (the gateway's /readyz fails at once),
stops accepting, lets in-flight requests finish within its grace period, then the lifespan
closes the upstream pool and the rate-limit store.
"""

from __future__ import annotations

import sys

from servicekit.logging import configure_logging
from servicekit.runner import main

from gateway.app import Gateway, create_app
from gateway.issuer import DemoAccountsError
from gateway.routes import RouteTableError
from gateway.settings import GatewaySettings


def build(settings: GatewaySettings) -> Gateway:
    configure_logging(settings.service_name, settings.log_level)
    try:
        return create_app(settings)
    except (RouteTableError, DemoAccountsError) as exc:
        # The operator's to fix: one clear line, no traceback.
        raise SystemExit(f"gateway: refusing to start: {exc}") from None


if __name__ == "__main__":
    sys.exit(main(settings_factory=GatewaySettings, app_factory=build, migrations_dir=None))  # type: ignore[arg-type]
