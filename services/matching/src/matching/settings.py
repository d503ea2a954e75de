"""Settings of the matching service: where alerts is, how the engine is paced, where the profile is."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from servicekit.settings import ServiceSettings

# The demo account of this service (config/demo-accounts.yaml); used only outside production.
DEMO_CLIENT_ID = "svc-matching"
DEMO_CLIENT_SECRET = "demo-svc-matching"


class MatchingSettings(ServiceSettings):
    service_name: str = "matching"
    port: int = 8004

    # Alerts' feed of alert.disposed (service referrals become needs).
    alerts_url: str = "http://127.0.0.1:8003"
    alerts_batch_size: int = Field(default=500, ge=1, le=1000)
    alerts_wait_seconds: float = Field(default=20.0, ge=0, le=30)
    consume_alerts: bool = True

    # Every this many seconds one replica (a leased job) runs the engine incrementally if needs or
    # offers changed since its last run, and at least every `auto_match_catch_up_seconds` (a new
    # period frees capacity); 0 = never on its own (only POST /api/v1/matches/runs).
    auto_match_interval_seconds: float = Field(default=5.0, ge=0, le=3600)
    auto_match_catch_up_seconds: float = Field(default=900.0, gt=0)

    # The development seed (the demo partner, approved); on by default in development only.
    seed_demo: bool | None = None

    # Override the profile's files (tests use a small city); default: config_dir/...
    areas_file: Path | None = None
    sites_file: Path | None = None

    @property
    def seeds_demo(self) -> bool:
        return self.environment == "development" if self.seed_demo is None else self.seed_demo

    @model_validator(mode="after")
    def _demo_credentials(self) -> MatchingSettings:
        if self.environment == "development" and self.service_client_id is None:
            self.service_client_id = DEMO_CLIENT_ID
            self.service_client_secret = SecretStr(DEMO_CLIENT_SECRET)
        return self
