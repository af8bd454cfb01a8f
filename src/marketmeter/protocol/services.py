"""A service on the endpoint: a botocore model plus its rules' handlers (``ServiceBinding``).

The endpoint answers every service it is given at ``POST /``, choosing one by the prefix of
``X-Amz-Target`` (docs/wire-protocol.md, "One endpoint, three services"). Everything else
about a service comes from its model (``servicemodel.spec``): the target prefix, the JSON
version and so the content type, the compiled input validators, the regions a credential scope
may name.

To plug a service in: write its handlers (validated JSON params, the ``Caller`` and the
call's ``RequestNotes`` in; wire JSON out; rule errors raised as ``errors.AwsError``) and hand
``ServiceBinding(<botocore name>, {<operation>: <handler>, ...})`` to ``AwsEndpoint``
(``app.py`` builds the list). An operation of the model without a handler is answered
``UnknownOperationException``; a service whose errors carry more than ``__type`` and
``message`` gives its own ``error_body``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from marketmeter.errors import AwsError
from marketmeter.metering.types import Caller
from marketmeter.servicemodel.spec import json_version_of, prefix_of

__all__ = ["ErrorBody", "Handler", "RequestNotes", "ServiceBinding", "content_type_of"]


@dataclass(slots=True)
class RequestNotes:
    """What a handler tells the journal about the call it answered."""

    product_code: str | None = None
    verdicts: tuple[str, ...] = ()
    fault: str | None = None


# An operation's handler: validated JSON params and the caller in, wire JSON out.
Handler = Callable[[dict[str, Any], Caller, RequestNotes], Awaitable[dict[str, Any]]]

# An error's body on the wire, given the error and the call's request id.
ErrorBody = Callable[[AwsError, str], bytes]


def plain_error_body(failure: AwsError, request_id: str) -> bytes:
    """``{"__type", "message"}``: what AWS's JSON services send for an error."""
    return orjson.dumps({"__type": failure.code, "message": failure.message})


def content_type_of(service: str) -> bytes:
    """``application/x-amz-json-1.1`` (or ``-1.0``), from the model's JSON version."""
    return f"application/x-amz-json-{json_version_of(service)}".encode()


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """One service the endpoint serves: botocore's ``service`` name and its operations'
    ``handlers`` (by operation name); ``error_body`` writes its errors' JSON."""

    service: str
    handlers: Mapping[str, Handler]
    error_body: ErrorBody = field(default=plain_error_body)

    @property
    def target_prefix(self) -> str:
        return prefix_of(self.service)

    @property
    def content_type(self) -> bytes:
        return content_type_of(self.service)
