"""A seller's registration page for the end-to-end tests of ``marketmeter subscribe``.

``RegistrationPage`` is a real HTTP server (``http.server.ThreadingHTTPServer`` in a thread) on
127.0.0.1 and a free port. It records every request it gets (method, path, headers and the
parsed ``application/x-www-form-urlencoded`` body) and answers what the test configured: by
default ``302 Found`` to a sign-up form, as a seller's page usually does.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

__all__ = ["Received", "RegistrationPage"]


@dataclass(frozen=True)
class Received:
    """One request as the seller's page saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    form: dict[str, list[str]]


@dataclass
class Answer:
    status: int = 302
    location: str | None = "https://seller.example/signup?session=s-1"
    body: str = ""


@dataclass
class _State:
    answer: Answer = field(default_factory=Answer)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RegistrationPage:
    """Start with ``with RegistrationPage() as page:``; ``page.url("/register")`` is its URL."""

    def __init__(self) -> None:
        state = self._state = _State()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._record()

            def do_GET(self) -> None:
                self._record()

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                form = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                with state.lock:
                    state.received.append(
                        Received(
                            method=self.command,
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            raw_body=raw,
                            form=form,
                        )
                    )
                    answer = state.answer
                payload = answer.body.encode("utf-8")
                self.send_response(answer.status)
                if answer.location is not None:
                    self.send_header("Location", answer.location)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/register") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, status: int, location: str | None = None, body: str = "") -> None:
        """What the page answers from now on."""
        with self._state.lock:
            self._state.answer = Answer(status, location, body)

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    def __enter__(self) -> RegistrationPage:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
