"""The city profile the matching service runs on, loaded from config/ and checked at start-up."""

from matching.profile.errors import ProfileError
from matching.profile.loader import Profile, load_profile

__all__ = ["Profile", "ProfileError", "load_profile"]
