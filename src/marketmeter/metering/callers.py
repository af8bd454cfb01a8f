"""Who is metering from the buyer's side: the buyer account and the instance, task or pod.

MeterUsage and RegisterUsage are signed with the buyer's credentials, one set per running
instance, task or pod (docs/meter-usage.md, docs/register-usage.md). marketmeter reads both from the
request's credentials:

- the **buyer account** owns the access key: strict auth establishes it; in open auth the access
  key id is looked up among the buyers' ``access_keys`` in the catalog;
- the **instance** is the session token's role session, when the credentials carry a session
  token (``X-Amz-Security-Token``: AWS_SESSION_TOKEN, ``aws_session_token``): the token's text
  is taken as the role session name (e.g. ``i-0123456789abcdef0`` or ``task/3f9c…``), hashed when
  longer than 128 characters (a real STS token); without a session token, it is the access key id.

So a seller simulates several instances with one buyer key and a different session token each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from marketmeter.catalog.model import Buyer, CatalogSnapshot
from marketmeter.errors import CustomerNotEntitledException
from marketmeter.metering.types import Caller

__all__ = ["MAX_PLAIN_SESSION", "BuyerInstance", "buyer_instance", "instance_of"]

MAX_PLAIN_SESSION = 128


@dataclass(frozen=True, slots=True)
class BuyerInstance:
    buyer: Buyer
    instance: str


def instance_of(caller: Caller) -> str:
    """The instance, task or pod the credentials stand for (see the module docstring)."""
    token = caller.session_token
    if token:
        if len(token) <= MAX_PLAIN_SESSION:
            return token
        return "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    return caller.access_key_id or "anonymous"


def buyer_instance(caller: Caller, catalog: CatalogSnapshot, operation: str) -> BuyerInstance:
    """The calling buyer and instance, or ``CustomerNotEntitledException`` when the
    credentials belong to no buyer of the catalog."""
    account: str | None = None
    if caller.kind == "buyer":
        account = caller.account_id
    elif caller.access_key_id is not None:
        owner = catalog.key_owners.get(caller.access_key_id)
        if owner is not None and owner.kind == "buyer":
            account = owner.account_id
    buyer = catalog.buyers.get(account) if account is not None else None
    if buyer is None:
        key = caller.access_key_id
        who = f"access key {key}" if key else "unsigned requests"
        raise CustomerNotEntitledException(
            f"{operation} must be signed with a buyer's credentials; {who} belongs to no buyer "
            "of the catalog (list the key under the buyer's access_keys)."
        )
    return BuyerInstance(buyer, instance_of(caller))
