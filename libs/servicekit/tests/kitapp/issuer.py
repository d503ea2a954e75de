"""A minimal OIDC issuer for process-level tests: discovery, JWKS and client credentials."""

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from servicekit.tokens import SigningKey, standard_claims


def build(issuer: str, key_path: Path) -> FastAPI:
    key = SigningKey.load_or_create(key_path)
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict:
        return {"issuer": issuer, "jwks_uri": f"{issuer}/jwks", "token_endpoint": f"{issuer}/token"}

    @app.get("/jwks")
    async def jwks() -> dict:
        return key.jwks()

    @app.post("/token")
    async def token(role: str = "service") -> dict:
        claims = standard_claims(issuer=issuer, audience="zhongfu", subject=f"test-{role}", extra={"role": role})
        return {"access_token": key.sign(claims), "token_type": "Bearer", "expires_in": 3600}

    return app


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(build(f"http://127.0.0.1:{port}", Path(sys.argv[2])), host="127.0.0.1", port=port, log_level="warning")
