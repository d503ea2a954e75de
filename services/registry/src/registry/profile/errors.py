"""One error for everything wrong in the city profile: it names the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ProfileError(ValueError):
    """The city profile under config/ cannot be used; the message says where and why."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        super().__init__(f"{path}: {field}: {problem}")


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ProfileError(path, "(file)", "not found")
    try:
        # The C loader when PyYAML has it: the area tree alone is 3,400 entries.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ProfileError(path, "(file)", f"not valid YAML ({type(exc).__name__})") from None


def parse(model: type[M], path: Path, data: Any) -> M:
    """Validate ``data`` from ``path`` with ``model``; the first problem becomes a ProfileError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        raise ProfileError(path, where, str(first.get("msg", "invalid"))) from None
