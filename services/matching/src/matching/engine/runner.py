"""Runs of the engine against the database (filled in with the engine)."""

from __future__ import annotations
