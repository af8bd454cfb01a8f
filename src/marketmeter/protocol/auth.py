"""Who is calling: the seam where authentication plugs into the request's life.

``Authenticator.authenticate`` sees the request as received (method, path, query, headers,
body) before anything else is looked at and answers a ``Caller`` or raises an auth error;
``authorize`` then decides whether that caller may call the operation the request names.

- ``OpenAuth`` (the default, for local testing) accepts every request, signed or not, and
  attributes no account, so no ownership rule applies.
- ``StrictAuth`` (``serve --auth sigv4``) verifies the Signature Version 4 of every request
  (``protocol.sigv4``) against the access keys of the catalog's sellers and buyers, with a
  credential scope naming a region the called service is offered in (botocore's endpoint
  data, ``servicemodel.spec.regions_of``), and maps the key to its account: sellers call
  BatchMeterUsage and ResolveCustomer and every operation of the read-side services
  (Entitlement Service, Agreement API), buyers MeterUsage and RegisterUsage; a key of the
  other kind is ``AccessDeniedException`` (docs/wire-protocol.md).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.errors import AccessDeniedException, AgreementAccessDeniedException
from marketmeter.metering.types import Caller
from marketmeter.protocol.raw_request import RawRequest
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.servicemodel.spec import AGREEMENT, ENTITLEMENT, operations_of, regions_of

__all__ = [
    "BUYER_OPERATIONS",
    "SELLER_OPERATIONS",
    "Authenticator",
    "OpenAuth",
    "RawRequest",
    "StrictAuth",
]

# Who may call what (docs/wire-protocol.md): the seller meters SaaS usage, resolves its
# customers and reads its entitlements and agreements; the buyer's instances, tasks and pods
# meter AMI and container usage and register.
SELLER_OPERATIONS = frozenset(
    {"BatchMeterUsage", "ResolveCustomer", *operations_of(ENTITLEMENT), *operations_of(AGREEMENT)}
)
BUYER_OPERATIONS = frozenset({"MeterUsage", "RegisterUsage"})

# Credential=<access key id>/<date>/<region>/<service>/aws4_request
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(?:[^/,\s]*/([^/,\s]+)/)?")


class Authenticator(Protocol):
    async def authenticate(self, request: RawRequest, service: str | None = None) -> Caller:
        """Who sent ``request`` to ``service`` (botocore's name; ``None`` when the target
        names none), or an auth error (``errors``)."""
        ...

    def authorize(self, caller: Caller, operation: str) -> None:
        """Raise ``AccessDeniedException`` if ``caller`` may not call ``operation``."""
        ...


class OpenAuth:
    """Accept everything, verifying nothing; keep the access key id, session token and region
    the request names, since MeterUsage and RegisterUsage take the buyer and the instance from
    them (``metering.callers``) and fault rules may match on them."""

    async def authenticate(self, request: RawRequest, service: str | None = None) -> Caller:
        authorization = request.header(b"authorization")
        match = _CREDENTIAL.search(authorization) if authorization else None
        if match is None:
            return Caller.anonymous(None, request.header(b"x-amz-security-token"))
        return Caller.anonymous(
            match.group(1), request.header(b"x-amz-security-token"), match.group(2)
        )

    def authorize(self, caller: Caller, operation: str) -> None:
        return None


class StrictAuth:
    """Signature Version 4 against the catalog's access keys (``serve --auth sigv4``)."""

    def __init__(
        self, catalog: Callable[[], Awaitable[CatalogSnapshot]], verifier: SigV4Verifier
    ) -> None:
        self._catalog = catalog
        self._verifier = verifier
        self._secrets: dict[str, str] = {}
        self._secrets_version = -1

    async def authenticate(self, request: RawRequest, service: str | None = None) -> Caller:
        snapshot = await self._catalog()
        if snapshot.version != self._secrets_version:
            catalog = snapshot.catalog
            keys = [k for seller in catalog.sellers for k in seller.access_keys]
            keys += [k for buyer in catalog.buyers for k in buyer.access_keys]
            self._secrets = {key.access_key_id: key.secret_access_key for key in keys}
            self._secrets_version = snapshot.version
        regions = regions_of(service) if service is not None else None
        verified = self._verifier.verify(request, self._secrets.get, regions)
        owner = snapshot.key_owners[verified.access_key_id]
        kind: Literal["seller", "buyer"] = "seller" if owner.kind == "seller" else "buyer"
        return Caller(
            kind,
            owner.account_id,
            verified.access_key_id,
            request.header(b"x-amz-security-token"),
            verified.region,
        )

    def authorize(self, caller: Caller, operation: str) -> None:
        allowed = SELLER_OPERATIONS if caller.kind == "seller" else BUYER_OPERATIONS
        if operation in allowed:
            return
        role = "a seller's" if caller.kind == "seller" else "a buyer's"
        callers = "buyer's" if caller.kind == "seller" else "seller's"
        # the Agreement API's AccessDeniedException is its model's: 403, with a reason
        denied = (
            AgreementAccessDeniedException
            if operation in operations_of(AGREEMENT)
            else AccessDeniedException
        )
        raise denied(
            f"User: arn:aws:iam::{caller.account_id}:root is not authorized to perform: "
            f"aws-marketplace:{operation} with {role} access key {caller.access_key_id}; "
            f"{operation} is called with a {callers} credentials"
        )
