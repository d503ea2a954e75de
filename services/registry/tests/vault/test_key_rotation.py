"""Key rotation: every sealed field re-encrypted under the new active key, resumable, blind
indexes and versions untouched, a row changed meanwhile left alone. Runs on a database of its
own, so that the other tests keep reading their rows under the development key."""

import base64
import os

import pytest
from sqlalchemy import select, update
from sqlmodel import SQLModel

from factories import create, feed_record, household, jsonl, member, resident_id, VILLAGE
from registry.app import MIGRATIONS, create_app
from registry.households.tables import Household
from registry import key_rotation
from registry.key_rotation import rotate, sealed_columns
from registry.members.tables import Member
from registry.settings import RegistrySettings
from registry.vault import Vault
from servicekit.crypto import FieldCipher, dev_keys
from servicekit.settings import DEV_PII_KEY_ID
from servicekit.db import Database
from servicekit.testing import TOWNSHIP, migrated_database, running_service, settings_for_tests


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


async def _sealed_values(db: Database) -> list[tuple[str, str, str, str]]:
    """(table, bound column, row id, token) of every sealed value in the database."""
    out = []
    async with db.sessionmaker() as session:
        for name, columns in sealed_columns(SQLModel.metadata).items():
            table = SQLModel.metadata.tables[name]
            for row in await session.execute(select(table.c.id, *(table.c[c] for c in columns))):
                out += [(name, bound, row.id, getattr(row, c)) for c, bound in columns.items() if getattr(row, c)]
    return out


async def test_rotation_reencrypts_everything_once_and_resumes(identity):
    dev = dev_keys()
    new_key = os.urandom(32)
    async with migrated_database(settings_for_tests(RegistrySettings), MIGRATIONS) as settings:
        # Rows written under the development key: households, members, a lead, a declaration.
        async with running_service(create_app, settings, identity) as svc:
            async with svc.client("town_worker", area=TOWNSHIP, subject="worker-1") as worker:
                for _ in range(3):
                    await create(worker, household(members=[member("head"), member("spouse")]))
            async with svc.client("department", dept="health", subject="dept-health") as dept:
                lead = feed_record("ROT-1", "major_illness_diagnosis", resident_id(), "cancer", area_code=VILLAGE)
                r = await dept.post("/api/v1/feeds/batches", content=jsonl([lead]),
                                    headers={"Content-Type": "application/x-ndjson"})
                assert r.json()["leads"] == 1
            async with svc.client("citizen", subject="citizen-1", resident_id=resident_id(), area=VILLAGE) as citizen:
                r = await citizen.post("/api/v1/declarations", json={
                    "kind": "difficulty", "name": "王五", "phone": "13800005678", "needs": ["medical"],
                    "description": "住院"})
                assert r.status_code == 201, r.text

        rotated = settings.model_copy(update={
            "pii_keys": {DEV_PII_KEY_ID: _b64(dev.field_keys[DEV_PII_KEY_ID]), "k2026": _b64(new_key)},
            "pii_active_key_id": "k2026", "blind_index_key": _b64(dev.blind_index_key)})
        vault = Vault.from_settings(rotated)
        db = Database.from_settings(rotated, pool_size=2)
        try:
            before = await _sealed_values(db)
            assert {t for t, *_ in before} >= {"households", "members", "leads", "declarations"}
            async with db.sessionmaker() as s:
                indexes = dict((await s.execute(select(Member.id, Member.resident_bidx))).all())
                versions = dict((await s.execute(select(Household.id, Household.version))).all())
            plain = {(t, c, i): vault.open(v, table=t, column=c, row_id=i) for t, c, i, v in before}

            # After the switch the service writes new values under the new key: such a row is not
            # touched (a household without a location: its only sealed field is the address).
            first_household = min(versions)
            async with db.sessionmaker() as s:
                await s.execute(update(Household).where(Household.id == first_household).values(
                    address_enc=vault.seal("合成路 2 号", table="households", column="address", row_id=first_household)))
                await s.commit()
            # Stopped after two pages (two transactions committed), then run again: everything
            # is rotated exactly once.
            real_page, calls = key_rotation._page, []

            async def dies_on_third(*args, **kw):
                calls.append(1)
                if len(calls) == 3:
                    raise RuntimeError("the process died")
                return await real_page(*args, **kw)

            key_rotation._page = dies_on_third
            try:
                with pytest.raises(RuntimeError, match="died"):
                    await rotate(db, vault, SQLModel.metadata, page=2)
            finally:
                key_rotation._page = real_page
            report = await rotate(db, vault, SQLModel.metadata, page=2)
            needing = len({(t, i) for t, _, i, _ in before}) - 1
            assert 0 < report.total < needing and report.skipped == 0
            async with db.sessionmaker() as s:
                assert len((await s.execute(select(Member.id).where(Member.name_enc.startswith("v1.k2026.")))).all()) == 6
            again = await rotate(db, vault, SQLModel.metadata, page=2)
            assert again.total == 0  # resumable: only values not yet under the active key are touched

            after = await _sealed_values(db)
            only_new = FieldCipher({"k2026": new_key}, "k2026")  # the old key can now be retired
            for t, c, i, v in after:
                assert v.startswith("v1.k2026."), (t, c)
                expected = "合成路 2 号" if (t, i) == ("households", first_household) and c == "address" else plain[(t, c, i)]
                assert only_new.decrypt(v, table=t, column=c, row_id=i) == expected
            async with db.sessionmaker() as s:
                assert dict((await s.execute(select(Member.id, Member.resident_bidx))).all()) == indexes
                assert dict((await s.execute(select(Household.id, Household.version))).all()) == versions
        finally:
            await db.dispose()

        # The service with both keys reads what was rotated.
        async with running_service(create_app, rotated, identity) as svc:
            async with svc.client("town_worker", area=TOWNSHIP, subject="worker-1") as worker:
                some = (await worker.get("/api/v1/households")).json()["items"][0]
                person = (await worker.get(f"/api/v1/households/{some['id']}")).json()["members"][0]
                r = await worker.post(f"/api/v1/members/{person['id']}/reveal",
                                      json={"purpose": "verification", "note": "after rotation"})
                assert r.status_code == 200 and r.json()["name"] in {"张三明"}, r.text
