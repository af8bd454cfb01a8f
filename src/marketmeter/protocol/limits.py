"""The bounds on what one client may take from the server: connections, header size, time.

A metering endpoint is shared by every job of a seller; one broken or hostile client (a header
that never ends, a body sent a byte a second, thousands of idle sockets) must not take the
service from the others. ``ConnectionLimits`` holds the bounds ``serve`` enforces, each a
``serve`` option; ``protocol.guarded_http`` enforces them on every connection, the endpoint
enforces ``processing_timeout`` and the 1 MB body bound.

What a client sees when it crosses one (AWS JSON 1.1 errors, then the connection closes):

==========================  ======  =========================================  ============
bound                       status  ``__type``                                 SDKs retry
==========================  ======  =========================================  ============
``max_connections``         503     ``ServiceUnavailableException``            yes
``max_header_bytes``,       431     ``RequestHeaderFieldsTooLargeException``   no
``max_headers``
``header_timeout``,         408     ``RequestTimeoutException``                yes
``request_timeout``
``processing_timeout``      500     ``InternalServiceErrorException``          yes
``idle_timeout``            —       (the idle connection is closed)            —
``request_timeout``         —       (answer not read: connection aborted)      yes
==========================  ======  =========================================  ============

A request cut short by any of these is never processed, except ``processing_timeout``: there
the work may still commit after the answer; the SDK's retry is then answered with the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConnectionLimits"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The bounds, in connections, bytes and whole seconds (defaults: ``serve --help``)."""

    max_connections: int = 1000  # open connections; one more gets a 503
    max_header_bytes: int = 16 * 1024  # request line and headers together
    max_headers: int = 100  # header fields in one request
    idle_timeout: int = 5  # a connection with no request in progress is closed after this
    header_timeout: int = 10  # from a request's first byte to the end of its headers
    request_timeout: int = 30  # from a request's first byte to the end of its body
    processing_timeout: int = 90  # from a whole request to its answer (AWS endpoint)

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.header_timeout > self.request_timeout:
            raise ValueError(
                f"header_timeout ({self.header_timeout}) must not exceed "
                f"request_timeout ({self.request_timeout})"
            )
