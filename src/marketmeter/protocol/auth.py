"""Who is calling: the seam where authentication plugs into the request's life.

``Authenticator.authenticate`` sees the request as received (method, path, query, headers,
body) before it is parsed and answers a ``Caller`` or raises an auth error. ``OpenAuth`` (the
default, for local testing) accepts every request, signed or not, and attributes no account,
so no ownership rule applies. Strict SigV4 verification plugs in here later (spec §1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from marketmeter.metering.types import Caller

__all__ = ["Authenticator", "OpenAuth", "RawRequest"]

# Credential=<access key id>/<date>/<region>/<service>/aws4_request
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(?:[^/,\s]*/([^/,\s]+)/)?")


@dataclass(frozen=True, slots=True)
class RawRequest:
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` in lower case), or ``None``."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None


class Authenticator(Protocol):
    def authenticate(self, request: RawRequest, operation: str) -> Caller: ...


class OpenAuth:
    """Accept everything, verifying nothing; keep the access key id, session token and region
    the request names, since MeterUsage and RegisterUsage take the buyer and the instance from
    them (``metering.callers``) and fault rules may match on them."""

    def authenticate(self, request: RawRequest, operation: str) -> Caller:
        authorization = request.header(b"authorization")
        match = _CREDENTIAL.search(authorization) if authorization else None
        if match is None:
            return Caller.anonymous(None, request.header(b"x-amz-security-token"))
        return Caller.anonymous(
            match.group(1), request.header(b"x-amz-security-token"), match.group(2)
        )
