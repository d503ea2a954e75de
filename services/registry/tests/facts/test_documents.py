"""The fact lists of the read's document: the stored dates passed on as text only where that text
is what pydantic writes for the parsed value (the OpenAPI contract's FactPublic)."""

from datetime import UTC, date, datetime, timedelta, timezone

import orjson
from pydantic import TypeAdapter

from registry.facts.schemas import FactPublic, facts_documents, facts_public

_PUBLIC = TypeAdapter(list[FactPublic])


def _entry(eff: str, at: str) -> dict:
    return {"v": 1, "src": "health", "rec": "HLTH-1", "eff": eff, "at": at}


def test_every_stored_form_reads_as_the_response_model_writes_it():
    moments = [datetime(2026, 11, 29, 12, 34, 56, tzinfo=UTC), datetime(2026, 11, 29, 12, 34, 56, 120000, tzinfo=UTC),
               datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)]
    ats = [m.isoformat() for m in moments] + [
        "2026-11-29T12:34:56Z",  # not isoformat()'s: parsed
        datetime(2026, 11, 29, 20, 34, 56, tzinfo=timezone(timedelta(hours=8))).isoformat(),
        "2026-11-29 12:34:56+00:00",
    ]
    effs = [date(2026, 3, 1).isoformat(), date(1999, 12, 31).isoformat()]
    facts = {f"f{i}_{j}": _entry(eff, at) for i, at in enumerate(ats) for j, eff in enumerate(effs)}
    ours = orjson.loads(orjson.dumps(facts_documents(facts), option=orjson.OPT_UTC_Z))
    assert ours == orjson.loads(_PUBLIC.dump_json(facts_public(facts)))
    assert [f["fact"] for f in ours] == sorted(facts)
