"""Settings of the scoring service."""

from servicekit.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    service_name: str = "scoring"
    port: int = 8002
