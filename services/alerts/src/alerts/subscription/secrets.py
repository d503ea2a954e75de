"""Signing secrets (whsec_...): generated here, encrypted at rest bound to their row, used to sign
every delivery; during a rotation the old and the new secret both sign (Standard Webhooks lets a
receiver accept any one of several signatures), so no receiver is ever without a valid one."""

from __future__ import annotations

import base64
import secrets as pysecrets

from servicekit.crypto import FieldCipher, dev_keys, load_keys

from alerts.settings import AlertsSettings

TABLE, COLUMN = "subscription_secrets", "secret"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(pysecrets.token_bytes(32)).decode()


def cipher_from_settings(settings: AlertsSettings) -> FieldCipher:
    if settings.pii_keys:
        active = settings.pii_active_key_id or next(iter(settings.pii_keys))
        return FieldCipher(load_keys(settings.pii_keys), active)
    if settings.is_development:
        return dev_keys().field_cipher()
    raise ValueError("PII_KEYS are required in production: webhook secrets are encrypted with them")


def seal(cipher: FieldCipher, secret: str, row_id: str) -> str:
    return cipher.encrypt(secret, table=TABLE, column=COLUMN, row_id=row_id)


def unseal(cipher: FieldCipher, token: str, row_id: str) -> str:
    return cipher.decrypt(token, table=TABLE, column=COLUMN, row_id=row_id)
