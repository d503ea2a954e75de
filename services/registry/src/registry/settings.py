"""Settings of the registry service."""

from servicekit.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: str = "registry"
    port: int = 8001
