"""Settings of the alerts service."""

from servicekit.settings import ServiceSettings


class AlertsSettings(ServiceSettings):
    service_name: str = "alerts"
    port: int = 8003
