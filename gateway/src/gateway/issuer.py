"""The development OIDC issuer: discovery, JWKS and client-credentials tokens for demo accounts.

On only when OIDC_ISSUER is unset (the embedded default); production trusts the city's identity
provider and these endpoints do not exist. The token endpoint speaks OAuth 2.0 errors (RFC 6749
section 5.2), not problem documents, because OAuth clients parse those.
"""

from __future__ import annotations

import base64
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from servicekit.auth import CITY_WIDE, Role
from servicekit.tokens import TOKEN_LIFETIME_SECONDS, SigningKey, standard_claims

# A token request is a handful of short fields; anything larger is not one.
MAX_TOKEN_REQUEST_BYTES = 4096
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class DemoAccountsError(ValueError):
    """The demo accounts file is unusable; the gateway refuses to start and says why."""


class DemoAccount(BaseModel):
    """One client of the development issuer: a role and, where it has one, a jurisdiction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    client_secret: SecretStr = Field(min_length=8, max_length=128)
    role: Role
    area: str | None = Field(default=None, pattern=r"^\d{12}$")
    department: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{1,63}$")
    organisation: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    resident_id: str | None = Field(default=None, pattern=r"^\d{17}[\dX]$")
    description: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _claims_fit_the_role(self) -> DemoAccount:
        if (
            self.role not in CITY_WIDE
            and self.role not in (Role.department, Role.partner)
            and not self.area
        ):
            raise ValueError(f"a {self.role.value} account needs an area")
        if self.role is Role.department and not self.department:
            raise ValueError("a department account needs a department")
        if self.role is Role.partner and not self.organisation:
            raise ValueError("a partner account needs an organisation")
        if self.role is Role.citizen and not self.resident_id:
            raise ValueError("a citizen account needs a resident_id")
        if self.role is not Role.citizen and self.resident_id:
            raise ValueError("only a citizen account carries a resident_id")
        return self

    def claims(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "area": self.area,
            "org": self.organisation,
            "dept": self.department,
            "resident_id": self.resident_id if self.role is Role.citizen else None,
            "client_id": self.client_id,
        }


class _DemoAccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[DemoAccount] = Field(min_length=1)


def load_demo_accounts(path: Path) -> dict[str, DemoAccount]:
    """Read and check the demo accounts; any problem is a DemoAccountsError naming the account."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DemoAccountsError(f"{path}: cannot read the demo accounts: {exc}") from exc
    try:
        parsed = _DemoAccountsFile.model_validate(raw)
    except ValidationError as exc:
        raise DemoAccountsError(f"{path}: invalid demo accounts: {_describe(exc, raw)}") from None
    accounts: dict[str, DemoAccount] = {}
    for account in parsed.accounts:
        if account.client_id in accounts:
            raise DemoAccountsError(f"{path}: client_id {account.client_id!r} appears twice")
        accounts[account.client_id] = account
    return accounts


def _describe(exc: ValidationError, raw: Any) -> str:
    # Built from locations and messages only: pydantic's own text quotes the input, secrets too.
    parts = []
    for error in exc.errors():
        loc = error.get("loc", ())
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "accounts" and isinstance(loc[1], int):
            try:
                where = f"account {raw['accounts'][loc[1]].get('client_id')!r}, " + ".".join(
                    str(p) for p in loc[2:]
                )
            except (KeyError, IndexError, TypeError, AttributeError):
                pass
        parts.append(f"{where.rstrip(', ')}: {error.get('msg')}")
    return "; ".join(parts)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(examples=[TOKEN_LIFETIME_SECONDS])


class OpenIDConfiguration(BaseModel):
    issuer: str = Field(examples=["http://127.0.0.1:8000"])
    jwks_uri: str
    token_endpoint: str
    grant_types_supported: list[str] = Field(examples=[["client_credentials"]])
    token_endpoint_auth_methods_supported: list[str]
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str] = Field(examples=[["ES256"]])
    claims_supported: list[str]


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, Any]]


class OAuthError(BaseModel):
    error: str = Field(examples=["invalid_client"])
    error_description: str | None = None


class OAuthProblem(Exception):
    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status, self.error, self.description, self.headers = (
            status,
            error,
            description,
            headers or {},
        )

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers={**_NO_STORE, **self.headers})


