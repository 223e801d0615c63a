"""Helpers for tests and demos: run the app on a loopback port in a background thread, wait for analyses."""
from __future__ import annotations

import socket
import threading
import time
from typing import Any


class LiveServer:
    """``with LiveServer(app) as url:`` serves ``app`` with uvicorn on 127.0.0.1 and a free port."""

    def __init__(self, app, host: str = "127.0.0.1", log_level: str = "warning") -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", server_header=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="fak3zer0-live-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def wait_for_analysis(client, analysis_id: str, timeout: float = 120.0, headers: dict | None = None) -> dict:
    """Poll ``GET /api/v1/analyses/{id}`` (with an httpx/TestClient ``client``) until done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/analyses/{analysis_id}", headers=headers or {})
        r.raise_for_status()
        body = r.json()
        if body["status"] in ("done", "failed"):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"analysis {analysis_id} still {body['status']} after {timeout} s")
        time.sleep(0.1)
