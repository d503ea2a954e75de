"""A local webhook receiver on a real socket (127.0.0.1, allowed only by the test allowlist)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import defaultdict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class Receiver:
    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.slow_seconds = 3.0
        self.app = Starlette(routes=[Route("/{name}", self.handle, methods=["POST"])])
        self.port = _free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.received[name].append({"body": (await request.body()).decode(), "headers": dict(request.headers)})
        if name.startswith("gone"):
            return Response(status_code=410)
        if name.startswith("fail"):
            return Response(status_code=503)
        if name.startswith("redirect"):
            return Response(status_code=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        if name.startswith("slow"):
            await asyncio.sleep(self.slow_seconds)
        return Response(status_code=204)

    async def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
