"""The PII vault: names, ID numbers, phones and addresses sealed at rest, found by blind index.

Values are encrypted with servicekit.crypto.FieldCipher, bound to (table, column, row id), so a
value copied to another row does not decrypt. ID numbers are found by an HMAC blind index of
their normalised form. Keys come from settings; in development, when none are configured, the
kit's public development keys are used and the log says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from servicekit.crypto import BlindIndex, FieldCipher, dev_keys, load_key, load_keys
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

RESIDENT_PURPOSE = "resident_id"


class Vault:
    def __init__(self, cipher: FieldCipher, blind_index_key: bytes) -> None:
        self.cipher = cipher
        self.index = BlindIndex(blind_index_key)
        # BlindIndex.digest derives the purpose subkey on every call; the feed path looks up
        # hundreds of thousands of numbers, so the subkey is derived once here, the same way
        # (checked against BlindIndex by the tests).
        self._resident_subkey = hmac.digest(blind_index_key, f"blind-index/v1/{RESIDENT_PURPOSE}".encode(), "sha256")
        # HMAC-SHA256 of that subkey (RFC 2104) with its two keyed hash states made once: a
        # number then costs two copies and updates, not a new HMAC object (0.6 against 1.4 us).
        block = self._resident_subkey.ljust(hashlib.sha256().block_size, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Vault:
        if settings.pii_keys:
            keys = load_keys(settings.pii_keys)
            active = settings.pii_active_key_id or (next(iter(keys)) if len(keys) == 1 else None)
            if active is None:
                raise ValueError("PII_ACTIVE_KEY_ID must name one of several PII keys")
            if settings.blind_index_key is None:
                raise ValueError("BLIND_INDEX_KEY is required when PII keys are configured")
            return cls(FieldCipher(keys, active), load_key(settings.blind_index_key, name="blind index"))
        if not settings.is_development:
            raise ValueError("PII_KEYS, PII_ACTIVE_KEY_ID and BLIND_INDEX_KEY are required in production")
        log.warning("PII keys unset: using the PUBLIC development keys; never load real personal data")
        keys = dev_keys()
        return cls(keys.field_cipher(), keys.blind_index_key)

    def seal(self, value: str | None, *, table: str, column: str, row_id: str) -> str | None:
        if value is None:
            return None
        return self.cipher.encrypt(value, table=table, column=column, row_id=row_id)

    def open(self, token: str | None, *, table: str, column: str, row_id: str) -> str | None:
        if token is None:
            return None
        return self.cipher.decrypt(token, table=table, column=column, row_id=row_id)

    def resident_index(self, normalised: str) -> str:
        """Blind index of an already normalised resident ID number."""
        inner = self._inner.copy()
        inner.update(normalised.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
