"""Resident ID numbers (居民身份证号码, GB 11643-1999): normalise, validate, derive, mask, generate.

Pure logic, no I/O. Error messages never contain the number: they end up in logs and responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import mul
from datetime import date, datetime, timedelta, timezone
from typing import Final, Literal

__all__ = [
    "InvalidResidentId",
    "ReasonCode",
    "ResidentId",
    "Sex",
    "check_character",
    "check_character_of_digits",
    "generate",
    "is_valid",
    "mask",
    "normalize",
    "validate",
]

Sex = Literal["male", "female"]
ReasonCode = Literal[
    "length", "characters", "check_character", "area", "birth_date", "future_birth_date"
]

LENGTH: Final = 18
EARLIEST_BIRTH_DATE: Final = date(1880, 1, 1)

# China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact for any
# "today" we compute and does not depend on the host having a time-zone database.
CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

# Province-level prefixes of GB/T 2260 (71 Taiwan, 81 Hong Kong, 82 Macao, 83 the residence
# permits of Taiwan residents). Only the prefix is checked: counties are merged and renumbered,
# but a number keeps the area code it was issued with for life, so 330103 (abolished) is valid.
PROVINCE_PREFIXES: Final = frozenset(
    [str(n) for n in range(11, 16)]
    + [str(n) for n in range(21, 24)]
    + [str(n) for n in range(31, 38)]
    + [str(n) for n in range(41, 47)]
    + [str(n) for n in range(50, 55)]
    + [str(n) for n in range(61, 66)]
    + ["71", "81", "82", "83"]
)

# MOD 11-2 (ISO 7064): weight of position i (1-based, left to right) is 2^(18-i) mod 11.
_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_ZERO_WEIGHT: Final = ord("0") * sum(_WEIGHTS)
_CHECK_CHARACTERS: Final = "10X98765432"  # indexed by (weighted sum mod 11)
# str.isdigit() accepts full-width and Arabic-Indic digits; only ASCII digits are valid here.
_ASCII_DIGITS: Final = frozenset("0123456789")

_MESSAGES: Final[dict[str, str]] = {
    "length": "a resident ID number has exactly 18 characters",
    "characters": "a resident ID number is 17 ASCII digits followed by a digit or X",
    "check_character": "the check character does not match the first 17 digits",
    "area": "the first two digits are not a province-level area code",
    "birth_date": "the birth date in the number is not a real date on or after 1880-01-01",
    "future_birth_date": "the birth date in the number is in the future",
}


class InvalidResidentId(ValueError):
    """A resident ID number was rejected; ``code`` says why, for machines.

    The message is fixed per code and never contains the number, so the exception can be logged
    or turned into a problem response as it is.
    """

    def __init__(self, code: ReasonCode, message: str | None = None) -> None:
        self.code: ReasonCode = code
        self.message = message or _MESSAGES[code]
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[InvalidResidentId], tuple[str, str]]:
        # The default would call cls(message) and lose the code across pickling.
        return (type(self), (self.code, self.message))


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A validated resident ID number and what it encodes."""

    number: str  # the normalised 18 characters
    area_code: str  # 6 digits: the area of first registration, possibly since abolished
    birth_date: date
    sex: Sex
    sequence: int  # the 3-digit order code (顺序码), 0-999; its parity is the sex

    def __repr__(self) -> str:
        # Keeps the number out of logs and tracebacks that format the object.
        return f"ResidentId({mask(self.number)!r})"

    @property
    def masked(self) -> str:
        return mask(self.number)


def normalize(raw: str) -> str:
    """Return the canonical form of ``raw``: surrounding whitespace removed, check 'x' as 'X'.

    Only the form is checked here (length and characters); :func:`validate` checks the rest.
    Full-width (``３``) and other non-ASCII digits are rejected rather than converted: they mean
    the value did not come from a clean source, and silently converting would make two different
    inputs produce the same blind-index digest.

    A lower-case ``x`` check character is accepted and upper-cased: GB 11643 writes it as ``X``,
    but people and card readers type ``x`` routinely, and keeping both forms would give one
    person two different numbers (and two blind-index digests). Upper case is the only form
    stored, compared or indexed.
    """
    if not isinstance(raw, str):
        raise TypeError("a resident ID number must be given as a str")
    number = raw.strip()
    if len(number) != LENGTH:
        raise InvalidResidentId("length")
    if not set(number[:17]) <= _ASCII_DIGITS or number[17] not in "0123456789Xx":
        raise InvalidResidentId("characters")
    return number[:17] + number[17].upper()


