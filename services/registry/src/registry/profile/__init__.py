"""The city profile the registry runs on: everything city-specific, loaded from config/."""

from registry.profile.loader import CityProfile, load_profile
from registry.profile.errors import ProfileError

__all__ = ["CityProfile", "ProfileError", "load_profile"]
