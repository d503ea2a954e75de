"""Bearer tokens at the edge: each bad kind is a 401 problem with a challenge; good ones cached."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from gateway.auth import EdgeAuth
from gwtest import assert_problem
from servicekit.auth import JWTVerifier
from servicekit.tokens import SigningKey, standard_claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


async def _expect_401(gw, authorization: str | bytes | None) -> dict:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await gw.client.get("/api/v1/households", headers=headers)
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    if isinstance(authorization, str) and len(authorization) > 10:
        assert authorization.split(" ")[-1] not in response.text  # the token is never echoed
    return body


async def test_missing_token(gw):
    await _expect_401(gw, None)
    await _expect_401(gw, "Basic dXNlcjpwYXNz")
    await _expect_401(gw, "Bearer")


async def test_good_token_passes(gw):
    response = await gw.client.get("/api/v1/households", headers=gw.auth())
    assert response.status_code == 200


async def test_expired_token(gw):
    body = await _expect_401(gw, f"Bearer {gw.tokens.make(now=time.time() - 7200)}")
    assert "expired" in body["detail"]


async def test_wrong_issuer(gw):
    await _expect_401(gw, f"Bearer {gw.tokens.make(issuer='https://evil.example')}")


async def test_wrong_audience(gw):
    await _expect_401(gw, f"Bearer {gw.tokens.make(audience='another-platform')}")


async def test_alg_none(gw):
    claims = standard_claims(
        issuer=gw.tokens.issuer,
        audience=gw.tokens.audience,
        subject="city-admin",
        extra={"role": "city_admin"},
    )
    await _expect_401(gw, f"Bearer {_unsigned({'alg': 'none', 'typ': 'JWT'}, claims)}")
    await _expect_401(
        gw, f"Bearer {_unsigned({'alg': 'none', 'kid': gw.tokens.key.kid}, claims, b'x')}"
    )


async def test_hs256_signed_with_the_public_key(gw):
    """The classic algorithm confusion: an HMAC keyed with the issuer's public key."""
    claims = standard_claims(
        issuer=gw.tokens.issuer,
        audience=gw.tokens.audience,
        subject="city-admin",
        extra={"role": "city_admin"},
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": gw.tokens.key.kid}
    for public in (
        gw.tokens.key.key.as_pem(private=False),
        json.dumps(gw.tokens.key.jwks()["keys"][0]).encode(),
    ):
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        await _expect_401(gw, f"Bearer {signing_input}.{_b64(signature)}")


async def test_tampered_claims(gw):
    head, _, signature = gw.tokens.make().split(".")
    claims = standard_claims(
        issuer=gw.tokens.issuer,
        audience=gw.tokens.audience,
        subject="city-admin",
        extra={"role": "city_admin"},
    )
    await _expect_401(gw, f"Bearer {head}.{_b64(json.dumps(claims).encode())}.{signature}")


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage",
        b"a.b.c",
        b"....",
        b"eyJhbGciOiJFUzI1NiJ9..",
        "é".encode() * 10,
        b"x" * 9000,
        b"eyJhbGciOiJFUzI1NiJ9.e30.",
        b"bm90IGpzb24.e30.c2ln",
    ],
)
async def test_garbage(gw, garbage):
    await _expect_401(gw, b"Bearer " + garbage)


async def test_unknown_kid_flood_refetches_jwks_at_most_once(gw):
    stranger = SigningKey.generate()
    before = gw.app.verifier.fetch_count
    for i in range(30):
        token = gw.tokens.make(key=stranger, jti=f"flood-{i}")
        # a fresh kid every time, as a forger would send
        head, body, sig = token.split(".")
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        header["kid"] = f"forged-{i}"
        await _expect_401(gw, f"Bearer {_b64(json.dumps(header).encode())}.{body}.{sig}")
    assert gw.app.verifier.fetch_count - before <= 1
    # and the real key still works
    assert (await gw.client.get("/api/v1/households", headers=gw.auth())).status_code == 200


async def test_successful_checks_are_cached_never_past_exp():
    key = SigningKey.generate()
    now = [1_000_000.0]

    async def jwks() -> dict:
        return key.jwks()

    verifier = JWTVerifier("https://issuer.test", "zhongfu", fetch_jwks=jwks, clock=lambda: now[0])
    calls = 0
    original = verifier.verify

    async def counting(token: str) -> dict:
        nonlocal calls
        calls += 1
        return await original(token)

    verifier.verify = counting  # type: ignore[method-assign]
    auth = EdgeAuth(verifier, cache_seconds=60, cache_size=2, clock=lambda: now[0])
    token = key.sign(
        standard_claims(
            issuer="https://issuer.test", audience="zhongfu", subject="s1", lifetime=10, now=now[0]
        )
    )
    assert auth.cached_subject(token) is None
    assert await auth.verify(token) == "s1"
    assert auth.cached_subject(token) == "s1"
    assert calls == 1
    now[0] += 11  # past exp (10 s), though inside the 60 s cache time
    assert auth.cached_subject(token) is None
    # Bounded: a third entry evicts the first.
    tokens = [
        key.sign(
            standard_claims(
                issuer="https://issuer.test", audience="zhongfu", subject=f"s{i}", now=now[0]
            )
        )
        for i in range(3)
    ]
    for t in tokens:
        await auth.verify(t)
    assert auth.cached_subject(tokens[0]) is None
    assert auth.cached_subject(tokens[2]) == "s2"
    assert token not in str(auth._cache)  # keyed by a hash, not the token
