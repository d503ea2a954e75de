"""Settings of the registry service."""

from pydantic import Field

from servicekit.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: str = "registry"
    port: int = 8001
    # Department batches are streamed; this bounds one request (100k+ records fit easily).
    max_batch_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # Records applied and committed together; a crash loses at most one chunk's work, which a
    # re-sent batch redoes without duplicates.
    feed_chunk_records: int = Field(default=5000, ge=1, le=50_000)
    # Rejected lines kept per batch report (the counts are always complete).
    feed_rejections_kept: int = Field(default=10_000, ge=0)
    # Unmasked reads (reveal) allowed per person per hour.
    reveal_per_hour: int = Field(default=30, ge=1)
