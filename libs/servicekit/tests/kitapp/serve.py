"""Run the kit app as a real process: a producer of note events, or a consumer copying them.

Used by the process-level tests; configuration comes from the environment like any service,
plus KIT_PRODUCER_URL (become a consumer of that feed) and KIT_SLOW_MS (per-event delay, so a
test can kill the consumer in the middle of a batch).
"""

import asyncio
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kitapp.app import KitSettings, Note, create_app  # noqa: E402
from servicekit.events import FeedConsumer  # noqa: E402
from servicekit.http import ServiceClient, TokenProvider  # noqa: E402
from servicekit.runner import serve  # noqa: E402


def main() -> None:
    settings = KitSettings()
    producer = os.environ.get("KIT_PRODUCER_URL")
    slow = float(os.environ.get("KIT_SLOW_MS", "0")) / 1000
    consumers = None
    if producer:
        async def copy(session, events):
            for event in events:
                if slow:
                    await asyncio.sleep(slow)
                session.add(Note(id=str(uuid.uuid4()), area_code=event.data["area_code"], text=event.id, version=1))

        def consumers(app):
            client = ServiceClient(producer, token=TokenProvider.from_settings(settings))
            return [FeedConsumer(name="notes", client=client, db=app.state.db, handler=copy, batch_size=50, wait_seconds=2)]

    app = create_app(settings, consumers=consumers)
    serve(app, settings)


if __name__ == "__main__":
    main()
