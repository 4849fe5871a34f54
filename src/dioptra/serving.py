"""Runs one uvicorn server for the API: the same settings in the single process and in
each API process of a multi-process server (dioptra/api_processes.py)."""

from __future__ import annotations

import signal
import socket
import threading

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from dioptra.config import Settings
from dioptra.restapi.limits import head_timeout_protocol


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_exit, before_exit=None) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._before_exit = before_exit
        self._exiting = False

    def handle_exit(self, sig, frame) -> None:
        self._on_exit()
        if self._before_exit is None or self._exiting:  # a second signal: at once
            super().handle_exit(sig, frame)
            return
        self._exiting = True

        def then_exit() -> None:
            try:
                self._before_exit()
            finally:
                uvicorn.Server.handle_exit(self, sig, None)

        # Still serving meanwhile: what ``before_exit`` stops may need the API.
        threading.Thread(target=then_exit, name="before-exit", daemon=True).start()


def config(app, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        # A client must finish its request head in time (bodies: restapi/limits.py).
        http=head_timeout_protocol(AutoHTTPProtocol, settings.request_timeout_s),
        log_config=None,  # uvicorn's records go through our handler (text or JSON)
    )


def listening_socket(settings: Settings) -> socket.socket:
    """Bound once, by the main process; the API processes inherit it."""
    sock = config(None, settings).bind_socket()
    sock.set_inheritable(True)
    return sock


def run(app, settings: Settings, on_exit, sock: socket.socket | None = None,
        before_exit=None) -> None:
    """Serve until SIGTERM/SIGINT; ``on_exit`` runs first (releasing long polls), then
    ``before_exit`` (in a thread, while the API still serves), then the server stops."""
    server = _Uvicorn(config(app, settings), on_exit=on_exit, before_exit=before_exit)
    # uvicorn re-raises the signal that stopped it once it is done; with this handler
    # in place that re-raise is a no-op, so a SIGTERM stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=[sock] if sock is not None else None)
