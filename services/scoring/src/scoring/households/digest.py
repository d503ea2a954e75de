"""A household.changed made ready to store and score: its view as canonical text and its hash,
its facts as a row of numbers with the notes on them, its member ages as JSON.

All of it follows from the event alone (no database, no model), so behind a backlog it is done
for the page fetched ahead in a worker process (servicekit's ``PageReader``, ``read_page``
below) while the consumer applies the page before; a single event is digested where it is
applied. Both ways run ``digest``, so they store the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from servicekit.events import Event
from scoring.assessments.service import facts_json
from scoring.engine.records import FEW
from scoring.households.repository import ages_json
from scoring.households.schemas import HouseholdChanged, HouseholdPage
from scoring.rules.view import ViewCatalogue, canonical_json, input_hash


class Digested(NamedTuple):
    household_id: str
    version: int
    area_code: str
    township_code: str
    district_code: str
    label_masked: str
    synthetic: bool
    change: str
    triggers: list[dict[str, Any]]
    missing: list[str]
    view: str  # canonical JSON text, as stored and hashed
    input_hash: str
    facts: str  # the notes on missing, invalid and clamped facts (JSON)
    features: bytes  # the prepared row (float64, the layout's order)
    layout: str
    member_ages: str | None  # JSON; None: never sent


def digest(catalogue: ViewCatalogue, changes: Sequence[HouseholdChanged]) -> list[Digested]:
    if len(changes) > FEW:  # column by column pays off for a batch, not for one household
        _, prepared_all = catalogue.prepare_many([c.view for c in changes], [c.missing for c in changes])
    else:
        prepared_all = [catalogue.prepare(c.view, c.missing) for c in changes]
    out = []
    for c, prepared in zip(changes, prepared_all, strict=True):
        text = canonical_json(c.view)
        out.append(Digested(
            c.household_id, c.version, c.area_code, c.township_code, c.district_code, c.label_masked, c.synthetic,
            c.change, c.triggers, c.missing, text, input_hash(text, c.missing),
            facts_json(prepared.missing, prepared.invalid, prepared.clamped), prepared.row.tobytes(),
            catalogue.layout, ages_json(c.member_ages)))
    return out


# ---- in the page reader's worker process ----------------------------------------------------
_catalogue: ViewCatalogue | None = None


def setup(catalogue: ViewCatalogue) -> None:
    global _catalogue
    _catalogue = catalogue


def read_page(content: bytes) -> tuple[list[Event], int]:
    """A feed page's events, each household.changed digested (malformed data left as it came,
    for the service to report and skip), and the registry's head."""
    assert _catalogue is not None, "setup() runs first"
    page = HouseholdPage.model_validate_json(content)
    events = page.events
    changes = [e.data for e in events if e.type == "household.changed" and isinstance(e.data, HouseholdChanged)]
    done = iter(digest(_catalogue, changes))
    return [Event.model_construct(
        position=e.position, id=e.id, type=e.type, subject=e.subject, occurred_at=e.occurred_at,
        traceparent=e.traceparent,
        data=next(done) if e.type == "household.changed" and isinstance(e.data, HouseholdChanged) else e.data)
        for e in events], page.head
