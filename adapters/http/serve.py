"""Serving the API with hypercorn's trio connection handler, stopped in an order that
answers every request a client managed to send.

``hypercorn.trio.serve`` stops by closing its listeners and, in the same step, telling every
connection without a request in progress to close. Both lose requests: closing a listening
socket resets the connections still queued on it, and a connection accepted a moment before
has usually not been read yet, so it is closed with the client's request unread. Either way
the client gets a reset instead of an answer (about one request in forty when a SIGTERM
met a stream of requests). Here, once ``stop`` is set:

1. the listening sockets complete no more handshakes (a new client's connection attempt
   is refused in the end, which it can tell from a request lost in flight), and what is
   queued on them is accepted;
2. they are closed, with nothing queued;
3. the connections already accepted get ``LATE_REQUEST_GRACE`` to be read (the drain gate
   answers them 503);
4. idle connections are closed and the rest get ``graceful_timeout`` to finish.

This uses hypercorn's ``TCPServer`` and ``WorkerContext`` directly, the pieces its own
``worker_serve`` is built from; only plain HTTP on TCP is served (no TLS, no QUIC, no ASGI
lifespan: the API has no startup or shutdown hooks).
"""

from __future__ import annotations

import ctypes
import select
import socket
import struct
import sys
from functools import partial
from typing import Final

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

__all__ = ["LATE_REQUEST_GRACE", "serve_http"]

LATE_REQUEST_GRACE: Final = 0.2
"""Seconds between refusing new connections and closing idle ones."""

BACKLOG_DRAIN_LIMIT: Final = 0.5
"""At most this long (seconds) is spent accepting what is queued before closing."""
_SO_ATTACH_FILTER: Final = 26
_DROP_EVERYTHING: Final = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: "ret #0"


def _stop_handshakes(sock: socket.socket) -> None:
    """Let ``sock`` complete no more handshakes while it stays open, so what is already
    queued can be accepted and answered before it closes (closing resets the queue). Linux
    has no call for that; a socket filter that drops every segment does it. Elsewhere this
    does nothing."""
    if not sys.platform.startswith("linux"):
        return
    program = ctypes.create_string_buffer(_DROP_EVERYTHING)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _has_pending(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


async def serve_http(
    app: ASGIFramework,
    config: Config,
    *,
    stop: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``config.bind`` until ``stop`` is set, then stop as the module doc
    says and return once every connection has ended. ``task_status`` gets the bound
    addresses (``http://host:port``)."""
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    listeners = [
        trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        for sock in sockets.insecure_sockets
    ]
    binds = [
        f"http://{repr_socket_addr(sock.family, sock.getsockname())}"
        for sock in sockets.insecure_sockets
    ]
    context = WorkerContext(None)
    handler = partial(
        TCPServer,
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        context,
        ConnectionState({}),
    )
    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as accepting:
            accepting.start_soon(
                partial(trio.serve_listeners, handler, listeners, handler_nursery=connections)
            )
            task_status.started(binds)
            await stop.wait()
            for sock in sockets.insecure_sockets:
                _stop_handshakes(sock)
            # Poll: the accept loop already waits on these sockets, and trio lets one task
            # wait on a socket at a time.
            with trio.move_on_after(BACKLOG_DRAIN_LIMIT):
                while any(_has_pending(sock) for sock in sockets.insecure_sockets):  # noqa: ASYNC110
                    await trio.sleep(0.005)
            accepting.cancel_scope.cancel()  # serve_listeners closes the listeners
        await trio.sleep(LATE_REQUEST_GRACE)
        await context.terminated.set()
        connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
