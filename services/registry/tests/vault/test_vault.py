"""The PII vault: its fast resident-ID index is the kit's blind index; sealed values are bound to
their row; production refuses to run without keys."""

import base64
import os

import pytest

from registry.settings import RegistrySettings
from registry.vault import RESIDENT_PURPOSE, Vault
from servicekit.crypto import BlindIndex, DecryptionError, dev_keys


def test_resident_index_equals_the_kit_blind_index():
    keys = dev_keys()
    vault = Vault(keys.field_cipher(), keys.blind_index_key)
    kit = BlindIndex(keys.blind_index_key)
    for number in ("330106199003070014", "33010220000229012X", "11010519491231002X"):
        assert vault.resident_index(number) == kit.digest(number, purpose=RESIDENT_PURPOSE)


def test_sealed_values_are_bound_to_their_row():
    vault = Vault.from_settings(RegistrySettings(environment="test"))
    token = vault.seal("张三明", table="members", column="name", row_id="a")
    assert vault.open(token, table="members", column="name", row_id="a") == "张三明"
    with pytest.raises(DecryptionError):
        vault.open(token, table="members", column="name", row_id="b")


def test_configured_keys_are_used_and_required_in_production():
    key = base64.b64encode(os.urandom(32)).decode()
    settings = RegistrySettings(environment="test", pii_keys={"k2026": key}, blind_index_key=key)
    vault = Vault.from_settings(settings)
    assert vault.cipher.active_key_id == "k2026"
    production = RegistrySettings(environment="test").model_copy(update={"environment": "production"})
    with pytest.raises(ValueError, match="required in production"):
        Vault.from_settings(production)
