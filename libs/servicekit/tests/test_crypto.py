"""Field encryption, blind indexes, key loading and masks for personal data (synthetic data)."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from servicekit.crypto import (
    BlindIndex,
    DecryptionError,
    FieldCipher,
    KeyConfigurationError,
    dev_keys,
    is_development_key,
    load_key,
    load_keys,
    mask_name,
    mask_phone,
)
from servicekit.settings import DEV_PII_KEY_ID

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
WHERE = {"table": "member", "column": "resident_id", "row_id": "0b6c1f2e-row-1"}
SECRET = "330106199003070014"


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({"k1": KEY_A}, active_key_id="k1")


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


# -- FieldCipher: round trip and envelope ------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["", SECRET, "张三明", "浙江省杭州市西湖区文三路 1 号 🏠", "x" * 5000])
def test_round_trip(cipher: FieldCipher, plaintext: str) -> None:
    token = cipher.encrypt(plaintext, **WHERE)
    assert cipher.decrypt(token, **WHERE) == plaintext


def test_envelope_is_compact_ascii_naming_its_key(cipher: FieldCipher) -> None:
    token = cipher.encrypt(SECRET, **WHERE)
    version, key_id, payload = token.split(".")
    assert (version, key_id) == ("v1", "k1")
    assert token.isascii() and "=" not in token
    blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert len(blob) == 12 + len(SECRET) + 16  # nonce, ciphertext, tag
    assert SECRET not in token


def test_same_plaintext_encrypts_differently_each_time(cipher: FieldCipher) -> None:
    assert cipher.encrypt(SECRET, **WHERE) != cipher.encrypt(SECRET, **WHERE)


@given(st.text(max_size=200), st.text(min_size=1, max_size=40))
def test_round_trip_property(plaintext: str, row_id: str) -> None:
    cipher = FieldCipher({"k1": KEY_A}, "k1")
    where = {"table": "member", "column": "name", "row_id": row_id}
    assert cipher.decrypt(cipher.encrypt(plaintext, **where), **where) == plaintext


# -- associated data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "elsewhere",
    [
        {**WHERE, "row_id": "0b6c1f2e-row-2"},
        {**WHERE, "column": "phone"},
        {**WHERE, "table": "household"},
        # Same concatenated text, different split: the encoding must keep them apart.
        {"table": "member", "column": "resident_i", "row_id": "d0b6c1f2e-row-1"},
    ],
)
def test_value_moved_elsewhere_does_not_decrypt(cipher: FieldCipher, elsewhere: dict) -> None:
    token = cipher.encrypt(SECRET, **WHERE)
    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(token, **elsewhere)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("missing", ["table", "column", "row_id"])
def test_empty_location_is_refused(cipher: FieldCipher, missing: str) -> None:
    with pytest.raises(ValueError):
        cipher.encrypt(SECRET, **{**WHERE, missing: ""})


# -- tampering and malformed tokens ------------------------------------------------------------


def test_any_flipped_bit_is_detected(cipher: FieldCipher) -> None:
    token = cipher.encrypt(SECRET, **WHERE)
    header, payload = token.rsplit(".", 1)
    blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        encoded = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        with pytest.raises(DecryptionError):
            cipher.decrypt(f"{header}.{encoded}", **WHERE)


def test_changing_the_key_id_in_the_envelope_is_detected() -> None:
    # Both keys the same bytes: only the authenticated header can tell the ids apart.
    cipher = FieldCipher({"k1": KEY_A, "k2": KEY_A}, "k1")
    token = cipher.encrypt(SECRET, **WHERE)
    with pytest.raises(DecryptionError):
        cipher.decrypt(token.replace("v1.k1.", "v1.k2.", 1), **WHERE)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.k1",
        "v2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAA",  # shorter than nonce + tag
        "v1.k1.AAAA====",
        "v1.k1.not base64!",
        "v1.k.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",  # non-canonical trailing bits
    ],
)
def test_malformed_tokens_raise_decryption_error(cipher: FieldCipher, token: str) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, **WHERE)


def test_non_string_token_raises_decryption_error(cipher: FieldCipher) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt(b"v1.k1.AAAA", **WHERE)  # type: ignore[arg-type]


def test_unknown_key_id_raises_decryption_error() -> None:
    old = FieldCipher({"retired": KEY_B}, "retired")
    token = old.encrypt(SECRET, **WHERE)
    with pytest.raises(DecryptionError, match="unknown key id"):
        FieldCipher({"k1": KEY_A}, "k1").decrypt(token, **WHERE)


def test_wrong_key_bytes_under_the_same_id_fail() -> None:
    token = FieldCipher({"k1": KEY_A}, "k1").encrypt(SECRET, **WHERE)
    with pytest.raises(DecryptionError):
        FieldCipher({"k1": KEY_B}, "k1").decrypt(token, **WHERE)


# -- rotation ----------------------------------------------------------------------------------


def test_rotation_reads_old_values_and_writes_with_the_active_key() -> None:
    before = FieldCipher({"k1": KEY_A}, "k1")
    old_token = before.encrypt(SECRET, **WHERE)

    after = FieldCipher({"k1": KEY_A, "k2": KEY_B}, "k2")
    assert after.decrypt(old_token, **WHERE) == SECRET
    assert after.needs_rotation(old_token)
    assert after.key_id_of(old_token) == "k1"

    new_token = after.rotate(old_token, **WHERE)
    assert new_token.startswith("v1.k2.")
    assert not after.needs_rotation(new_token)
    assert after.decrypt(new_token, **WHERE) == SECRET
    assert after.rotate(new_token, **WHERE) == new_token  # nothing to do: unchanged

    # Once every value is rotated, the old key can go.
    assert FieldCipher({"k2": KEY_B}, "k2").decrypt(new_token, **WHERE) == SECRET


def test_rotation_still_checks_the_location() -> None:
    old_token = FieldCipher({"k1": KEY_A}, "k1").encrypt(SECRET, **WHERE)
    after = FieldCipher({"k1": KEY_A, "k2": KEY_B}, "k2")
    with pytest.raises(DecryptionError):
        after.rotate(old_token, **{**WHERE, "row_id": "another-row"})


# -- key validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "active"),
    [
        ({}, "k1"),
        ({"k1": KEY_A}, "k2"),
        ({"k1": KEY_A[:16]}, "k1"),  # AES-128 is not accepted
        ({"k1": KEY_A + b"\x00"}, "k1"),
        ({"k1": _b64(KEY_A)}, "k1"),  # base64 text, not decoded bytes
        ({"k.1": KEY_A}, "k.1"),  # '.' would break the envelope
        ({"": KEY_A}, ""),
    ],
)
def test_bad_key_configuration_is_refused(keys: dict, active: str) -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        FieldCipher(keys, active)
    assert KEY_A.hex() not in str(caught.value)


def test_repr_hides_keys() -> None:
    cipher = FieldCipher({"k1": KEY_A}, "k1")
    assert KEY_A.hex() not in repr(cipher) and "k1" in repr(cipher)
    assert KEY_A.hex() not in repr(BlindIndex(KEY_A))
    assert dev_keys().blind_index_key.hex() not in repr(dev_keys())


# -- blind index -------------------------------------------------------------------------------


def test_blind_index_is_deterministic_and_fixed_length() -> None:
    index = BlindIndex(KEY_A)
    first = index.digest(SECRET, purpose="resident_id")
    assert first == BlindIndex(KEY_A).digest(SECRET, purpose="resident_id")
    assert len(first) == 64 and set(first) <= set("0123456789abcdef")
    assert len(index.digest("", purpose="phone")) == 64
    assert len(index.digest("x" * 10_000, purpose="phone")) == 64


def test_blind_index_separates_purposes_values_and_keys() -> None:
    index = BlindIndex(KEY_A)
    assert index.digest("13800131234", purpose="phone") != index.digest(
        "13800131234", purpose="resident_id"
    )
    assert index.digest(SECRET, purpose="resident_id") != index.digest(
        "330106199003070022", purpose="resident_id"
    )
    assert BlindIndex(KEY_B).digest(SECRET, purpose="resident_id") != index.digest(
        SECRET, purpose="resident_id"
    )


def test_blind_index_does_not_normalise_for_the_caller() -> None:
    index = BlindIndex(KEY_A)
    assert index.digest("33010220000229012x", purpose="resident_id") != index.digest(
        "33010220000229012X", purpose="resident_id"
    )


@pytest.mark.parametrize("purpose", ["", "Phone", "resident id", "a.b", "x" * 65])
def test_blind_index_refuses_odd_purposes(purpose: str) -> None:
    with pytest.raises(ValueError):
        BlindIndex(KEY_A).digest(SECRET, purpose=purpose)


def test_blind_index_key_must_be_32_bytes() -> None:
    with pytest.raises(KeyConfigurationError):
        BlindIndex(KEY_A[:31])


@given(st.text(max_size=50), st.text(max_size=50))
def test_blind_index_differs_for_different_values(a: str, b: str) -> None:
    index = BlindIndex(KEY_A)
    assert (index.digest(a, purpose="p") == index.digest(b, purpose="p")) == (a == b)


# -- development keys and key loading ----------------------------------------------------------


def test_dev_keys_are_deterministic_and_usable() -> None:
    keys = dev_keys()
    assert keys == dev_keys()
    assert keys.active_key_id == DEV_PII_KEY_ID == "dev1"
    assert set(keys.field_keys) == {"dev1"}
    assert len(keys.field_keys["dev1"]) == 32 and len(keys.blind_index_key) == 32
    assert keys.field_keys["dev1"] != keys.blind_index_key
    token = keys.field_cipher().encrypt(SECRET, **WHERE)
    assert dev_keys().field_cipher().decrypt(token, **WHERE) == SECRET
    digest = keys.blind_index().digest(SECRET, purpose="resident_id")
    assert digest == dev_keys().blind_index().digest(SECRET, purpose="resident_id")


def test_development_keys_are_recognised_under_any_id() -> None:
    assert is_development_key(dev_keys().field_keys["dev1"])
    assert is_development_key(dev_keys().blind_index_key)
    assert not is_development_key(os.urandom(32))


def test_load_keys_decodes_standard_urlsafe_and_unpadded_base64() -> None:
    key_c = bytes([0xFB, 0xFF] * 16)  # encodes with '+' and '/' (or '-' and '_')
    loaded = load_keys(
        {
            "k1": _b64(KEY_A) + "\n",  # as read from a secret file
            "k2": base64.urlsafe_b64encode(key_c).decode().rstrip("="),
            "k3": SecretStr(_b64(KEY_B)),
        }
    )
    assert loaded == {"k1": KEY_A, "k2": key_c, "k3": KEY_B}
    assert FieldCipher(loaded, "k2").active_key_id == "k2"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "no field-encryption keys"),
        ({"k1": ""}, "'k1' is empty"),
        ({"k1": "not base64 at all!"}, "not valid base64"),
        ({"k1": _b64(KEY_A[:16])}, "16 bytes"),
        ({"k.1": _b64(KEY_A)}, "key id"),
    ],
)
def test_load_keys_errors_are_clear_and_keep_the_key_secret(mapping: dict, message: str) -> None:
    with pytest.raises(KeyConfigurationError, match=message) as caught:
        load_keys(mapping)
    for value in mapping.values():
        if value:
            assert value not in str(caught.value)


def test_load_key_for_the_blind_index() -> None:
    assert load_key(_b64(KEY_B), name="blind index") == KEY_B


# -- masks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三明", "张*明"),
        ("张三", "张*"),
        ("张", "*"),
        ("欧阳小明", "欧**明"),
        ("买买提·艾力", "买****力"),
        ("John Smith", "J********h"),
        ("Al", "A*"),
        ("José", "J**é"),
        ("Jose\u0301", "J**é"),  # decomposed é counts as one character
        ("  张三明 ", "张*明"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800131234", "138****1234"),
        ("138 0013 1234", "138****1234"),
        ("138-0013-1234", "138****1234"),
        ("+8613800131234", "138****1234"),
        ("+86 138 0013 1234", "138****1234"),
        ("0571-87654321", "*********321"),
        ("87654321", "******21"),
        ("1380013123", "********23"),  # 10 digits: not a mobile
        ("１３８００１３１２３４", "*********３４"),  # full-width: not a mobile, masked generically
        ("123", "***"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_mask_phone_hides_the_middle_of_any_mobile(digits: str) -> None:
    mobile = "1" + digits[1:]
    assert mask_phone(mobile) == mobile[:3] + "****" + mobile[7:]
