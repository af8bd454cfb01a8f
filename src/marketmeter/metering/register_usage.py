"""RegisterUsage: the rules of docs/register-usage.md (paid container products, called from the task
or pod).

1. The product exists and is a container product → else ``InvalidProductCodeException``.
2. The public key version exists (``metering.signing_keys``) → else
   ``InvalidPublicKeyVersionException``.
3. The caller is a buyer (``metering.callers``); the task or pod is the credentials' instance.
4. Entitlement is checked on a task's first successful registration only: a task that has
   registered is never refused later, even after its buyer unsubscribed (AWS checks at container
   start). A task whose buyer has no agreement that bills now → ``CustomerNotEntitledException``,
   and it stays unregistered. The registration is stored durably before the answer.
5. The answer: a PS256 JWT over ``productCode``, ``publicKeyVersion``, ``nonce`` (when the
   request has one) and ``iat`` (service clock, epoch seconds); and, when the version is
   retired, the time it was rotated out as ``PublicKeyRotationTimestamp``.
"""

from __future__ import annotations

from typing import Any

from marketmeter.catalog.model import ProductKind
from marketmeter.errors import (
    CustomerNotEntitledException,
    InvalidProductCodeException,
    InvalidPublicKeyVersionException,
)
from marketmeter.metering.callers import buyer_instance
from marketmeter.metering.clock import Clock
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.metering.types import (
    Caller,
    ContainerRegistration,
    RegisterUsageRequest,
    RegisterUsageResult,
)
from marketmeter.store.base import Store

__all__ = ["RegisterUsage"]


class RegisterUsage:
    """The operation, wired to its store, clock and key ring."""

    def __init__(self, store: Store, clock: Clock, keys: KeyRing) -> None:
        self._store = store
        self._clock = clock
        self._keys = keys

    async def __call__(self, request: RegisterUsageRequest, caller: Caller) -> RegisterUsageResult:
        catalog = await self._store.catalog_snapshot()
        code = request.product_code
        product = catalog.products.get(code)
        if product is None or product.kind is not ProductKind.CONTAINER:
            raise InvalidProductCodeException(
                f"Product code '{code}' is not a valid paid container product."
            )
        key = await self._keys.key(request.public_key_version)
        if key is None:
            raise InvalidPublicKeyVersionException(
                f"Public key version {request.public_key_version} is invalid."
            )
        caller_id = buyer_instance(caller, catalog, "RegisterUsage")
        account = caller_id.buyer.account_id
        now = self._clock.now().timestamp()
        registered = await self._store.container_registration(code, account, caller_id.instance)
        if registered is None:
            if catalog.entitlement(account, code, now) is None:
                raise CustomerNotEntitledException(
                    f"Customer {account} is not entitled to product '{code}'."
                )
            await self._store.register_container(
                ContainerRegistration(code, account, caller_id.instance, now)
            )
        claims: dict[str, Any] = {"productCode": code, "publicKeyVersion": key.version}
        if request.nonce is not None:
            claims["nonce"] = request.nonce
        claims["iat"] = int(now)
        return RegisterUsageResult(self._keys.sign(key, claims), key.retired_at)
