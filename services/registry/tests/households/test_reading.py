"""Reading a household by id: jurisdiction, roles, and the audit record written with the read
(on PostgreSQL the read, then its record committed with those of other reads of the moment before
the answer goes out; on SQLite one unit of work)."""

import httpx

from factories import OTHER_VILLAGE, TOWNSHIP, VILLAGE, audit_records, create, household, member
from registry.audit.service import HOUSEHOLD_FIELDS
from servicekit.testing import OTHER_TOWNSHIP


async def test_the_audit_record_names_the_reader_the_household_and_the_request(registry, worker):
    created = await create(worker)
    r = await worker.get(f"/api/v1/households/{created['id']}", headers={"X-Request-ID": "read-audit-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "read-audit-1"
    [read] = [a for a in await audit_records(registry, created["id"], "read_masked") if a.request_id == "read-audit-1"]
    assert (read.actor, read.role, read.resource_type, read.area_code) == ("worker-1", "town_worker", "household", VILLAGE)
    assert read.fields == sorted(HOUSEHOLD_FIELDS) and read.purpose is None and read.at is not None


async def test_each_read_writes_its_own_record(registry, worker):
    created = await create(worker)
    before = len(await audit_records(registry, created["id"], "read_masked"))
    for _ in range(3):
        assert (await worker.get(f"/api/v1/households/{created['id']}")).status_code == 200
    assert len(await audit_records(registry, created["id"], "read_masked")) == before + 3


async def test_out_of_scope_and_unknown_reads_are_404_and_leave_no_record(registry, worker, other_worker):
    created = await create(worker)
    async with registry.client("village_worker", area=OTHER_VILLAGE, subject="village-other") as village, \
            registry.client("town_worker", subject="no-area") as no_area:
        for client in (other_worker, village, no_area):
            r = await client.get(f"/api/v1/households/{created['id']}")
            assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await worker.get(f"/api/v1/households/{unknown}")).status_code == 404
    assert await audit_records(registry, unknown) == []
    readers = {a.actor for a in await audit_records(registry, created["id"], "read_masked")}
    assert readers.isdisjoint({"worker-2", "village-other", "no-area"})


async def test_village_and_city_officials_read_within_their_jurisdiction(registry, worker):
    created = await create(worker, household(area=VILLAGE))
    async with registry.client("village_worker", area=VILLAGE, subject="village-1") as village, \
            registry.client("city_admin", area="330100000000", subject="city-1") as city:
        for client in (village, city):
            r = await client.get(f"/api/v1/households/{created['id']}")
            assert r.status_code == 200 and r.json()["id"] == created["id"] and r.json()["area"]["township_code"] == TOWNSHIP
    assert {"village-1", "city-1"} <= {a.actor for a in await audit_records(registry, created["id"], "read_masked")}


async def test_a_citizen_reads_only_their_own_household_status(registry, worker):
    number = member("head")["resident_id"]
    own = await create(worker, household(members=[member("head", resident_id=number)]))
    other = await create(worker)
    async with registry.client("citizen", resident_id=number, area=VILLAGE, subject="citizen-read") as citizen:
        r = await citizen.get(f"/api/v1/households/{own['id']}")
        assert r.status_code == 200 and r.json()["household_id"] == own["id"] and "members" not in r.json()
        assert (await citizen.get(f"/api/v1/households/{other['id']}")).status_code == 404
    reads = [a for a in await audit_records(registry, own["id"], "read_masked") if a.actor == "citizen-read"]
    assert [a.fields for a in reads] == [["register_status"]]
    assert not [a for a in await audit_records(registry, other["id"]) if a.actor == "citizen-read"]


async def test_roles_outside_government_are_refused(registry, worker):
    created = await create(worker)
    async with registry.client("department", dept="health", subject="dept-1") as department:
        r = await department.get(f"/api/v1/households/{created['id']}")
    assert r.status_code == 403
    async with registry.client() as anonymous:
        assert (await anonymous.get(f"/api/v1/households/{created['id']}")).status_code == 401
    assert not [a for a in await audit_records(registry, created["id"]) if a.actor == "dept-1"]


async def _through_fast_path(registry, token: str, path: str) -> bool:
    """Call the fast read's handler alone: whether it answered (else the route would)."""
    from registry.households.endpoints import read_fast
    from servicekit.fastread import FastRequest

    app = registry.app.app  # the FastAPI app under the status recorder
    return await read_fast(FastRequest(app, path, [(b"authorization", f"Bearer {token}".encode())])) is not None


async def test_the_fast_path_answers_only_an_official_read_in_scope_on_postgresql(registry, worker):
    created = await create(worker, household(members=[member("head", resident_id=(number := member()["resident_id"]))]))
    path = f"/api/v1/households/{created['id']}"
    identity, postgres = registry.identity, registry.app.state.db.is_postgres
    official = identity.token("town_worker", area=TOWNSHIP, subject="fast-1")
    assert await _through_fast_path(registry, official, path) == postgres
    passed_on = [
        identity.token("town_worker", area=OTHER_TOWNSHIP, subject="fast-2"),  # out of scope
        identity.token("citizen", resident_id=number, area=VILLAGE),
        identity.token("department", dept="health"),
        "not-a-token",
    ]
    for token in passed_on:
        assert not await _through_fast_path(registry, token, path)
    for other in (path + "/surveys", "/api/v1/households/mine", path[:-1]):
        assert not await _through_fast_path(registry, official, other)


async def test_served_by_its_protocol_a_read_is_the_routes_answer_and_is_audited(registry, worker, other_worker):
    """As production serves it (servicekit.fastread's protocol, real sockets): the official's read
    is answered before ASGI on PostgreSQL, with the same document, ETag and request id as the
    route's, and its audit record; what the handler declines is the route's answer."""
    from servicekit.testing import serving

    created = await create(worker, household(address="杭州市西湖区快读路1号"))
    path = f"/api/v1/households/{created['id']}"
    routed = await worker.get(path)
    app = registry.app.app
    reached_asgi: list[str] = []

    async def asgi_way(scope, receive, send):  # what the protocol hands on to the app
        reached_asgi.append(scope["path"])
        await app(scope, receive, send)

    async with serving(asgi_way, http=app.http_protocol, lifespan="off") as url:
        headers = {**registry.identity.headers("town_worker", area=TOWNSHIP, subject="protocol-reader"),
                   "X-Request-Id": "protocol-read-1"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            fast = await client.get(path)
            fast_reached_asgi = path in reached_asgi
            unknown = created["id"][:-1] + ("1" if created["id"].endswith("0") else "0")  # another id
            elsewhere = await client.get(f"/api/v1/households/{unknown}")
            surveys = await client.get(path + "/surveys")
        other = httpx.AsyncClient(base_url=url, headers=registry.identity.headers("town_worker", area=OTHER_TOWNSHIP))
        async with other:
            out_of_scope = await other.get(path)
    # On PostgreSQL the read never reached the app; on SQLite the handler declines it.
    assert fast_reached_asgi is not registry.app.state.db.is_postgres
    assert reached_asgi[-2:] == [path + "/surveys", path]  # declined: the route answered
    assert fast.status_code == 200 and fast.json() == routed.json() and fast.headers["etag"] == routed.headers["etag"]
    assert fast.headers["x-request-id"] == "protocol-read-1" and fast.headers["content-type"] == "application/json"
    assert "快读路" not in fast.text
    assert elsewhere.status_code == out_of_scope.status_code == 404
    assert out_of_scope.headers["content-type"].startswith("application/problem+json")
    assert surveys.status_code == 200
    [record] = [a for a in await audit_records(registry, created["id"], "read_masked") if a.actor == "protocol-reader"]
    assert record.request_id == "protocol-read-1"


async def test_no_answer_goes_out_before_its_audit_record_is_written(registry, worker):
    """The read waits for its record (on PostgreSQL, the commit of the group of records it went
    in): a record that cannot be written leaves the reader with a 500 problem and none of the data."""
    created = await create(worker, household(address="杭州市西湖区无审计路1号"))
    db = registry.db
    if db.is_postgres:
        setup = ["CREATE FUNCTION refuse_unaudited() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF NEW.actor = 'unaudited-reader' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$",
                 "CREATE TRIGGER refuse_unaudited BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_unaudited()"]
        teardown = ["DROP TRIGGER refuse_unaudited ON audit_log", "DROP FUNCTION refuse_unaudited()"]
    else:
        setup = ["CREATE TRIGGER refuse_unaudited BEFORE INSERT ON audit_log WHEN NEW.actor = 'unaudited-reader' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"]
        teardown = ["DROP TRIGGER refuse_unaudited"]
    from sqlalchemy import text

    async with db.engine.begin() as connection:
        for statement in setup:
            await connection.execute(text(statement))
    try:
        # As a server answers it: the 500 goes out, then the error is raised to the server to log.
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        headers = registry.identity.headers("town_worker", area=TOWNSHIP, subject="unaudited-reader")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as reader:
            refused = await reader.get(f"/api/v1/households/{created['id']}")
        async with registry.client("town_worker", area=TOWNSHIP, subject="audited-reader") as reader:
            served = await reader.get(f"/api/v1/households/{created['id']}")  # others read on meanwhile
    finally:
        async with db.engine.begin() as connection:
            for statement in teardown:
                await connection.execute(text(statement))
    assert refused.status_code == 500 and refused.headers["content-type"].startswith("application/problem+json")
    assert created["id"] not in refused.text and created["label_masked"] not in refused.text
    assert served.status_code == 200 and served.json()["id"] == created["id"]
    actors = [a.actor for a in await audit_records(registry, created["id"], "read_masked")]
    assert "unaudited-reader" not in actors and "audited-reader" in actors


async def test_every_time_in_an_answer_says_its_zone_on_either_database(registry, worker):
    """SQLite keeps no zone: its times came back naive and the API wrote them without one
    ("2026-11-29T09:03:34.320415"), ambiguous for every client. They are UTC, and say so."""
    from datetime import datetime

    created = await create(worker)
    read = (await worker.get(f"/api/v1/households/{created['id']}")).json()
    async with registry.client("department", dept="health", subject="dept-tz") as health:
        r = await health.post("/api/v1/feeds/batches", content=b'{"record_id": "TZ-1", "item": "wage_income"}\n',
                              headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 201, r.text
        report = r.json()
    times = [created["created_at"], read["created_at"], read["updated_at"], read["members"][0]["updated_at"],
             report["received_at"], report["finished_at"]]
    for value in times:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0, value


async def test_the_longest_request_id_kept_is_audited_with_the_read(registry, worker):
    # The request id goes into the read's audit record: every id the kit keeps must fit there
    # (on PostgreSQL a longer one failed the record's INSERT, and the read with it).
    created = await create(worker)
    longest = "r" * 64
    r = await worker.get(f"/api/v1/households/{created['id']}", headers={"X-Request-ID": longest})
    assert r.status_code == 200 and r.headers["x-request-id"] == longest
    [read] = [a for a in await audit_records(registry, created["id"], "read_masked") if a.request_id == longest]
    assert read.actor == "worker-1"
    too_long = "r" * 100
    r = await worker.get(f"/api/v1/households/{created['id']}", headers={"X-Request-ID": too_long})
    assert r.status_code == 200 and r.headers["x-request-id"] != too_long


async def test_reads_of_the_moment_each_get_their_own_answer_and_record(registry, worker, other_worker):
    """On PostgreSQL the reads of the moment go in one statement with their audit records
    (repository.read_masked_audited): each reader gets its own household or its 404, and a
    record exactly for what it read."""
    import asyncio
    from collections import Counter

    from registry.households import repository

    first, second = await create(worker), await create(worker)
    unknown = first["id"][:-1] + ("1" if first["id"].endswith("0") else "0")
    db = registry.db
    group = db.group_statement(repository._READ_MASKED_AUDITED, name="household reads",
                               concurrency=repository.READ_GROUPS_AT_ONCE) if db.is_postgres else None
    statements = group.groups if group else 0
    readers = {}
    for h in (first, second):
        readers[h["id"]] = Counter(a.actor for a in await audit_records(registry, h["id"], "read_masked"))
    asked = [(worker, first), (other_worker, first), (worker, second), (worker, {"id": unknown})] * 6
    answers = await asyncio.gather(*(client.get(f"/api/v1/households/{h['id']}") for client, h in asked))
    for (client, household_asked), answer in zip(asked, answers, strict=True):
        if client is worker and household_asked["id"] != unknown:
            assert answer.status_code == 200 and answer.json()["id"] == household_asked["id"]
        else:
            assert answer.status_code == 404
    if group is not None:
        assert group.groups - statements < len(asked)  # in groups, not a statement each
    for household in (first, second):
        now = Counter(a.actor for a in await audit_records(registry, household["id"], "read_masked"))
        assert now - readers[household["id"]] == Counter({"worker-1": 6})
    assert await audit_records(registry, unknown) == []


async def test_a_read_after_the_server_dropped_an_idle_connection_is_served(registry, worker):
    """A server restart or fail-over closes the driver pool's idle connections: the next read takes
    a new one rather than failing on a closed one (a 500 before). A connection lost in the middle
    of a group's statement is a 503 for its readers (kit: test_groupcommit)."""
    import asyncio

    from sqlalchemy import text

    created = await create(worker)
    path = f"/api/v1/households/{created['id']}"
    db = registry.db
    if db.is_postgres:
        async with db.driver_connection() as connection:  # the one the next statement takes (a stack)
            pid = await connection.fetchval("SELECT pg_backend_pid()")
        async with db.engine.connect() as other:
            assert (await other.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})).scalar_one()
        for _ in range(100):  # until the client has seen the server close it
            if connection.is_closed():
                break
            await asyncio.sleep(0.01)
        assert connection.is_closed()
    read = await worker.get(path)
    assert read.status_code == 200 and read.json()["id"] == created["id"]
