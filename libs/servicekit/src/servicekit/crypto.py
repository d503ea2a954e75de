"""Personal data at rest: AES-GCM field encryption bound to its row, HMAC blind indexes, masks.

Pure logic over ``cryptography``; no messages from here ever contain plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pydantic import SecretStr

from servicekit.settings import DEV_PII_KEY_ID

__all__ = [
    "BlindIndex",
    "DecryptionError",
    "DevelopmentKeys",
    "FieldCipher",
    "KeyConfigurationError",
    "dev_keys",
    "is_development_key",
    "load_key",
    "load_keys",
    "mask_name",
    "mask_phone",
]

KEY_BYTES: Final = 32  # AES-256; the blind-index key is the same size for one key format
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
ENVELOPE_VERSION: Final = "v1"

# '.' separates the envelope's parts, so it can never appear in a key id.
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PURPOSE: Final = re.compile(r"[a-z0-9_]{1,64}")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_MOBILE: Final = re.compile(r"(?:\+?86)?(1[0-9]{10})")
_PHONE_SEPARATORS: Final = re.compile(r"[\s\-()]")


class KeyConfigurationError(ValueError):
    """A key or key set is unusable; says which key id and why, never the key."""


class DecryptionError(ValueError):
    """A stored value could not be decrypted; never says what it contained or what the key is."""


class FieldCipher:
    """AES-256-GCM for single fields, each value bound to its table, column and row.

    Envelope: ``v1.<key_id>.<base64url(nonce || ciphertext || tag)>`` (no padding, ASCII), so a
    value names the key that wrote it. New values use ``active_key_id``; every key in ``keys``
    can still decrypt, which is what makes rotation possible without a stop-the-world rewrite.

    The associated data is (envelope header, table, column, row id): a value copied to another
    row, column or table fails to decrypt instead of silently showing one person's data as
    another's. Hence ``row_id`` must be the row's stable id, known *before* the insert (a UUID
    chosen by the application, not a database sequence), and moving a value means re-encrypting.
    Random 96-bit nonces are safe up to about 2^32 values per key; rotate long before that.
    """

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise KeyConfigurationError("no field-encryption keys configured")
        for key_id, key in keys.items():
            _check_key_id(key_id)
            _check_key_bytes(key_id, key)
        if active_key_id not in keys:
            raise KeyConfigurationError(f"active key id {active_key_id!r} is not among the keys")
        self._aeads = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._active_key_id = active_key_id

    def __repr__(self) -> str:
        return f"FieldCipher(key_ids={sorted(self._aeads)!r}, active={self._active_key_id!r})"

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    def encrypt(self, plaintext: str, *, table: str, column: str, row_id: str) -> str:
        """Encrypt ``plaintext`` under the active key for the given table, column and row."""
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be a str; store NULL for a missing value")
        header = f"{ENVELOPE_VERSION}.{self._active_key_id}"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[self._active_key_id].encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(header, table, column, row_id)
        )
        payload = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{header}.{payload}"

    def decrypt(self, token: str, *, table: str, column: str, row_id: str) -> str:
        """The plaintext of ``token``; :class:`DecryptionError` if it is malformed, its key is
        unknown, it was altered, or it belongs to another table, column or row."""
        key_id, blob = _parse(token)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptionError(f"unknown key id {key_id!r}; is a retired key still configured?")
        header = f"{ENVELOPE_VERSION}.{key_id}"
        aad = _associated_data(header, table, column, row_id)
        try:
            plaintext = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionError(
                "authentication failed: altered value, wrong key, or a value that belongs to "
                "another table, column or row"
            ) from None
        return plaintext.decode("utf-8")

    def key_id_of(self, token: str) -> str:
        """The key id a token was written with (no decryption)."""
        return _parse(token)[0]

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was written with a key other than the active one."""
        return self.key_id_of(token) != self._active_key_id

    def rotate(self, token: str, *, table: str, column: str, row_id: str) -> str:
        """``token`` re-encrypted under the active key; returned unchanged if already there."""
        if not self.needs_rotation(token):
            return token
        plaintext = self.decrypt(token, table=table, column=column, row_id=row_id)
        return self.encrypt(plaintext, table=table, column=column, row_id=row_id)


