"""The matching service's own problem types: each a stable ``type`` with its status."""

from __future__ import annotations

from servicekit.errors import BadRequest, Conflict, Forbidden, Unprocessable


class PartnerNotApproved(Forbidden):
    slug, title = "partner-not-approved", "Your organisation is not an approved partner"


class InvalidTransition(Conflict):
    slug, title = "invalid-transition", "Not possible in the current state"


class CapacityExhausted(Conflict):
    slug, title = "capacity-exhausted", "The offer has no capacity left in this period"


class InsufficientPoints(Conflict):
    slug, title = "insufficient-points", "The balance is too small"


class AlreadyExists(Conflict):
    slug, title = "already-exists", "It exists already"


class UnknownReference(Unprocessable):
    """A code that is not in the city profile: a service, an area, a site, a rule, a good."""

    slug, title = "unknown-reference", "The request names something that does not exist"


class IdempotencyKeyRequired(BadRequest):
    slug, title = "idempotency-key-required", "Idempotency-Key is required"
