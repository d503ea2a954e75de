"""The development issuer: discovery, JWKS, a token for every demo account, OAuth errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from gateway.app import create_app
from gateway.issuer import DemoAccountsError, load_demo_accounts
from gwtest import REPO, gateway_settings, running_gateway, serving
from joserfc import jwt
from joserfc.jwk import KeySet

ACCOUNTS = yaml.safe_load((REPO / "config" / "demo-accounts.yaml").read_text())["accounts"]


async def test_discovery(gw):
    response = await gw.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == "http://127.0.0.1:8000"
    assert doc["jwks_uri"] == "http://127.0.0.1:8000/.well-known/jwks.json"
    assert doc["token_endpoint"] == "http://127.0.0.1:8000/oauth/token"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]


async def test_jwks_publishes_the_public_key_only(gw):
    keys = (await gw.client.get("/.well-known/jwks.json")).json()["keys"]
    assert [k["kid"] for k in keys] == [gw.tokens.key.kid]
    assert keys[0]["alg"] == "ES256" and keys[0]["kty"] == "EC"
    assert "d" not in keys[0]


async def _token(gw, client_id: str, secret: str, **extra: str):
    return await gw.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            **extra,
        },
    )


@pytest.mark.parametrize("account", ACCOUNTS, ids=[a["client_id"] for a in ACCOUNTS])
async def test_token_for_every_demo_account(gw, account):
    response = await _token(gw, account["client_id"], account["client_secret"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    jwks = (await gw.client.get("/.well-known/jwks.json")).json()
    claims = jwt.decode(
        body["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"]
    ).claims
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert claims["aud"] == "zhongfu"
    assert claims["sub"] == claims["client_id"] == account["client_id"]
    assert claims["role"] == account["role"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims.get("area") == account.get("area")
    assert claims.get("org") == account.get("organisation")
    assert claims.get("dept") == account.get("department")
    assert claims.get("resident_id") == (
        account.get("resident_id") if account["role"] == "citizen" else None
    )
    # and the gateway takes it
    api = await gw.client.get(
        "/api/v1/households", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert api.status_code == 200


async def test_http_basic_client_authentication(gw):
    credentials = base64.b64encode(b"town-worker:demo-town-worker").decode()
    response = await gw.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert response.status_code == 200
    bad = base64.b64encode(b"town-worker:wrong-secret").decode()
    response = await gw.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {bad}"},
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("credentials", [b"\xb2\xb2\xb2\xb2", b"not base64!", base64.b64encode(b"\xff\xfe:x"), b"dG93bg=="])
async def test_malformed_basic_credentials_are_invalid_request(gw, credentials):
    """Basic credentials that are not ASCII base64 of UTF-8 ``id:secret`` are a 400 (a 500 before,
    for a header holding latin-1 characters), and never echoed."""
    response = await gw.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": b"Basic " + credentials},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        ("town-worker", "demo-town-worker-wrong"),
        ("town-worker", ""),
        ("no-such-client", "demo-town-worker"),
    ],
)
async def test_wrong_credentials_are_invalid_client(gw, client_id, secret):
    response = await _token(gw, client_id, secret)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.text
    assert not secret or secret not in response.text


async def test_unsupported_grant_type(gw):
    response = await _token(gw, "town-worker", "demo-town-worker", grant_type="password")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_malformed_token_requests(gw):
    response = await gw.client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = await gw.client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=x&client_id=a&client_secret=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_signing_key_survives_a_restart(tmp_path):
    first = create_app(gateway_settings(tmp_path, {}))
    second = create_app(gateway_settings(tmp_path, {}))
    assert first.issuer.key.kid == second.issuer.key.kid
    assert (tmp_path / "dev-issuer-key.pem").stat().st_mode & 0o077 == 0


def _write_accounts(path: Path, accounts: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"accounts": accounts}))
    return path


def test_unknown_role_refuses_to_start(tmp_path):
    accounts = _write_accounts(
        tmp_path / "accounts.yaml",
        [
            {
                "client_id": "mayor",
                "client_secret": "demo-secret-1",
                "role": "mayor",
                "area": "330100000000",
            },
        ],
    )
    with pytest.raises(DemoAccountsError) as excinfo:
        create_app(gateway_settings(tmp_path, {}, demo_accounts_file=accounts))
    message = str(excinfo.value)
    assert "'mayor'" in message and "role" in message and "city_admin" in message
    assert "demo-secret-1" not in message


def test_inconsistent_accounts_are_refused(tmp_path):
    duplicate = {"client_id": "auditor", "client_secret": "demo-auditor", "role": "auditor"}
    with pytest.raises(DemoAccountsError, match="twice"):
        load_demo_accounts(_write_accounts(tmp_path / "a.yaml", [duplicate, duplicate]))
    citizen = {
        "client_id": "citizen",
        "client_secret": "demo-citizen",
        "role": "citizen",
        "area": "330106001001",
    }
    with pytest.raises(DemoAccountsError, match="resident_id"):
        load_demo_accounts(_write_accounts(tmp_path / "b.yaml", [citizen]))


async def test_with_an_external_issuer_the_dev_endpoints_are_gone(tmp_path, upstreams):
    """OIDC_ISSUER set: no development issuer; tokens are checked against the configured one."""
    from fastapi import FastAPI
    from servicekit.tokens import SigningKey, standard_claims

    key = SigningKey.generate()
    idp = FastAPI()
    state: dict[str, str] = {}

    @idp.get("/.well-known/openid-configuration")
    async def discovery() -> dict:
        return {"issuer": state["url"], "jwks_uri": state["url"] + "/jwks"}

    @idp.get("/jwks")
    async def jwks() -> dict:
        return key.jwks()

    async with serving(idp) as idp_url:
        state["url"] = idp_url
        settings = gateway_settings(
            tmp_path, {"registry": upstreams["registry"].url}, oidc_issuer=idp_url
        )
        async with running_gateway(settings) as gw:
            assert gw.app.issuer is None
            for path in ("/.well-known/openid-configuration", "/.well-known/jwks.json"):
                assert (await gw.client.get(path)).status_code == 404
            assert (
                await gw.client.post("/oauth/token", data={"grant_type": "client_credentials"})
            ).status_code == 404
            good = key.sign(
                standard_claims(
                    issuer=idp_url, audience="zhongfu", subject="u1", extra={"role": "auditor"}
                )
            )
            assert (
                await gw.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {good}"})
            ).status_code == 200
            dev = SigningKey.load_or_create(tmp_path / "dev-issuer-key.pem")
            forged = dev.sign(
                standard_claims(issuer="http://127.0.0.1:8000", audience="zhongfu", subject="u1")
            )
            assert (
                await gw.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {forged}"})
            ).status_code == 401
