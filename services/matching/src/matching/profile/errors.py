"""One error for everything wrong in the city profile: it names the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ProfileError(ValueError):
    """The configuration under config/ cannot be used; the message says where and why."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        super().__init__(f"{path}: {field}: {problem}")


class Strict(BaseModel):
    """Configuration models refuse unknown keys, so a misspelt key is an error, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ProfileError(path, "(file)", "not found")
    try:
        # The C loader when present: the generated sites file is thousands of lines.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ProfileError(path, "(file)", f"not valid YAML ({type(exc).__name__})") from None


def parse(model: type[M], path: Path, data: Any) -> M:
    """Validate ``data`` read from ``path``; the first problem becomes a ProfileError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        raise ProfileError(path, where, str(first.get("msg", "invalid"))) from None
