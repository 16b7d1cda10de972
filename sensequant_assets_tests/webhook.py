"""A Slack-style webhook receiver on 127.0.0.1 that records every POST, for notification tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar


class Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(
            {
                "content_type": self.headers["Content-Type"],
                "json": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@contextmanager
def receiving(status: int = 200) -> Iterator[str]:
    """A receiver answering ``status``; yields its URL (``Receiver.bodies`` fills as it runs)."""
    Receiver.bodies, Receiver.status = [], status
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/XXXX"
    finally:
        server.shutdown()
        server.server_close()


def texts() -> list[str]:
    """The ``text`` line of every notification received so far."""
    return [body["json"]["text"] for body in Receiver.bodies]
