"""A request as received, before anything of it is interpreted: what authentication (and the
signature check) sees."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RawRequest"]


@dataclass(frozen=True, slots=True)
class RawRequest:
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw_path: bytes = b""  # the path as sent, still percent-encoded (ASGI ``raw_path``)

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` in lower case), or ``None``."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None
