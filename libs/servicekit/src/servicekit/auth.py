"""Identity: JWT checks, the caller, roles and jurisdiction scopes.

Tokens come from an OIDC issuer (the city's, or the gateway's development issuer). The gateway
checks them at the edge and every service checks them again: algorithms pinned, issuer,
audience, expiry and not-before validated, the JWKS cached and an unknown ``kid`` refetched at
most once per cool-down, so a flood of forged kids cannot hammer the issuer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import InstrumentedAttribute

from servicekit.errors import Forbidden, ServiceUnavailable, Unauthorized

ALLOWED_ALGORITHMS = ("RS256", "ES256")
CLOCK_SKEW_SECONDS = 30


class Role(StrEnum):
    city_admin = "city_admin"
    district_officer = "district_officer"
    town_worker = "town_worker"
    village_worker = "village_worker"
    department = "department"
    partner = "partner"
    citizen = "citizen"
    auditor = "auditor"
    service = "service"


# Roles whose jurisdiction is the whole city regardless of the area claim.
CITY_WIDE = frozenset({Role.city_admin, Role.auditor, Role.service})
# Roles that act for the government inside an area.
OFFICIALS = frozenset({Role.city_admin, Role.district_officer, Role.town_worker, Role.village_worker})


def jurisdiction_prefix(area_code: str) -> str:
    """The significant prefix of a 12-digit division code: 3301, 330106, 330106001 or the village."""
    code = area_code.strip()
    if len(code) != 12:
        return code  # already a prefix (4, 6 or 9 digits)
    if code[4:] == "00000000":
        return code[:4]
    if code[6:] == "000000":
        return code[:6]
    if code[9:] == "000":
        return code[:9]
    return code


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as the token says; never built from request parameters."""

    subject: str
    role: Role
    area: str | None = None
    organisation: str | None = None
    department: str | None = None
    resident_id: str | None = field(default=None, repr=False)  # citizens only; never logged
    client_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def scope_prefix(self) -> str | None:
        """The area prefix this caller may see; ``None`` means the whole city."""
        if self.role in CITY_WIDE or not self.area:
            return None
        return jurisdiction_prefix(self.area)

    @property
    def visible_prefix(self) -> str | None:
        """The prefix of every area code this caller may see: ``""`` for the whole city, ``None``
        for none at all (an official without an area claim)."""
        prefix = self.scope_prefix
        if prefix is None:
            return "" if self.role in CITY_WIDE else None
        return prefix

    def can_see_area(self, area_code: str | None) -> bool:
        prefix = self.visible_prefix
        if prefix is None:
            return False
        return prefix == "" or (area_code is not None and area_code.startswith(prefix))

    def scope(self, column: InstrumentedAttribute[str] | ColumnElement[str]) -> ColumnElement[bool]:
        """SQL condition keeping only rows in this caller's jurisdiction; repositories apply it
        (a statement written for the driver applies ``visible_prefix`` itself)."""
        prefix = self.visible_prefix
        if prefix is None:
            return false()
        return true() if prefix == "" else column.startswith(prefix, autoescape=True)


