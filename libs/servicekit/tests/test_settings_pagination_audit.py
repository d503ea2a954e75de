"""Settings refuse placeholders in production; cursors are opaque; the audit log is append-only."""

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from servicekit.audit import AuditAction, record
from servicekit.auth import Caller, Role
from servicekit.errors import BadRequest
from servicekit.pagination import PageParams, decode_cursor, encode_cursor, paginate
from servicekit.settings import ServiceSettings
from servicekit.tables import AuditRecord


def test_production_refuses_placeholders_and_missing_settings():
    with pytest.raises(ValidationError) as err:
        ServiceSettings(service_name="x", environment="production", service_client_secret="changeme",
                        pii_keys={"dev1": "abc"}, database_url=None, oidc_issuer=None)
    text = str(err.value)
    assert "DATABASE_URL is required" in text and "OIDC_ISSUER is required" in text
    assert "SERVICE_CLIENT_SECRET is a placeholder" in text and "dev1" in text


def test_production_accepts_real_settings():
    s = ServiceSettings(service_name="x", environment="production", database_url="postgresql://u@db/x",
                        oidc_issuer="https://id.example.test", service_client_secret="s3cr3t-from-a-vault")
    assert s.effective_database_url.startswith("postgresql+asyncpg://") and s.effective_db_schema == "x"


def test_development_falls_back_to_embedded_and_says_so():
    s = ServiceSettings(service_name="registry", database_url=None, redis_url=None)
    assert s.effective_database_url.endswith("var/registry.db")
    assert any("DATABASE_URL unset" in n for n in s.describe_defaults())


def test_configuration_errors_never_print_secret_values(capsys, monkeypatch):
    from servicekit.runner import main

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "changeme")
    monkeypatch.setenv("PII_KEYS", '{"k1": "super-secret-key-material"}')
    monkeypatch.delenv("DATABASE_URL", raising=False)
    rc = main(settings_factory=lambda: ServiceSettings(service_name="x"), app_factory=None, migrations_dir=None,
              argv=["serve"])
    err = capsys.readouterr().err
    assert rc == 2 and "DATABASE_URL is required" in err
    assert "super-secret-key-material" not in err and "changeme" not in err


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor(["2026-11-28", "abc", 3])) == ["2026-11-28", "abc", 3]
    for bad in ("%%%", "bm90IGpzb24", encode_cursor.__name__):
        with pytest.raises(BadRequest):
            decode_cursor(bad)


def test_paginate_gives_next_cursor_only_when_more():
    rows = [{"id": i} for i in range(4)]
    page, nxt = paginate(rows, PageParams(limit=3, after=None), key=lambda r: [r["id"]])
    assert [r["id"] for r in page] == [0, 1, 2] and decode_cursor(nxt) == [2]
    page, nxt = paginate(rows[:3], PageParams(limit=3, after=None), key=lambda r: [r["id"]])
    assert nxt is None


async def test_audit_log_is_append_only(kit):
    caller = Caller(subject="worker-1", role=Role.town_worker, area="330106001000")
    async with kit.db.sessionmaker() as s:
        entry = record(s, caller, AuditAction.read_unmasked, "member", "m-1", ["name", "resident_id"], purpose="home visit")
        await s.commit()
        assert entry.id is not None
    for statement in ("UPDATE audit_log SET purpose = 'rewritten'", "DELETE FROM audit_log"):
        async with kit.db.sessionmaker() as s:
            with pytest.raises(sa.exc.DBAPIError):
                await s.execute(sa.text(statement))
                await s.commit()
    async with kit.db.sessionmaker() as s:
        kept = (await s.execute(sa.select(AuditRecord).where(AuditRecord.resource_id == "m-1"))).scalar_one()
    assert kept.purpose == "home visit" and kept.fields == ["name", "resident_id"]
