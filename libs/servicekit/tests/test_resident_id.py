"""GB 11643 resident ID numbers: vectors (all synthetic), reason codes, masking, properties."""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit import resident_id
from servicekit.resident_id import (
    PROVINCE_PREFIXES,
    InvalidResidentId,
    ResidentId,
    check_character,
    generate,
    is_valid,
    mask,
    normalize,
    validate,
)

TODAY = date(2025, 6, 1)

# Check characters recomputed by hand with weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2.
VALID = {
    "330106199003070014": ("330106", date(1990, 3, 7), "male", 1),
    "330106199003070022": ("330106", date(1990, 3, 7), "female", 2),
    "33010220000229012X": ("330102", date(2000, 2, 29), "female", 12),
    "330110198511111230": ("330110", date(1985, 11, 11), "male", 123),
    "330106201506010048": ("330106", date(2015, 6, 1), "female", 4),
    "330103198001010014": ("330103", date(1980, 1, 1), "male", 1),  # 330103 abolished 2021
    "330104197512310029": ("330104", date(1975, 12, 31), "female", 2),  # 330104 abolished 2021
    "11010519491231002X": ("110105", date(1949, 12, 31), "female", 2),
}


def _reason(raw: str, today: date = TODAY) -> str:
    with pytest.raises(InvalidResidentId) as caught:
        validate(raw, today=today)
    return caught.value.code


# -- check character ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", VALID)
def test_check_character_of_every_valid_vector(number: str) -> None:
    assert check_character(number[:17]) == number[17]


def test_check_character_ten_is_written_x() -> None:
    assert check_character("33010220000229012") == "X"


@pytest.mark.parametrize(
    "first17", ["3301061990030700", "330106199003070011", "33010619900307001a"]
)
def test_check_character_needs_17_ascii_digits(first17: str) -> None:
    with pytest.raises(InvalidResidentId):
        check_character(first17)


# -- valid numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "expected"), VALID.items())
def test_valid_vectors_parse(number: str, expected: tuple[str, date, str, int]) -> None:
    area_code, birth_date, sex, sequence = expected
    parsed = validate(number, today=TODAY)
    expected_id = ResidentId(number, area_code, birth_date, sex, sequence)  # type: ignore[arg-type]
    assert parsed == expected_id
    assert is_valid(number, today=TODAY)


def test_leap_day_2000_with_x() -> None:
    assert validate("33010220000229012X", today=TODAY).birth_date == date(2000, 2, 29)


def test_lower_case_x_normalises_to_upper() -> None:
    assert normalize("33010220000229012x") == "33010220000229012X"
    assert validate("33010220000229012x", today=TODAY).number == "33010220000229012X"


def test_surrounding_whitespace_is_stripped() -> None:
    # U+3000 is the ideographic space that comes with text pasted from Chinese forms.
    assert normalize(" \t330106199003070014\n\u3000") == "330106199003070014"


def test_abolished_area_codes_are_accepted() -> None:
    assert validate("330103198001010014", today=TODAY).area_code == "330103"
    assert validate("330104197512310029", today=TODAY).area_code == "330104"


@pytest.mark.parametrize("prefix", ["71", "81", "82", "83", "11", "65"])
def test_every_kind_of_province_prefix_is_accepted(prefix: str) -> None:
    number = generate(prefix + "0000", date(1990, 1, 1), 1, "male")
    assert is_valid(number, today=TODAY)


def test_born_today_is_accepted_and_tomorrow_is_not() -> None:
    number = generate("330106", TODAY, 1, "male")
    assert validate(number, today=TODAY).birth_date == TODAY
    assert _reason(number, today=TODAY - timedelta(days=1)) == "future_birth_date"


def test_1880_is_the_earliest_birth_year() -> None:
    assert is_valid(generate("330106", date(1880, 1, 1), 1, "male"), today=TODAY)
    first17 = "33010618791231001"
    assert _reason(first17 + check_character(first17)) == "birth_date"


def test_default_today_is_used_when_not_given() -> None:
    assert validate("330106199003070014").birth_date == date(1990, 3, 7)
    assert not is_valid("33010620990101001X")


def test_today_in_china_is_utc_plus_eight() -> None:
    offset = resident_id.CHINA_STANDARD_TIME.utcoffset(None)
    assert offset == timedelta(hours=8)


# -- invalid numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("330106199003070015", "check_character"),
        ("330106199002300017", "birth_date"),  # 30 February; check character is right
        ("330106199013010015", "birth_date"),  # month 13; check character is right
        ("33010620990101001X", "future_birth_date"),
        ("33010619900307001", "length"),
        ("3301061990030700141", "length"),
        ("330106900307001", "length"),  # the withdrawn 15-digit form
        ("", "length"),
        ("３３０１０６１９９００３０７００１４", "characters"),  # full-width
        ("٣٣٠١٠٦١٩٩٠٠٣٠٧٠٠١٤", "characters"),  # Arabic-Indic
        ("33010619900307001４", "characters"),  # one full-width digit
        ("3301061990030700X4", "characters"),  # X only as the check character
        ("330106 99003070014", "characters"),
        ("33010619900307001Y", "characters"),
    ],
)
def test_invalid_numbers_give_their_reason(raw: str, code: str) -> None:
    assert _reason(raw) == code
    assert not is_valid(raw, today=TODAY)