class DevIssuer:
    """Signs tokens for the demo accounts with a key kept under var/ across restarts."""

    def __init__(
        self, issuer: str, audience: str, key: SigningKey, accounts: dict[str, DemoAccount]
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.key = key
        self.accounts = accounts
        # Compared against when the client_id is unknown, so both paths take the same time.
        self._decoy = SecretStr("x" * 32)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "token_endpoint": f"{self.issuer}/oauth/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SigningKey.algorithm],
            "claims_supported": [
                "iss",
                "aud",
                "sub",
                "exp",
                "iat",
                "nbf",
                "jti",
                "role",
                "area",
                "org",
                "dept",
                "resident_id",
                "client_id",
            ],
        }

    def authenticate(self, client_id: str, client_secret: str) -> DemoAccount:
        account = self.accounts.get(client_id)
        expected = (account.client_secret if account else self._decoy).get_secret_value()
        if not hmac.compare_digest(expected.encode(), client_secret.encode()) or account is None:
            raise OAuthProblem(
                401,
                "invalid_client",
                "Client authentication failed.",
                headers={"WWW-Authenticate": 'Basic realm="zhongfu"'},
            )
        return account

    def issue(self, account: DemoAccount) -> dict[str, Any]:
        claims = standard_claims(
            issuer=self.issuer,
            audience=self.audience,
            subject=account.client_id,
            extra=account.claims(),
        )
        return {
            "access_token": self.key.sign(claims),
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
        }

    async def token_request(self, request: Request) -> dict[str, Any]:
        """Handle one POST /oauth/token; raises OAuthProblem on every failure."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthProblem(
                400, "invalid_request", "The body must be application/x-www-form-urlencoded."
            )
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_TOKEN_REQUEST_BYTES:
                raise OAuthProblem(400, "invalid_request", "The token request is too large.")
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            raise OAuthProblem(
                400, "invalid_request", "The token request could not be parsed."
            ) from None
        if any(len(values) > 1 for values in fields.values()):
            # RFC 6749 section 3.2: parameters must not be repeated.
            raise OAuthProblem(400, "invalid_request", "A parameter is repeated.")
        form = {k: v[0] for k, v in fields.items()}

        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None and (
            "client_id" in form and form["client_id"] != basic[0] or "client_secret" in form
        ):
            raise OAuthProblem(
                400, "invalid_request", "Use one client authentication method, not two."
            )
        client_id, client_secret = (
            basic if basic is not None else (form.get("client_id"), form.get("client_secret"))
        )
        if not client_id or client_secret is None:
            raise OAuthProblem(
                401,
                "invalid_client",
                "Client authentication failed.",
                headers={"WWW-Authenticate": 'Basic realm="zhongfu"'},
            )
        account = self.authenticate(client_id, client_secret)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthProblem(400, "invalid_request", "grant_type is required.")
        if grant != "client_credentials":
            raise OAuthProblem(
                400, "unsupported_grant_type", "Only client_credentials is supported."
            )
        return self.issue(account)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII at all, or not UTF-8 once decoded
        raise OAuthProblem(400, "invalid_request", "The Basic credentials are malformed.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthProblem(400, "invalid_request", "The Basic credentials are malformed.")
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


_TOKEN_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "client_id": {"type": "string", "examples": ["town-worker"]},
                    "client_secret": {"type": "string", "examples": ["demo-town-worker"]},
                },
            }
        }
    },
}


def issuer_router(issuer: DevIssuer) -> APIRouter:
    router = APIRouter(tags=["development issuer"])

    @router.get(
        "/.well-known/openid-configuration",
        operation_id="issuer:discovery",
        summary="OpenID Provider metadata of the development issuer",
        response_model=OpenIDConfiguration,
    )
    async def discovery() -> JSONResponse:
        return JSONResponse(issuer.discovery(), headers={"Cache-Control": "public, max-age=300"})

    @router.get(
        "/.well-known/jwks.json",
        operation_id="issuer:jwks",
        summary="Public keys of the development issuer",
        response_model=JsonWebKeySet,
    )
    async def jwks() -> JSONResponse:
        return JSONResponse(issuer.key.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @router.post(
        "/oauth/token",
        operation_id="issuer:token",
        summary="A token for a demo account (client credentials)",
        description=(
            "Client credentials in the form body or as HTTP Basic. "
            "Errors follow RFC 6749, section 5.2."
        ),
        response_model=TokenResponse,
        responses={
            400: {"model": OAuthError, "description": "invalid_request or unsupported_grant_type"},
            401: {"model": OAuthError, "description": "invalid_client"},
            429: {"description": "Too many requests from this address"},
        },
        openapi_extra={"requestBody": _TOKEN_REQUEST_BODY},
    )
    async def token(request: Request) -> JSONResponse:
        try:
            body = await issuer.token_request(request)
        except OAuthProblem as problem:
            return problem.response()
        return JSONResponse(body, headers=_NO_STORE)

    return router
