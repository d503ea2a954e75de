"""A point on the earth in requests, in degrees: numbers only and within range.

Strict, so that ``true`` or ``"30.2"`` is not taken for a coordinate; JSON's NaN and Infinity,
which Python's parser reads although JSON has neither, are refused before any model
(``servicekit.app``'s request guard).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Latitude = Annotated[float, Field(ge=-90, le=90, strict=True)]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True)]
