"""The data-sharing catalogue (config/registry/departments.yaml) and the illness code lists.

Checked against the registry's fact vocabulary and the trigger rules at start-up: an item must
update a fact the registry knows, with a compatible value type and the same subject, and may only
declare triggers whose rules watch that fact. An item of type ``birth`` (出生医学证明) updates no
fact: its record makes the newborn a member (registry.feeds.births), so it names no fact and no
trigger (``member_born`` is raised by the registry itself, as when a worker adds a newborn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.facts.vocabulary import FACTS, FactSpec
from registry.profile.errors import ProfileError, parse, read_yaml

Code = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")
ItemType = Literal["int", "float", "bool", "enum", "date", "code", "amount", "event", "birth"]
# Which delivered value types may update which kind of fact.
COMPATIBLE: dict[str, frozenset[str]] = {
    "int": frozenset({"int"}), "float": frozenset({"float"}), "bool": frozenset({"bool"}),
    "enum": frozenset({"enum"}), "date": frozenset({"date"}), "codes": frozenset({"code"}),
    "log": frozenset({"amount", "event"}),
}
# What a birth record carries as its value: the date of birth, checked against the ID number. Not
# a fact of the vocabulary (the date of birth is a member's column); named in the fact history.
BIRTH = FactSpec("born_on", "person", "date", "Date of birth (出生), from a birth certificate")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(_Strict):
    code: str = Code
    name_zh: str = Field(min_length=1, max_length=40)
    subject: Literal["person", "household"]
    type: ItemType
    unit: str | None = Field(default=None, max_length=16)
    fact: str | None = None  # every type but ``birth`` names one
    triggers: tuple[str, ...] = ()


class Department(_Strict):
    code: str = Code
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    every_hours: int = Field(ge=1, le=24 * 366)
    items: list[Item] = Field(min_length=1)


class DepartmentsFile(_Strict):
    version: Literal[1]
    departments: list[Department] = Field(min_length=1)


class CodeEntry(_Strict):
    code: str = Code
    name_zh: str
    name_en: str


class IllnessFile(_Strict):
    version: Literal[1]
    lists: dict[str, list[CodeEntry]]


class Catalogue:
    def __init__(self, departments: list[Department], code_lists: dict[str, list[CodeEntry]]) -> None:
        self.departments = {d.code: d for d in departments}
        self.items: dict[str, tuple[Department, Item, FactSpec]] = {
            i.code: (d, i, BIRTH if i.fact is None else FACTS[i.fact]) for d in departments for i in d.items
        }
        self.code_lists = {name: frozenset(e.code for e in entries) for name, entries in code_lists.items()}
        self.code_entries = code_lists


def load_code_lists(path: Path) -> dict[str, list[CodeEntry]]:
    raw = parse(IllnessFile, path, read_yaml(path))
    for name, entries in raw.lists.items():
        codes = [e.code for e in entries]
        if len(codes) != len(set(codes)):
            raise ProfileError(path, f"lists.{name}", "duplicate code")
    for spec in FACTS.values():
        if spec.type == "codes" and spec.values[0] not in raw.lists:
            raise ProfileError(path, "lists", f"the list {spec.values[0]} is required")
    return raw.lists


def load_catalogue(path: Path, code_lists: dict[str, list[CodeEntry]], rules_by_fact: dict[str, set[str]]) -> Catalogue:
    raw = parse(DepartmentsFile, path, read_yaml(path))
    seen_departments: set[str] = set()
    seen_items: set[str] = set()
    for i, d in enumerate(raw.departments):
        where = f"departments.{i}"
        if d.code in seen_departments:
            raise ProfileError(path, where + ".code", "duplicate department code")
        seen_departments.add(d.code)
        for j, item in enumerate(d.items):
            iw = f"{where}.items.{j}"
            if item.code in seen_items:
                raise ProfileError(path, iw + ".code", "duplicate item code")
            seen_items.add(item.code)
            if item.type == "birth":
                _check_birth_item(path, iw, item)
                continue
            spec = FACTS.get(item.fact or "")
            if spec is None:
                raise ProfileError(path, iw + ".fact", "not a fact the registry keeps")
            if item.type not in COMPATIBLE[spec.type]:
                raise ProfileError(path, iw + ".type", f"a {spec.type} fact takes {sorted(COMPATIBLE[spec.type])}")
            if item.subject != spec.subject:
                raise ProfileError(path, iw + ".subject", f"the fact is about a {spec.subject}")
            for k, code in enumerate(item.triggers):
                if code not in rules_by_fact.get(item.fact, set()):
                    raise ProfileError(path, f"{iw}.triggers.{k}", "no rule in triggers.yaml fires this code from this fact")
    return Catalogue(raw.departments, code_lists)


def _check_birth_item(path: Path, where: str, item: Item) -> None:
    if item.subject != "person":
        raise ProfileError(path, where + ".subject", "a birth is about a person (the newborn)")
    if item.fact is not None:
        raise ProfileError(path, where + ".fact", "a birth item updates no fact: its record makes the newborn a member")
    if item.triggers:
        raise ProfileError(path, where + ".triggers", "a birth raises member_born itself")


class _ServicesFile(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    need_types: dict[str, str] = Field(min_length=1)


def load_need_types(path: Path) -> frozenset[str]:
    """The need types of the shared service catalogue (declarations name them)."""
    return frozenset(parse(_ServicesFile, path, read_yaml(path)).need_types)
