"""Events between services: the outbox, the commit-order sequencer, the feed and its consumers."""

from servicekit.events.consumer import FeedConsumer, LocalLease, PostgresLease, RedisLease, make_lease
from servicekit.events.feed import FeedNotifier, feed_router
from servicekit.events.outbox import Event, install_sequencer, publish
from servicekit.events.reader import PageReader

__all__ = [
    "Event", "FeedConsumer", "FeedNotifier", "LocalLease", "PageReader", "PostgresLease", "RedisLease",
    "feed_router", "install_sequencer", "make_lease", "publish",
]
