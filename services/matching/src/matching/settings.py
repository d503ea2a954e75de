"""Settings of the matching service."""

from servicekit.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    service_name: str = "matching"
    port: int = 8004
