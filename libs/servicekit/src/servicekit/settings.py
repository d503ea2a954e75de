"""Settings shared by every process: one pydantic-settings class per service, on this base.

Nothing else in the suite reads ``os.environ``. Production values come from the environment
and from mounted secrets (``SECRETS_DIR``, one file per field); without them each process falls
back to the embedded default (SQLite under ``var/``, no Redis, the gateway's development
issuer) and says so in its log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# Values that mean "nobody configured this": refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "dev", "development"})

DEV_PII_KEY_ID = "dev1"


def _secrets_dir() -> str | None:
    # Kubernetes mounts secrets as files; pydantic-settings reads one file per field name.
    path = os.environ.get("SECRETS_DIR", "/run/secrets/zhongfu")
    return path if Path(path).is_dir() else None


class ServiceSettings(BaseSettings):
    """What every process of the suite needs to know about its world."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", secrets_dir=_secrets_dir(), validate_default=True
    )

    service_name: str
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    # Database: PostgreSQL in production (one schema per service), a SQLite file otherwise.
    database_url: str | None = None
    db_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    var_dir: Path = Path("var")
    db_pool_size: int = 10
    redis_url: str | None = None

    # Identity: the city's OIDC issuer, or the gateway's development issuer when unset.
    oidc_issuer: str | None = None
    dev_issuer_url: str = "http://127.0.0.1:8000"
    oidc_audience: str = "zhongfu"
    jwks_cooldown_seconds: float = 30.0
    service_client_id: str | None = None
    service_client_secret: SecretStr | None = None

    # Telemetry: OTLP when an endpoint is configured, off otherwise.
    otel_exporter_otlp_endpoint: str | None = None
    otel_sample_ratio: float = Field(default=0.1, ge=0.0, le=1.0)

    # Requests
    max_body_bytes: int = 1_048_576
    cors_origins: list[str] = []

    # Personal data keys: {key id: base64 key}; the active id encrypts, all ids decrypt.
    pii_keys: dict[str, SecretStr] = {}
    pii_active_key_id: str | None = None
    blind_index_key: SecretStr | None = None

    # Events
    feed_retention_days: int = 14

    # Where the config/ folder (the city profile) lives.
    config_dir: Path = Path("config")

    @property
    def is_development(self) -> bool:
        return self.environment != "production"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the plain forms operators write; the suite talks asyncpg / aiosqlite.
            for plain in ("postgresql://", "postgres://", "postgresql+psycopg://"):
                if url.startswith(plain):
                    return "postgresql+asyncpg://" + url[len(plain):]
            if url.startswith("sqlite:///"):
                return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
            return url
        return f"sqlite+aiosqlite:///{(self.var_dir / f'{self.service_name}.db').as_posix()}"

    @property
    def is_postgres(self) -> bool:
        return self.effective_database_url.startswith("postgresql")

    @property
    def effective_db_schema(self) -> str:
        return self.db_schema or self.service_name

    @property
    def issuer(self) -> str:
        return (self.oidc_issuer or self.dev_issuer_url).rstrip("/")

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        problems = []
        if not self.database_url:
            problems.append("DATABASE_URL is required in production")
        if not self.oidc_issuer:
            problems.append("OIDC_ISSUER is required in production (the development issuer is off)")
        for name in ("service_client_secret", "blind_index_key"):
            value = getattr(self, name)
            if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                problems.append(f"{name.upper()} is a placeholder")
        for key_id, key in self.pii_keys.items():
            if key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS or key_id == DEV_PII_KEY_ID:
                problems.append(f"PII key {key_id!r} is a placeholder or the development key")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def describe_defaults(self) -> list[str]:
        """Lines for the start-up log: what fell back to the embedded default."""
        notes = []
        if not self.database_url:
            notes.append(f"DATABASE_URL unset: embedded SQLite at {self.effective_database_url}")
        if not self.redis_url:
            notes.append("REDIS_URL unset: no Redis; in-process waits and limits")
        if not self.oidc_issuer:
            notes.append(f"OIDC_ISSUER unset: trusting the development issuer at {self.dev_issuer_url}")
        if not self.otel_exporter_otlp_endpoint:
            notes.append("OTEL_EXPORTER_OTLP_ENDPOINT unset: traces are not exported")
        return notes
