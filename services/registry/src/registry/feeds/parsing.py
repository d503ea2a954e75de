"""Department records: lines of JSON Lines or CSV turned into checked records or rejections.

Pure. A rejection says why in words that never quote the record's values or the person.
Record shape (JSON Lines; CSV has the same columns, with a header line):
    {"record_id": "HLTH-2026-000001", "item": "major_illness_diagnosis",
     "resident_id": "330106199003070014", "value": "cancer", "effective_date": "2026-11-20",
     "area_code": "330106001001"}          # area_code optional: where a lead should go
A birth record (item type ``birth``) names the newborn by ``resident_id``; its value is the date of
birth, which must agree with that number; it also carries ``parent_resident_id`` (optional: without
it the newborn is a lead) and may carry the newborn's ``name``. Other items take neither field.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from servicekit.resident_id import (EARLIEST_BIRTH_DATE, PROVINCE_PREFIXES, InvalidResidentId, check_character_of_digits,
                                    validate)

from registry.facts.vocabulary import FactSpec, InvalidFactValue, coerce
from registry.profile.areas import AreaTree
from registry.profile.catalogue import Catalogue, Item

FIELDS = ("record_id", "item", "resident_id", "value", "effective_date", "area_code", "parent_resident_id", "name")
MAX_NAME = 40
REQUIRED = ("record_id", "item", "resident_id", "effective_date")  # spelled out again in check(), for speed
_BLANK = (None, "")
_FIELD_SET = frozenset(FIELDS)
_CHECK_CHARACTERS = frozenset("0123456789X")  # the normal form: a lower-case x is left to validate
NUMBERS_KEPT = 500_000  # checked ID numbers remembered by one checker
BIRTH_DATES_KEPT = 100_000  # birth dates of numbers (~53,000 real ones since 1880)


@dataclass(slots=True)
class Record:
    line: int
    record_id: str
    item: Item
    spec: FactSpec
    number: str  # the normalised resident ID number
    value: Any
    effective: date
    area_code: str | None
    parent: str | None = None  # birth records: a parent's normalised ID number
    name: str | None = None  # birth records: the newborn's name


@dataclass(slots=True)
class Rejection:
    line: int
    record_id: str | None
    code: str
    reason: str


def rejection(line: int, record_id: Any, code: str, reason: str) -> Rejection:
    rid = record_id if isinstance(record_id, str) and 0 < len(record_id) <= 64 and record_id.isprintable() else None
    return Rejection(line, rid, code, reason)


class RecordChecker:
    """Checks raw records of one department against the catalogue and the area tree."""

    def __init__(self, department: str, catalogue: Catalogue, areas: AreaTree, today: date) -> None:
        self.department = department
        self.catalogue = catalogue
        self.areas = areas
        self.today = today
        self._dates: dict[str, date | None] = {}
        self._births: dict[str, bool] = {}  # birth-date digits (YYYYMMDD): a real date, 1880 to today
        # A batch names most people more than once: each number is checked once (bounded, so a
        # batch of millions of distinct people does not grow it without end).
        self._numbers: dict[str, str | tuple[str, str]] = {}

    def _number(self, raw: str) -> str | tuple[str, str]:
        """The normalised number, or why it is invalid: (code, message); remembered per raw text."""
        found = self._numbers.get(raw)
        if found is None:
            found = self._plainly_valid(raw)
            if found is None:
                try:
                    found = validate(raw, today=self.today).number
                except InvalidResidentId as exc:
                    found = (exc.code, exc.message)
            if len(self._numbers) >= NUMBERS_KEPT:
                self._numbers.clear()
            self._numbers[raw] = found
        return found

    def _plainly_valid(self, raw: str) -> str | None:
        """``raw`` when it is a valid number already in its normal form (servicekit's
        ``validate`` would give it back as it is), else None and ``validate`` decides, with its
        reasons. Most numbers of a batch are such, and are new to the batch: this takes a third
        of the time of ``validate``, which also works out the sex and builds a ResidentId."""
        if len(raw) != 18 or not raw.isascii() or not raw[:17].isdigit() or raw[17] not in _CHECK_CHARACTERS \
                or raw[:2] not in PROVINCE_PREFIXES:
            return None
        born = self._births.get(raw[6:14])
        if born is None:
            if len(self._births) >= BIRTH_DATES_KEPT:
                self._births.clear()
            born = self._births[raw[6:14]] = self._real_birth(raw[6:14])
        return raw if born and check_character_of_digits(raw[:17]) == raw[17] else None

    def _real_birth(self, digits: str) -> bool:
        try:
            return EARLIEST_BIRTH_DATE <= date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) <= self.today
        except ValueError:
            return False

    def _date(self, raw: Any) -> date | None:
        if not isinstance(raw, str):
            return None
        cached = self._dates.get(raw, False)
        if cached is False:
            try:
                cached = date.fromisoformat(raw) if len(raw) == 10 else None
            except ValueError:
                cached = None
            self._dates[raw] = cached
        return cached  # type: ignore[return-value]

    def check(self, line: int, raw: Any) -> Record | Rejection:
        if not isinstance(raw, dict):
            return rejection(line, None, "malformed", "The line is not a record object.")
        rid = raw.get("record_id")
        if not raw.keys() <= _FIELD_SET:
            return rejection(line, rid, "unknown_field", "The record has fields outside the record format.")
        get = raw.get
        if get("record_id") in _BLANK or get("item") in _BLANK or get("resident_id") in _BLANK \
                or get("effective_date") in _BLANK:
            missing = [f for f in REQUIRED if get(f) in _BLANK]
            return rejection(line, rid, "missing_field", f"Required field missing: {', '.join(missing)}.")
        if not isinstance(rid, str) or len(rid) > 64 or not rid.isprintable():
            return rejection(line, None, "invalid_record_id", "record_id must be printable text of at most 64 characters.")
        found = self.catalogue.items.get(raw["item"]) if isinstance(raw["item"], str) else None
        if found is None:
            return rejection(line, rid, "unknown_item", "Not a data item of the catalogue.")
        department, item, spec = found
        if department.code != self.department:
            return rejection(line, rid, "item_of_another_department", "This data item belongs to another department.")
        number = raw["resident_id"]
        if not isinstance(number, str):
            return rejection(line, rid, "resident_id.characters", "The resident ID number must be text.")
        number = self._number(number)
        if isinstance(number, tuple):
            return rejection(line, rid, f"resident_id.{number[0]}", f"Invalid resident ID number: {number[1]}.")
        effective = self._date(raw["effective_date"])
        if effective is None:
            return rejection(line, rid, "invalid_effective_date", "effective_date must be a date YYYY-MM-DD.")
        if effective > self.today:
            return rejection(line, rid, "future_effective_date", "The effective date is in the future.")
        if item.type == "birth":
            return self._birth(line, rid, item, spec, number, effective, raw)
        if get("parent_resident_id") not in _BLANK or get("name") not in _BLANK:
            return rejection(line, rid, "unknown_field", "parent_resident_id and name belong to birth records only.")
        value = raw.get("value")
        if value == "" or item.type == "event":
            value = None
        if value is None and item.type not in ("event",):
            return rejection(line, rid, "missing_field", "Required field missing: value.")
        try:
            value = coerce(spec, value, self.catalogue.code_lists)
        except InvalidFactValue as exc:
            return rejection(line, rid, "invalid_value", f"The value does not fit the item: {exc}.")
        area = raw.get("area_code") or None
        if area is not None and not self.areas.is_village(str(area)):
            return _unknown_area(line, rid)
        return Record(line, rid, item, spec, number, value, effective, area)

    def _birth(self, line: int, rid: str, item: Item, spec: FactSpec, number: str, effective: date,
               raw: dict[str, Any]) -> Record | Rejection:
        """A birth: the date of birth must agree with the newborn's number; the parent's number
        is checked as the newborn's is. No message quotes either number, the date or the name."""
        try:
            born = date.fromisoformat(raw["value"]) if isinstance(raw.get("value"), str) else None
        except ValueError:
            born = None
        if born is None:
            return rejection(line, rid, "invalid_value", "The value of a birth is the date of birth YYYY-MM-DD.")
        if born != validate(number, today=self.today).birth_date:
            return rejection(line, rid, "birth_date_mismatch", "The date of birth disagrees with the resident ID number.")
        parent = raw.get("parent_resident_id") or None
        if parent is not None:
            parent = self._number(parent) if isinstance(parent, str) else ("characters", "it must be text")
            if isinstance(parent, tuple):
                return rejection(line, rid, f"parent_resident_id.{parent[0]}", f"Invalid parent resident ID number: {parent[1]}.")
            if parent == number:
                return rejection(line, rid, "parent_is_newborn", "The parent and the newborn have the same ID number.")
        name = raw.get("name") or None
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME
                                 or not name.isprintable()):
            return rejection(line, rid, "invalid_name", f"name must be printable text of 1 to {MAX_NAME} characters.")
        area = raw.get("area_code") or None
        if area is not None and not self.areas.is_village(str(area)):
            return _unknown_area(line, rid)
        return Record(line, rid, item, spec, number, born.isoformat(), effective, area, parent,
                      name.strip() if name else None)


