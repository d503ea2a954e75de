"""The gateway's settings: upstream services, timeouts, limits, the development issuer."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from servicekit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """What the single entry of the suite needs; read from the environment like any service."""

    service_name: str = "gateway"
    port: int = 8000

    # Upstream services, by the names used in the route table.
    registry_url: str = "http://127.0.0.1:8001"
    scoring_url: str = "http://127.0.0.1:8002"
    alerts_url: str = "http://127.0.0.1:8003"
    matching_url: str = "http://127.0.0.1:8004"

    # Upstream timeouts. Read is per socket read, not per request: a streamed upload or a long
    # answer keeps going as long as bytes move. The long-poll feed is internal and never routed,
    # so no public call legitimately idles near 30 s.
    upstream_connect_timeout: float = Field(default=2.0, gt=0)
    upstream_read_timeout: float = Field(default=30.0, gt=0)
    # Pool per upstream; the keep-alive stays below uvicorn's 5 s default so the gateway closes
    # an idle connection before the service does (otherwise a request races the close).
    upstream_pool_per_host: int = Field(default=256, ge=1)
    upstream_keepalive_seconds: float = Field(default=4.0, gt=0)
    probe_timeout: float = Field(default=2.0, gt=0)
    # Plain proxied reads answered in protocol callbacks rather than as ASGI tasks
    # (gateway/fastpath.py); off sends every request the ASGI way.
    fast_path_enabled: bool = True

    # Bodies: max_body_bytes (base class) holds for every route but the batch ones.
    max_batch_body_bytes: int = Field(default=2 * 1024**3, ge=0)

    # Rate limits per client (the token's subject, else the client address).
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    rate_limit_enabled: bool = True
    rate_limit_key_prefix: str = (
        "zhongfu:gateway:rl:"  # Redis keys; several suites may share one Redis
    )

    # Successful token checks are remembered this long (never past the token's exp).
    token_cache_seconds: float = Field(default=60.0, ge=0)
    token_cache_size: int = Field(default=10_000, ge=0)

    # Merged OpenAPI document: refresh a service's document after this long; retry a missing one
    # no more often than every openapi_retry_seconds.
    openapi_ttl_seconds: float = Field(default=300.0, ge=0)
    openapi_retry_seconds: float = Field(default=5.0, ge=0)

    # One JSON line per request: INFO for what the gateway answered itself, DEBUG for answers
    # the service gave (the service logs those under the same X-Request-Id).
    access_log: bool = True

    # Default: the files of the city profile, in CONFIG_DIR (config/ in a checkout).
    demo_accounts_file: Path | None = None
    route_table_file: Path | None = None

    @model_validator(mode="after")
    def _files_default_to_the_config_dir(self) -> GatewaySettings:
        if self.demo_accounts_file is None:
            self.demo_accounts_file = self.config_dir / "demo-accounts.yaml"
        if self.route_table_file is None:
            self.route_table_file = self.config_dir / "routes.yaml"
        return self

    @property
    def dev_issuer_enabled(self) -> bool:
        return not self.oidc_issuer

    def upstream_urls(self) -> dict[str, str]:
        return {
            "registry": self.registry_url.rstrip("/"),
            "scoring": self.scoring_url.rstrip("/"),
            "alerts": self.alerts_url.rstrip("/"),
            "matching": self.matching_url.rstrip("/"),
        }
