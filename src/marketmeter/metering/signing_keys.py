"""RegisterUsage's key ring (docs/register-usage.md): one RSA key pair per public key version, PS256
JWTs.

Version 1 is created the first time it is needed (a RegisterUsage call, ``marketmeter keys
show``, ``GET /_marketmeter/keys/1``) and stored durably, so signatures stay verifiable across
restarts and nodes. ``rotate`` adds the next version and retires the previous ones at that
moment; a retired version still signs, and RegisterUsage then reports its rotation time.
Versions that were never created are unknown. Key generation and PEM handling use
``cryptography``; the JWT is made by PyJWT (``{"alg": "PS256", "typ": "JWT"}``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from marketmeter.metering.clock import Clock
from marketmeter.metering.types import SigningKey
from marketmeter.store.base import Store

__all__ = ["KeyPairFactory", "KeyRing", "new_rsa_key_pair"]

# A new key pair as PEM texts: (private key, public key).
KeyPairFactory = Callable[[], tuple[str, str]]


def new_rsa_key_pair() -> tuple[str, str]:
    """A fresh 2048-bit RSA key pair: PKCS#8 private key and SubjectPublicKeyInfo public key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


class KeyRing:
    """The signing keys of one ledger (see the module docstring)."""

    def __init__(
        self, store: Store, clock: Clock, new_key_pair: KeyPairFactory = new_rsa_key_pair
    ) -> None:
        self._store = store
        self._clock = clock
        self._new_key_pair = new_key_pair
        self._loaded: dict[tuple[int, str], rsa.RSAPrivateKey] = {}

    async def keys(self) -> list[SigningKey]:
        """Every version, oldest first; version 1 is created if there is none yet."""
        keys = await self._store.signing_keys()
        if not keys:
            await self._add(1, retire_previous=False)
            keys = await self._store.signing_keys()
        return keys

    async def key(self, version: int) -> SigningKey | None:
        """The key pair of ``version``, or ``None`` if that version does not exist."""
        for key in await self.keys():
            if key.version == version:
                return key
        return None

    async def rotate(self) -> SigningKey:
        """Add the next version and retire every older one, now on the service clock."""
        while True:
            keys = await self.keys()
            version = keys[-1].version + 1
            if await self._add(version, retire_previous=True):
                new = await self.key(version)
                assert new is not None
                return new

    async def _add(self, version: int, retire_previous: bool) -> bool:
        private_pem, public_pem = await asyncio.to_thread(self._new_key_pair)
        now = self._clock.now().timestamp()
        key = SigningKey(version, private_pem, public_pem, created_at=now)
        return await self._store.add_signing_key(key, now if retire_previous else None)

    def sign(self, key: SigningKey, claims: dict[str, Any]) -> str:
        """A PS256 JWT over ``claims`` with the private key of ``key``."""
        cache_key = (key.version, key.private_key_pem)
        private = self._loaded.get(cache_key)
        if private is None:
            loaded = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise TypeError(f"signing key version {key.version} is not an RSA key")
            private = self._loaded[cache_key] = loaded
        return jwt.encode(claims, private, algorithm="PS256", headers={"typ": "JWT"})