# The longest token subject this platform keeps: every read and write of personal data records
# its caller (``AuditRecord.actor``, as long as this), and a record that cannot be written fails
# the request, so a longer subject is refused at once, with a reason.
SUBJECT_MAX_LENGTH = 128


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    try:
        role = Role(claims.get("role", ""))
    except ValueError as exc:
        raise Forbidden("The token carries no role this platform knows.") from exc
    subject = str(claims.get("sub", ""))
    if len(subject) > SUBJECT_MAX_LENGTH:
        raise Unauthorized(f"The token's subject is longer than {SUBJECT_MAX_LENGTH} characters, "
                           "more than this platform's audit log keeps.")
    return Caller(
        subject=subject,
        role=role,
        area=claims.get("area"),
        organisation=claims.get("org"),
        department=claims.get("dept"),
        resident_id=claims.get("resident_id"),
        client_id=claims.get("client_id") or claims.get("azp"),
        claims=claims,
    )


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class JWTVerifier:
    """Checks bearer tokens against the issuer's JWKS.

    A token whose signature checked out is remembered for ``cache_seconds`` (at most
    ``cache_size`` tokens, oldest dropped first): a client sends the same token with every
    request, and the signature check is most of the cost of a cheap read. Its claims (expiry,
    not-before, issuer, audience) are still checked on every use, so a cached token never
    outlives its ``exp``.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        fetch_jwks: JwksFetcher | None = None,
        http: httpx.AsyncClient | None = None,
        cooldown_seconds: float = 30.0,
        algorithms: Collection[str] = ALLOWED_ALGORITHMS,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 60.0,
        cache_size: int = 10_000,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        # token -> (its claims, remembered until); insertion order gives FIFO eviction.
        self._verified: dict[str, tuple[dict[str, Any], float]] = {}
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.cooldown = cooldown_seconds
        self._clock = clock
        self._http = http
        self._fetch = fetch_jwks or self._fetch_from_issuer
        self._keys: KeySet | None = None
        self._last_fetch = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def _fetch_from_issuer(self) -> dict[str, Any]:
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        try:
            disco = await client.get(f"{self.issuer}/.well-known/openid-configuration")
            disco.raise_for_status()
            jwks = await client.get(disco.json()["jwks_uri"])
            jwks.raise_for_status()
            return jwks.json()
        finally:
            if self._http is None:
                await client.aclose()

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._keys is not None and not force:
                return
            if now - self._last_fetch < self.cooldown:
                return  # an unknown kid within the cool-down: answer from what we have
            self._last_fetch = now
            try:
                data = await self._fetch()
                self.fetch_count += 1
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except Exception as exc:
                if self._keys is None:
                    raise ServiceUnavailable("The identity provider's keys could not be loaded.") from exc

    async def _key_for(self, kid: str | None) -> Any:
        if self._keys is None:
            await self._refresh(force=False)
        for attempt in (0, 1):
            if self._keys is not None:
                try:
                    return self._keys.get_by_kid(kid)
                except (JoseError, ValueError):
                    pass
            if attempt == 0:
                await self._refresh(force=True)
        raise Unauthorized("The token was signed with an unknown key.")

    async def verify(self, token: str) -> dict[str, Any]:
        hit = self._verified.get(token)
        if hit is not None:
            if self._clock() < hit[1]:
                self._check_claims(hit[0])
                return dict(hit[0])
            self._verified.pop(token, None)
        claims = await self._verify_signed(token)
        if self.cache_size > 0 and self.cache_seconds > 0:
            if len(self._verified) >= self.cache_size:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = (claims, self._clock() + self.cache_seconds)
        return dict(claims)

    async def _verify_signed(self, token: str) -> dict[str, Any]:
        header = _peek_header(token)
        alg = header.get("alg")
        if alg not in self.algorithms:
            # 'none', HS256 signed with a public key, and anything else unpinned.
            raise Unauthorized("The token's signing algorithm is not accepted.")
        key = await self._key_for(header.get("kid"))
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except (JoseError, ValueError) as exc:
            raise Unauthorized("The token's signature is not valid.") from exc
        claims = decoded.claims
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        if claims.get("iss") != self.issuer:
            raise Unauthorized("The token was issued by an issuer this platform does not trust.")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise Unauthorized("The token is not meant for this platform.")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)):
            raise Unauthorized("The token has no expiry.")
        if now > exp + CLOCK_SKEW_SECONDS:
            raise Unauthorized("The token has expired.")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and now + CLOCK_SKEW_SECONDS < nbf:
            raise Unauthorized("The token is not valid yet.")


def _peek_header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise Unauthorized("The bearer token is not a signed JWT.")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("The bearer token is not a signed JWT.") from exc
    if not isinstance(header, dict):
        raise Unauthorized("The bearer token is not a signed JWT.")
    return header


def bearer_token(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


async def get_caller(request: Request) -> Caller:
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    verifier: JWTVerifier = request.app.state.verifier
    claims = await verifier.verify(bearer_token(request))
    caller = caller_from_claims(claims)
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require_roles(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only the given roles; others get 403 (they are authenticated)."""
    allowed = frozenset(roles)

    async def dependency(caller: CurrentCaller) -> Caller:
        if caller.role not in allowed:
            raise Forbidden("Your role may not do this.")
        return caller

    dependency.__name__ = "require_" + "_or_".join(r.value for r in roles)
    return dependency


ServiceCaller = Annotated[Caller, Depends(require_roles(Role.service))]