def test_thirtieth_of_february_has_a_correct_check_character() -> None:
    assert check_character("33010619900230001") == "7"


@pytest.mark.parametrize(
    "prefix", ["00", "10", "16", "20", "24", "30", "38", "47", "55", "66", "72", "84", "99"]
)
def test_unknown_province_prefix_is_rejected(prefix: str) -> None:
    first17 = prefix + "010619900307001"
    assert _reason(first17 + check_character(first17)) == "area"


@pytest.mark.parametrize(
    "raw",
    ["330106199003070015", "330106199002300017", "33010620990101001X", "3301061990030700141"],
)
def test_messages_never_contain_the_number(raw: str) -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate(raw, today=TODAY)
    for text in (str(caught.value), repr(caught.value)):
        assert raw not in text
        assert raw[6:14] not in text  # nor the birth date
    assert caught.value.__cause__ is None


def test_invalid_resident_id_is_a_value_error_that_survives_pickling() -> None:
    error = InvalidResidentId("area")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, str(copy)) == ("area", str(error))


def test_non_strings_are_not_valid() -> None:
    assert not is_valid(None)  # type: ignore[arg-type]
    assert not is_valid(330106199003070014)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        normalize(330106199003070014)  # type: ignore[arg-type]


# -- masking -----------------------------------------------------------------------------------


def test_mask_keeps_area_and_last_four() -> None:
    assert mask("330106199003070014") == "330106********0014"
    assert mask("33010220000229012x") == "330102********012X"


def test_mask_refuses_what_is_not_shaped_like_a_number() -> None:
    with pytest.raises(InvalidResidentId):
        mask("330106900307001")


def test_repr_of_a_parsed_number_is_masked() -> None:
    parsed = validate("330106199003070014", today=TODAY)
    assert "199003" not in repr(parsed)
    assert "199003" not in str(parsed)
    assert parsed.masked == "330106********0014"


# -- generate ----------------------------------------------------------------------------------


def test_generate_reproduces_a_known_vector() -> None:
    assert generate("330102", date(2000, 2, 29), 12, "female") == "33010220000229012X"


@pytest.mark.parametrize(
    "args",
    [
        ("33010", date(1990, 1, 1), 1, "male"),
        ("3301０6", date(1990, 1, 1), 1, "male"),
        ("990106", date(1990, 1, 1), 1, "male"),
        ("330106", date(1879, 12, 31), 1, "male"),
        ("330106", date(1990, 1, 1), 1000, "male"),
        ("330106", date(1990, 1, 1), -1, "female"),
        ("330106", date(1990, 1, 1), 1, "female"),  # odd order code is male
        ("330106", date(1990, 1, 1), 2, "male"),
        ("330106", date(1990, 1, 1), 2, "other"),
    ],
)
def test_generate_rejects_bad_input(args: tuple) -> None:
    with pytest.raises(ValueError):
        generate(*args)


# -- properties --------------------------------------------------------------------------------

area_codes = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(sorted(PROVINCE_PREFIXES)),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
birth_dates = st.dates(min_value=date(1880, 1, 1), max_value=TODAY)
sequences = st.integers(min_value=0, max_value=999)


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    sequence = draw(sequences)
    sex = "male" if sequence % 2 else "female"
    return generate(draw(area_codes), draw(birth_dates), sequence, sex)


@given(area_codes, birth_dates, sequences)
def test_generated_numbers_always_validate_and_round_trip(
    area_code: str, birth_date: date, sequence: int
) -> None:
    sex = "male" if sequence % 2 else "female"
    number = generate(area_code, birth_date, sequence, sex)
    assert validate(number, today=TODAY) == ResidentId(number, area_code, birth_date, sex, sequence)


@given(valid_numbers(), st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_any_single_character_change_is_rejected(
    number: str, position: int, replacement: str
) -> None:
    if position < 17 and replacement == "X":
        replacement = "0"  # X is a character error there; the point is a digit substitution
    changed = number[:position] + replacement + number[position + 1 :]
    if changed == number:
        return
    assert not is_valid(changed, today=TODAY)


@given(valid_numbers())
def test_mask_never_reveals_the_birth_date(number: str) -> None:
    masked = mask(number)
    assert masked[6:14] == "********"
    assert number[6:14] not in masked
    assert masked[:6] == number[:6] and masked[14:] == number[14:]
