"""Collecting request problems, so the caller sees every invalid field at once (422)."""

from __future__ import annotations

from servicekit.errors import FieldIssue, Unprocessable


class Problems:
    def __init__(self) -> None:
        self.issues: list[FieldIssue] = []

    def add(self, location: str, issue: str, message: str) -> None:
        self.issues.append(FieldIssue(location=location, issue=issue, message=message))

    def raise_if_any(self) -> None:
        if self.issues:
            n = len(self.issues)
            raise Unprocessable(
                f"{n} part{'s' if n != 1 else ''} of the request {'are' if n != 1 else 'is'} not valid; see errors.",
                errors=self.issues,
            )
