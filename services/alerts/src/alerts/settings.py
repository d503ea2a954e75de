"""Settings of the alerts service: where scoring is, how the background work paces itself."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from servicekit.settings import ServiceSettings

# The demo account of this service (config/demo-accounts.yaml); used only outside production.
DEMO_CLIENT_ID = "svc-alerts"
DEMO_CLIENT_SECRET = "demo-svc-alerts"


class AlertsSettings(ServiceSettings):
    service_name: str = "alerts"
    port: int = 8003

    # Scoring's feed of assessment.updated.
    scoring_url: str = "http://127.0.0.1:8002"
    scoring_batch_size: int = Field(default=1000, ge=1, le=1000)
    scoring_wait_seconds: float = Field(default=20.0, ge=0, le=30)
    consume_scoring: bool = True

    # The overdue sweeper (deadline warnings, overdue, escalation) and feed housekeeping.
    run_sweeper: bool = True
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    sweep_batch: int = Field(default=500, ge=1, le=10_000)

    # Webhook delivery.
    run_dispatcher: bool = True
    webhook_poll_seconds: float = Field(default=2.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_endpoints_in_flight: int = Field(default=32, ge=1, le=1000)
    webhook_per_endpoint_concurrency: int = Field(default=4, ge=1, le=64)
    webhook_claim_batch: int = Field(default=100, ge=1, le=1000)
    # Seconds after each failed attempt (full jitter on each); after the last, the delivery fails.
    # 15 attempts over about four and a half days.
    webhook_retry_schedule: list[float] = [
        5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400, 86400, 86400,
    ]
    webhook_require_https: bool | None = None  # default: required in production only
    # TEST ONLY: networks a webhook may reach although they are not public (a local receiver).
    # Refused in production, so the SSRF protection cannot be switched off there.
    webhook_test_allow_networks: list[str] = []

    @property
    def alerts_config_dir(self) -> Path:
        return self.config_dir / "alerts"

    @property
    def catalogues_dir(self) -> Path:
        return self.config_dir / "catalogues"

    @property
    def https_required(self) -> bool:
        return (not self.is_development) if self.webhook_require_https is None else self.webhook_require_https

    @model_validator(mode="after")
    def _alerts_rules(self) -> AlertsSettings:
        if self.webhook_test_allow_networks and self.environment == "production":
            raise ValueError("WEBHOOK_TEST_ALLOW_NETWORKS is for tests only and is refused in production")
        for net in self.webhook_test_allow_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError("WEBHOOK_TEST_ALLOW_NETWORKS holds an entry that is not a network") from exc
        if not self.webhook_retry_schedule:
            raise ValueError("WEBHOOK_RETRY_SCHEDULE needs at least one delay")
        if self.is_development and self.service_client_id is None:
            self.service_client_id = DEMO_CLIENT_ID
            self.service_client_secret = SecretStr(DEMO_CLIENT_SECRET)
        return self
