"""Bearer tokens at the edge: servicekit's JWTVerifier, with a short cache of successful checks.

Services check the token again; the gateway's check only keeps anonymous and forged traffic off
them. Signature checks cost far more than the hop itself, so a success is remembered, keyed by a
hash of the token (the token itself is never kept), for a few seconds and never past ``exp``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from servicekit.auth import JWTVerifier
from servicekit.errors import Unauthorized

# RFC 6750 section 3: say why when a token was presented, only the realm when none was.
_CHALLENGE = 'Bearer realm="zhongfu"'
_INVALID_CHALLENGE = 'Bearer realm="zhongfu", error="invalid_token"'
# Real tokens are well under 2 KiB; a larger one is not worth parsing.
MAX_TOKEN_BYTES = 8192


def token_from_header(authorization: bytes | None) -> str:
    """The bearer token of an Authorization header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": _CHALLENGE})
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": _CHALLENGE})
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthorized(
            "The bearer token is not a signed JWT.",
            headers={"WWW-Authenticate": _INVALID_CHALLENGE},
        )
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        raise Unauthorized(
            "The bearer token is not a signed JWT.",
            headers={"WWW-Authenticate": _INVALID_CHALLENGE},
        ) from None


class EdgeAuth:
    """Verifies bearer tokens and remembers the subject of good ones for a while."""

    def __init__(
        self,
        verifier: JWTVerifier,
        *,
        cache_seconds: float = 60.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = verifier
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._clock = clock
        # digest -> (subject, valid until); insertion order gives FIFO eviction.
        self._cache: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def cached_subject(self, token: str) -> str | None:
        """The subject of a token checked recently and not yet expired, without verifying."""
        hit = self.cached(token)
        return hit[0] if hit is not None else None

    def cached(self, token: str) -> tuple[str, float] | None:
        """The subject of a recently checked token and until when that holds, or None."""
        key = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(key)
        if hit is None:
            return None
        if hit[1] <= self._clock():
            self._cache.pop(key, None)
            return None
        return hit

    async def verify(self, token: str) -> str:
        """Verify a token the cache does not know; return its subject or raise Unauthorized."""
        try:
            claims = await self.verifier.verify(token)
        except Unauthorized as exc:
            raise Unauthorized(
                exc.detail, headers={"WWW-Authenticate": _INVALID_CHALLENGE}
            ) from None
        subject = str(claims.get("sub") or "")
        if self.cache_size and self.cache_seconds:
            until = min(self._clock() + self.cache_seconds, float(claims["exp"]))
            if len(self._cache) >= self.cache_size:
                self._cache.popitem(last=False)
            self._cache[hashlib.sha256(token.encode()).digest()] = (subject, until)
        return subject
