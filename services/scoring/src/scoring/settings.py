"""Settings of the scoring service."""

from __future__ import annotations

from pydantic import Field

from servicekit.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    service_name: str = "scoring"
    port: int = 8002

    # The registry, whose household.changed feed scoring follows.
    registry_url: str = "http://127.0.0.1:8001"
    consume_registry: bool = True
    # Behind a backlog (catching up), each batch pays the consumer's and the commit's overhead once:
    # 1,000 views (~2 MB of JSON) per transaction is the most the feed serves in one page.
    consumer_batch_size: int = Field(default=1000, ge=1, le=1000)
    consumer_wait_seconds: float = Field(default=20.0, ge=0, le=30)
    snapshot_page_size: int = Field(default=1000, ge=1, le=5000)
    # Behind a backlog, the page fetched ahead is parsed and its views prepared in a worker
    # process while the page before is applied; off: in the service's process, taking turns with
    # the apply. The worker takes seconds to start (~10 pages' work on a small machine): it is
    # started for a backlog of at least this many events.
    digest_worker_process: bool = True
    digest_worker_min_backlog: int = Field(default=20_000, ge=0)

    # Rescoring a whole city (activation): households per chunk, and when a running activation
    # that stopped reporting is presumed dead (its process crashed) and may be replaced. With the
    # worker process, about three chunks are alive at once between it and the service: 10,000
    # households a chunk keep the two under ~560 MB for a city (20,000: ~890 MB), as fast.
    rescore_chunk_size: int = Field(default=10_000, ge=100, le=200_000)
    activation_timeout_seconds: float = Field(default=1800.0, gt=0)
    # On PostgreSQL, a rescore's chunks are built and encoded in a worker process started with
    # the service (the event loop only sends them); off: in a thread of the service's process.
    rescore_worker_process: bool = True

    # Batches at least this large are written with COPY on PostgreSQL (events included).
    copy_threshold: int = Field(default=100, ge=1)

    # "What would help": lever sets up to this size are searched.
    help_max_levers: int = Field(default=3, ge=1, le=4)
