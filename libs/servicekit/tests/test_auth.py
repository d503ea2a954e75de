"""Token checks: every forged or stale token is a 401 problem."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from servicekit.auth import CLOCK_SKEW_SECONDS, Caller, JWTVerifier, Role, jurisdiction_prefix
from servicekit.errors import Unauthorized
from servicekit.testing import TEST_AUDIENCE, TEST_ISSUER, TestIdentity
from servicekit.tokens import SigningKey, standard_claims


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def ident():
    return TestIdentity()


async def test_valid_token(ident):
    claims = await ident.verifier().verify(ident.token("town_worker", area="330106001000"))
    assert claims["role"] == "town_worker"


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "http://evil.test"},
        {"aud": "someone-else"},
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_bad_claims_rejected(ident, change):
    claims = standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", extra={"role": "city_admin"})
    claims.update(change)
    with pytest.raises(Unauthorized):
        await ident.verifier().verify(ident.key.sign(claims))


async def test_alg_none_rejected(ident):
    claims = standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", extra={"role": "city_admin"})
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    with pytest.raises(Unauthorized):
        await ident.verifier().verify(token)


async def test_hs256_signed_with_public_key_rejected(ident):
    public_pem = ident.key.key.as_pem(private=False)
    claims = standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", extra={"role": "city_admin"})
    # Forge by hand: the classic confusion attack signs HS256 with the public key as the secret.
    signing_input = f"{b64({'alg': 'HS256', 'kid': ident.key.kid})}.{b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthorized):
        await ident.verifier().verify(forged)


async def test_other_key_rejected(ident):
    other = SigningKey.generate()
    claims = standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", extra={"role": "city_admin"})
    # same kid as the trusted key, different signature
    with pytest.raises(Unauthorized):
        await ident.verifier().verify(other.sign(claims, header={"kid": ident.key.kid}))


async def test_unknown_kid_flood_refetches_once_per_cooldown(ident):
    fetches = 0

    async def fetch():
        nonlocal fetches
        fetches += 1
        return ident.key.jwks()

    verifier = JWTVerifier(TEST_ISSUER, TEST_AUDIENCE, fetch_jwks=fetch, cooldown_seconds=60)
    await verifier.verify(ident.token("city_admin"))
    other = SigningKey.generate()
    claims = standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", extra={"role": "city_admin"})
    for i in range(50):
        with pytest.raises(Unauthorized):
            await verifier.verify(other.sign(claims, header={"kid": f"unknown-{i}"}))
    assert fetches == 1  # the first load; the flood is inside the cool-down


async def test_rotated_key_is_picked_up_after_cooldown(ident):
    current = {"key": ident.key}

    async def fetch():
        return current["key"].jwks()

    verifier = JWTVerifier(TEST_ISSUER, TEST_AUDIENCE, fetch_jwks=fetch, cooldown_seconds=0)
    await verifier.verify(ident.token("city_admin"))
    current["key"] = SigningKey.generate()
    claims = standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", extra={"role": "city_admin"})
    assert (await verifier.verify(current["key"].sign(claims)))["sub"] == "u"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b", "a.b.c", "e30.e30.", "!!!.###.$$$"])
async def test_garbage_rejected(ident, garbage):
    with pytest.raises(Unauthorized):
        await ident.verifier().verify(garbage)


async def test_service_rejects_missing_and_bad_tokens_with_problem(kit):
    async with kit.client() as c:
        r = await c.get("/api/v1/notes/x")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await c.get("/api/v1/notes/x", headers={"Authorization": "Bearer not.a.token"})
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"


def test_jurisdiction_prefixes():
    assert jurisdiction_prefix("330100000000") == "3301"
    assert jurisdiction_prefix("330106000000") == "330106"
    assert jurisdiction_prefix("330106001000") == "330106001"
    assert jurisdiction_prefix("330106001001") == "330106001001"
    town = Caller(subject="t", role=Role.town_worker, area="330106001000")
    assert town.can_see_area("330106001001")
    assert not town.can_see_area("330106002001")
    assert Caller(subject="c", role=Role.city_admin).can_see_area("330106002001")
    assert not Caller(subject="p", role=Role.partner).can_see_area("330106001001")


async def test_a_checked_token_is_remembered_but_its_claims_checked_each_time(ident, monkeypatch):
    from servicekit import auth

    decodes = 0
    real_decode = auth.jwt.decode

    def counting(*args, **kw):
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kw)

    monkeypatch.setattr(auth.jwt, "decode", counting)
    now = [time.time()]

    async def fetch():
        return ident.key.jwks()

    verifier = JWTVerifier(TEST_ISSUER, TEST_AUDIENCE, fetch_jwks=fetch, clock=lambda: now[0], cache_size=2)
    token = ident.key.sign(standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject="u", lifetime=10,
                                           now=now[0], extra={"role": "city_admin"}))
    first = await verifier.verify(token)
    first["sub"] = "tampered"  # a caller changing its copy changes nothing remembered
    assert (await verifier.verify(token))["sub"] == "u" and decodes == 1
    now[0] += 10 + CLOCK_SKEW_SECONDS + 1  # past exp: refused although remembered
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
    # A forged signature is never remembered as good, and the memory stays bounded.
    forged = token[: token.rindex(".") + 1] + "A" * 20
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(forged)
    for i in range(5):
        await verifier.verify(ident.key.sign(standard_claims(issuer=TEST_ISSUER, audience=TEST_AUDIENCE, subject=f"s{i}",
                                                             now=now[0], extra={"role": "city_admin"})))
    assert len(verifier._verified) <= 2


def test_a_subject_longer_than_the_audit_log_keeps_is_refused_with_a_reason():
    # Every audited request records its caller's subject; one that cannot be recorded would fail
    # each such request with a 500, so the token is refused at once instead.
    from servicekit.auth import SUBJECT_MAX_LENGTH, caller_from_claims
    from servicekit.tables import AuditRecord

    assert AuditRecord.__table__.c.actor.type.length == SUBJECT_MAX_LENGTH
    longest = "u" * SUBJECT_MAX_LENGTH
    assert caller_from_claims({"sub": longest, "role": "town_worker"}).subject == longest
    with pytest.raises(Unauthorized) as refused:
        caller_from_claims({"sub": longest + "u", "role": "town_worker"})
    assert "128 characters" in refused.value.detail and longest not in refused.value.detail


async def test_a_service_answers_a_too_long_subject_with_a_401_problem(kit):
    token = kit.identity.token("town_worker", area="330106001000", subject="s" * 129)
    async with kit.client() as c:
        r = await c.get("/api/v1/notes/x", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert "subject" in r.json()["detail"]
