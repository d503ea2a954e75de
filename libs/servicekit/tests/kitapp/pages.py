"""Page readers for the consumer's worker-process tests (module-level: the worker imports them)."""

from __future__ import annotations

import os

from servicekit.events.outbox import Event, FeedPage


def read(content: bytes) -> tuple[list[Event], int]:
    """The page's events, each marked with the process that read it, and the head."""
    page = FeedPage.model_validate_json(content)
    return [e.model_copy(update={"data": {**e.data, "read_by": os.getpid()}}) for e in page.events], page.head


def die(content: bytes) -> tuple[list[Event], int]:
    os._exit(3)  # the worker process dies in the middle of a page


def refuse(content: bytes) -> tuple[list[Event], int]:
    raise ValueError("a page this reader cannot read")
