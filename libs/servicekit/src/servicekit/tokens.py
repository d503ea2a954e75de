"""Signing side of tokens: a key pair with its JWKS, used by the gateway's development issuer
and by tests. Production tokens come from the city's identity provider, never from here."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

TOKEN_LIFETIME_SECONDS = 3600


class SigningKey:
    """An ES256 key with a stable kid (its RFC 7638 thumbprint)."""

    algorithm = "ES256"

    def __init__(self, key: ECKey) -> None:
        self.key = key
        self.kid = key.thumbprint()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ECKey.generate_key("P-256", private=True))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Keep the development key across restarts so tokens stay valid; file is 0600."""
        if path.exists():
            return cls(ECKey.import_key(path.read_bytes()))
        signing = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(signing.key.as_pem(private=True))
        return signing

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update({"kid": self.kid, "use": "sig", "alg": self.algorithm})
        return {"keys": [public]}

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def sign(self, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
        hdr = {"alg": self.algorithm, "kid": self.kid, "typ": "JWT"}
        hdr.update(header or {})
        return jwt.encode(hdr, claims, self.key, algorithms=[self.algorithm])


def standard_claims(
    *,
    issuer: str,
    audience: str,
    subject: str,
    extra: dict[str, Any] | None = None,
    lifetime: int = TOKEN_LIFETIME_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer.rstrip("/"),
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
    }
    claims.update({k: v for k, v in (extra or {}).items() if v is not None})
    return claims