def _unknown_area(line: int, rid: str) -> Rejection:
    return rejection(line, rid, "unknown_area", "area_code is not a village of the city profile.")


def parse_json_line(line: int, text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # also invalid UTF-8, NaN and integers past 64 bits
        return None


def parse_csv_lines(header: list[str], lines: Iterable[str]) -> list[Any]:
    """Records of one run of CSV lines, one each (``csv_records`` joined a quoted field's line
    breaks already); a line the csv module cannot read (a bare carriage return in an unquoted
    field, a quote never closed) or with the wrong number of cells gives None."""
    texts = list(lines)
    try:
        rows = list(csv.reader(texts))
    except csv.Error:
        rows = []
    if len(rows) != len(texts):  # a line the reader refused, or read on past: each line on its own
        rows = [_csv_cells(text) for text in texts]
    out: list[Any] = []
    width = len(header)
    for cells in rows:
        if len(cells) != width:
            out.append(None)
            continue
        out.append({k: v for k, v in zip(header, cells, strict=True) if v != "" or k == "value"})
    return out


def _csv_cells(text: str) -> list[str]:
    try:
        return next(csv.reader((text,)), [])
    except csv.Error:
        return []


def csv_header(text: str) -> list[str] | None:
    header = _csv_cells(text)
    if not header or not set(REQUIRED) <= set(header) or not set(header) <= set(FIELDS):
        return None
    return [h.strip() for h in header]