def check_character(first17: str) -> str:
    """The MOD 11-2 check character ('0'-'9' or 'X') for 17 ASCII digits."""
    if len(first17) != 17:
        raise InvalidResidentId("length", "the check character is computed over 17 digits")
    if not set(first17) <= _ASCII_DIGITS:
        raise InvalidResidentId("characters", "the check character is computed over ASCII digits")
    return check_character_of_digits(first17)


def check_character_of_digits(first17: str) -> str:
    """:func:`check_character` of 17 characters the caller has already checked to be ASCII
    digits (a department batch checks millions of numbers, and its own test comes first)."""
    # Over the ASCII codes ('0' is 48), not int() per digit: 4x faster.
    return _CHECK_CHARACTERS[(sum(map(mul, first17.encode("ascii"), _WEIGHTS)) - _ZERO_WEIGHT) % 11]


def validate(raw: str, *, today: date | None = None) -> ResidentId:
    """Parse and check ``raw``; raise :class:`InvalidResidentId` with a reason code if it fails.

    Checked in this order, so the code names the most likely mistake: length, characters, check
    character (a typo), province prefix, a real birth date from 1880 on, not after ``today``
    (default: today in China Standard Time).
    """
    number = normalize(raw)
    if check_character(number[:17]) != number[17]:
        raise InvalidResidentId("check_character")
    area_code = number[:6]
    if area_code[:2] not in PROVINCE_PREFIXES:
        raise InvalidResidentId("area")
    birth_date = _birth_date(number[6:14], today or _today_in_china())
    sequence = int(number[14:17])
    return ResidentId(
        number=number,
        area_code=area_code,
        birth_date=birth_date,
        sex=_sex_of(sequence),
        sequence=sequence,
    )


def is_valid(raw: str, *, today: date | None = None) -> bool:
    """Whether :func:`validate` accepts ``raw``; False for anything that is not a str."""
    if not isinstance(raw, str):
        return False
    try:
        validate(raw, today=today)
    except InvalidResidentId:
        return False
    return True


def mask(number: str) -> str:
    """``330106********0014``: the area and the last four characters, never the birth date.

    The input must have the shape of a resident ID number (see :func:`normalize`); anything else
    raises rather than being partly shown, since we could not know which part is safe to show.
    """
    canonical = normalize(number)
    return canonical[:6] + "*" * 8 + canonical[14:]


def generate(area_code: str, birth_date: date, sequence: int, sex: Sex) -> str:
    """A valid synthetic number, for the synthetic city and for tests.

    ``sequence`` is the 3-digit order code (0-999), the same value :attr:`ResidentId.sequence`
    returns, so ``validate(generate(a, d, s, x))`` gives back exactly ``a, d, s, x``. Its parity
    encodes the sex, so it must be odd for "male" and even for "female"; a mismatch raises
    ValueError rather than quietly changing either value. A future ``birth_date`` is allowed
    (tests need such numbers); :func:`validate` rejects it relative to its ``today``.
    """
    if len(area_code) != 6 or not set(area_code) <= _ASCII_DIGITS:
        raise ValueError("area_code must be 6 ASCII digits")
    if area_code[:2] not in PROVINCE_PREFIXES:
        raise ValueError("area_code does not start with a province-level prefix")
    if birth_date < EARLIEST_BIRTH_DATE:
        raise ValueError("birth_date must be on or after 1880-01-01")
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be between 0 and 999")
    if sex not in ("male", "female"):
        raise ValueError("sex must be 'male' or 'female'")
    if _sex_of(sequence) != sex:
        raise ValueError("sequence must be odd for 'male' and even for 'female'")
    first17 = f"{area_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def _birth_date(digits: str, today: date) -> date:
    try:
        birth_date = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        # Chaining would add nothing the code does not already say.
        raise InvalidResidentId("birth_date") from None
    if birth_date < EARLIEST_BIRTH_DATE:
        raise InvalidResidentId("birth_date")
    if birth_date > today:
        raise InvalidResidentId("future_birth_date")
    return birth_date


def _sex_of(sequence: int) -> Sex:
    return "male" if sequence % 2 else "female"


def _today_in_china() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()