class BlindIndex:
    """Keyed HMAC-SHA256 digests for exact lookup of encrypted values (64 lowercase hex chars).

    The caller normalises the value first (``resident_id.normalize``, a phone reduced to its
    digits, ...): this class hashes exactly the string it is given, so "33010619900307001x" and
    "33010619900307001X" would otherwise never match. Each ``purpose`` gets its own subkey, so
    equal values under different purposes give unrelated digests and cannot be joined.
    The key has no id: changing it means recomputing every digest.
    """

    def __init__(self, key: bytes) -> None:
        _check_key_bytes("blind index", key)
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "BlindIndex(<key>)"

    def digest(self, value: str, *, purpose: str) -> str:
        """HMAC-SHA256 of the already-normalised ``value`` under the subkey for ``purpose``."""
        if not isinstance(value, str):
            raise TypeError("value must be a str")
        if not _PURPOSE.fullmatch(purpose):
            raise ValueError("purpose must be 1-64 characters of a-z, 0-9 and _")
        subkey = hmac.digest(self._key, f"blind-index/v1/{purpose}".encode("ascii"), "sha256")
        return hmac.new(subkey, value.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DevelopmentKeys:
    """DEVELOPMENT ONLY: fixed keys so the embedded default and tests run without secrets.

    Derived from a public label, so anyone can recompute them; settings refuse the key id
    ``dev1`` in production, and :func:`is_development_key` catches the bytes under any id.
    """

    field_keys: dict[str, bytes] = field(repr=False)
    active_key_id: str
    blind_index_key: bytes = field(repr=False)

    def field_cipher(self) -> FieldCipher:
        return FieldCipher(self.field_keys, self.active_key_id)

    def blind_index(self) -> BlindIndex:
        return BlindIndex(self.blind_index_key)


_DEV_LABEL: Final = b"zhongfu development-only keys; public, never for real data"


def _derive_dev_key(purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
        _DEV_LABEL
    )


def dev_keys() -> DevelopmentKeys:
    """DEVELOPMENT ONLY: deterministic keys under key id ``dev1`` plus a blind-index key."""
    field_key = _derive_dev_key(b"field-encryption/" + DEV_PII_KEY_ID.encode("ascii"))
    return DevelopmentKeys(
        field_keys={DEV_PII_KEY_ID: field_key},
        active_key_id=DEV_PII_KEY_ID,
        blind_index_key=_derive_dev_key(b"blind-index"),
    )


def is_development_key(key: bytes) -> bool:
    """Whether ``key`` is one of the public development keys, under whatever id it is configured."""
    keys = dev_keys()
    candidates = [*keys.field_keys.values(), keys.blind_index_key]
    return any(hmac.compare_digest(key, candidate) for candidate in candidates)


def load_key(encoded: str | SecretStr, *, name: str) -> bytes:
    """Decode one base64 key (standard or URL-safe, padding optional) of exactly 32 bytes.

    ``name`` labels errors (a key id, or "blind index"). Generate a key with
    ``python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"``.
    """
    if isinstance(encoded, SecretStr):
        encoded = encoded.get_secret_value()
    text = encoded.strip()  # secret files usually end with a newline
    if not text:
        raise KeyConfigurationError(f"key {name!r} is empty")
    standard = text.replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigurationError(f"key {name!r} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigurationError(
            f"key {name!r} decodes to {len(key)} bytes; exactly {KEY_BYTES} are needed"
        )
    return key


def load_keys(encoded_keys: Mapping[str, str | SecretStr]) -> dict[str, bytes]:
    """Decode ``{key id: base64 key}`` into ``{key id: 32 bytes}``, checking every entry.

    Takes ``settings.pii_keys`` as it is (values may be ``SecretStr``).
    """
    if not encoded_keys:
        raise KeyConfigurationError("no field-encryption keys configured")
    keys = {}
    for key_id, encoded in encoded_keys.items():
        _check_key_id(key_id)
        keys[key_id] = load_key(encoded, name=key_id)
    return keys


def mask_name(name: str) -> str:
    """``张*明`` for 3+ characters (one * per hidden character), ``张*`` for 2, ``*`` for 1.

    Characters, not bytes: "欧阳小明" gives "欧**明", "John Smith" gives "J********h". The hidden
    length is kept so a worker verifying by phone can tell a three-character name from a four.
    """
    text = unicodedata.normalize("NFC", name.strip())  # so "é" counts as one character
    if len(text) <= 1:
        return "*" * len(text)
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def mask_phone(phone: str) -> str:
    """``138****1234`` for a mainland mobile (11 digits, optional +86, separators ignored).

    Anything else keeps at most its last quarter, capped at 4 characters, and stars the rest:
    "0571-87654321" gives "*********321"; up to 3 characters give only stars.
    """
    compact = _PHONE_SEPARATORS.sub("", phone)
    mobile = _MOBILE.fullmatch(compact)
    if mobile:
        digits = mobile.group(1)
        return digits[:3] + "****" + digits[7:]
    shown = min(4, len(compact) // 4)
    return "*" * (len(compact) - shown) + compact[len(compact) - shown :]


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyConfigurationError(
            f"key id {key_id!r} must be 1-32 characters of A-Z, a-z, 0-9, _ and -"
        )


def _check_key_bytes(name: str, key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise KeyConfigurationError(f"key {name!r} must be bytes (decode base64 with load_keys)")
    if len(key) != KEY_BYTES:
        raise KeyConfigurationError(f"key {name!r} is {len(key)} bytes; exactly {KEY_BYTES} needed")


def _associated_data(header: str, table: str, column: str, row_id: str) -> bytes:
    # Length-prefixed parts, so ("a.b", "c") and ("a", "b.c") can never produce the same bytes.
    parts = (header, table, column, row_id)
    for name, part in zip(("table", "column", "row_id"), parts[1:], strict=True):
        if not isinstance(part, str) or not part:
            raise ValueError(f"{name} must be a non-empty str")
    encoded = [part.encode("utf-8") for part in parts]
    return b"".join(len(part).to_bytes(4, "big") + part for part in encoded)


def _parse(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise DecryptionError("an encrypted value must be a str")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != ENVELOPE_VERSION:
        raise DecryptionError(f"not a {ENVELOPE_VERSION} envelope")
    _, key_id, payload = parts
    if not _KEY_ID.fullmatch(key_id) or not _BASE64URL.fullmatch(payload):
        raise DecryptionError("malformed envelope")
    try:
        blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("malformed envelope") from None
    # Only the canonical encoding is accepted, so one stored value has exactly one spelling.
    if base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii") != payload:
        raise DecryptionError("malformed envelope")
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("malformed envelope")
    return key_id, blob
