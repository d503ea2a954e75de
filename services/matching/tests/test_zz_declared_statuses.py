"""Every status the tests saw an operation answer with is declared in its OpenAPI entry.

Named to run last: it checks what the other tests of the session observed (the app is wrapped
with a recorder in conftest.py). Run alone, it checks nothing and says so.
"""

from __future__ import annotations

from helpers import OBSERVED


async def test_every_observed_status_is_declared(svc):
    async with svc.client() as c:
        document = (await c.get("/openapi.json")).json()
    api = {(m, p, s) for m, p, s in OBSERVED if p.startswith("/api/v1/")}
    undeclared = sorted(
        (method, path, status) for method, path, status in api
        if str(status) not in document["paths"][path][method.lower()]["responses"]
    )
    assert undeclared == []
    print(f"{len(api)} (operation, status) pairs observed, all declared")
