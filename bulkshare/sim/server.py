"""Running the simulator: in-process on a loopback port for tests and the CLI's built-in
tenant (`running_sim`), or in the foreground for `bulkshare sim` (`serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from bulkshare.sim.app import make_app
from bulkshare.sim.config import SimConfig
from bulkshare.sim.tenant import SimTenant

__all__ = ["running_sim", "serve"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def running_sim(
    tenant: SimTenant,
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[str]:
    """Serve `tenant` on host:port (0 = any free port) and yield the base URL.

    The URL looks like http://127.0.0.1:54321. Leaving the block stops the server and writes the
    tenant to `config.persist_path` if set. `clock` is the limiter's clock (monotonic seconds).
    """
    config = config or SimConfig()
    app = make_app(tenant, config) if clock is None else make_app(tenant, config, clock)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    sock = _bind(host, port)
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        yield _url(sock)
    finally:
        await runner.cleanup()
        sock.close()


def serve(host: str, port: int, tenant: SimTenant, config: SimConfig) -> None:
    """Serve `tenant` until SIGINT / SIGTERM, for `bulkshare sim`; saves state on the way out."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(host, port, tenant, config))


async def _serve_forever(host: str, port: int, tenant: SimTenant, config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with running_sim(tenant, config, host, port) as url:
        print(
            f"bulkshare sim: serving {len(tenant.tasks)} tasks, {len(tenant.users)} users on {url}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
