"""Run the expert server: in a background thread of this process (tests, benchmarks) or
in the foreground (the CLI). Both bind the socket first, so port 0 picks a free port with
no race, and the caller learns it before the first request."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ServerThread", "bind"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it Nagle's algorithm and delayed ACKs add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, log_level: str = "warning") -> Any:
    import uvicorn

    # lifespan off: the app has no startup work; timeout_keep_alive long enough that a
    # client's pooled connection is not closed under it between consultation rounds.
    config = uvicorn.Config(app, log_level=log_level, lifespan="off", timeout_keep_alive=30, access_log=False)
    return uvicorn.Server(config)


class ServerThread:
    """`with ServerThread(app) as srv: ... srv.base_url ...` serves `app` on loopback."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app, self.host, self.log_level = app, host, log_level
        self.sock = bind(host, port)
        self.port: int = self.sock.getsockname()[1]
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        self.server = make_server(self.app, self.log_level)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"eapo-serve-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the expert server on port {self.port} did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.server.force_exit = True  # do not wait for open keep-alive connections
        if self.thread is not None:
            self.thread.join(timeout_s)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
