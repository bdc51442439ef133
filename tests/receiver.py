"""A local webhook receiver: records posts, checks signatures, can be down (tests, fault runs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from cxstream.alerts.receivers import ID_HEADER, verify


@dataclass
class Received:
    alert: dict[str, Any]
    signature_ok: bool
    alert_id_header: str
    received_at: float = 0.0  # time.time() on arrival


@dataclass
class Receiver:
    """Listens on 127.0.0.1:port while started; ``stop()`` makes it unreachable."""

    port: int
    secret: str
    received: list[Received] = field(default_factory=list)
    #: the HTTP status to answer an alert with instead of 204 (None: accept it)
    answer: Callable[[dict[str, Any]], int | None] = lambda alert: None
    refused: list[str] = field(default_factory=list)  # alert ids answered with an error
    #: the Retry-After header sent with an error (None: none)
    retry_after: str | None = None
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                alert = orjson.loads(body)
                status = receiver.answer(alert)
                if status is not None:
                    receiver.refused.append(alert["alert_id"])
                    self.send_response(status)
                    if receiver.retry_after is not None:
                        self.send_header("Retry-After", receiver.retry_after)
                    self.end_headers()
                    return
                receiver.received.append(Received(
                    alert=orjson.loads(body),
                    signature_ok=verify(body, receiver.secret, headers),
                    alert_id_header=headers.get(ID_HEADER, ""),
                    received_at=time.time()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cx"

    def alert_ids(self) -> list[str]:
        return [item.alert["alert_id"] for item in self.received]

    def delivery_ids(self) -> list[str]:
        """The webhook-id of each post: the alert id for the post that raises it, with
        the follow-up for an escalation or a resolution (each one posted once)."""
        return [item.alert_id_header for item in self.received]
