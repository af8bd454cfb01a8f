"""The SNS HTTP(S) subscription protocol, for an ``http`` target with ``sns_protocol: true``.

As SNS does with a new HTTP(S) subscription (https://docs.aws.amazon.com/sns/latest/dg/http-header.html,
docs/subscription-lifecycle.md): the first POST for a topic is a ``SubscriptionConfirmation``
(``Token``, ``SubscribeURL``); nothing else goes to that endpoint for that topic until it GETs
the ``SubscribeURL`` (``/_marketmeter/sns?Action=ConfirmSubscription&TopicArn=…&Token=…`` on
marketmeter); deliveries wait meanwhile (retried, the confirmation POSTed again with each
attempt). Then each ``Notification`` carries SNS's ``x-amz-sns-*`` headers and a signature
(``SignatureVersion`` ``1``: SHA1withRSA over SNS's string to sign) that verifies with the
certificate marketmeter serves at ``SigningCertURL`` (``/_marketmeter/sns/certificate.pem``).

The key is RegisterUsage's key version 1 (stored, the same on every node); the certificate is
self-signed over it with fixed fields, so every node serves the same bytes. AWS's validators
accept only an ``https`` certificate URL on an ``sns.<region>.amazonaws.com`` host by default:
point their host pattern at marketmeter (both let the caller override it).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from marketmeter.catalog.model import NotificationTarget
from marketmeter.lifecycle.messages import delivery_headers
from marketmeter.lifecycle.types import Channel, LifecycleEvent
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.store.base import Store

__all__ = [
    "CERTIFICATE_PATH",
    "CONFIRM_PATH",
    "SnsHttp",
    "SnsSigner",
    "confirmation_answer",
    "string_to_sign",
]

CONFIRM_PATH = "/_marketmeter/sns"
CERTIFICATE_PATH = "/_marketmeter/sns/certificate.pem"
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def string_to_sign(message: dict[str, str]) -> str:
    """SNS's string to sign: ``key\\nvalue\\n`` for each signed key present, in SNS's order."""
    keys = _NOTIFICATION_KEYS if message["Type"] == "Notification" else _CONFIRMATION_KEYS
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message)


class SnsSigner:
    """Signs SNS messages with the ledger's key version 1; serves its certificate."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        self._private: rsa.RSAPrivateKey | None = None
        self._certificate: bytes | None = None

    async def _key(self) -> rsa.RSAPrivateKey:
        if self._private is None:
            key = await self._keys.key(1) or (await self._keys.keys())[0]
            loaded = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise TypeError("signing key version 1 is not an RSA key")
            self._private = loaded
        return self._private

    async def certificate_pem(self) -> bytes:
        """The self-signed certificate of the signing key (the same on every node)."""
        if self._certificate is None:
            private = await self._key()
            public = private.public_key()
            digest = hashlib.sha256(
                public.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).digest()
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.marketmeter.local")])
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(public)
                .serial_number(int.from_bytes(digest[:16]) >> 1)
                .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
                .not_valid_after(datetime(2100, 1, 1, tzinfo=UTC))
                .sign(private, hashes.SHA256())
            )
            self._certificate = certificate.public_bytes(serialization.Encoding.PEM)
        return self._certificate

    async def sign(self, message: dict[str, str]) -> str:
        """The ``Signature`` (version 1: SHA1withRSA, base64) of ``message``."""
        private = await self._key()
        signed = private.sign(
            string_to_sign(message).encode(),
            padding.PKCS1v15(),
            hashes.SHA1(),  # SNS SignatureVersion 1 is SHA1withRSA
        )
        return base64.b64encode(signed).decode()


class SnsHttp:
    """Delivers SNS messages to an HTTP(S) endpoint as an SNS subscription does."""

    def __init__(self, store: Store, signer: SnsSigner, base_url: str) -> None:
        self._store = store
        self._signer = signer
        self._base = base_url.rstrip("/")

    async def messages(
        self, product_code: str, target: NotificationTarget, event: LifecycleEvent
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """What to POST for ``event``: ``Notification`` (confirmed) or
        ``SubscriptionConfirmation``, its signed body and its headers."""
        if event.channel is not Channel.SNS:
            raise ValueError("the SNS protocol carries SNS messages only")
        topic = event.topic
        token, confirmed = await self._store.sns_subscription(product_code, target.name, topic)
        headers = delivery_headers(event)
        if confirmed:
            body: dict[str, Any] = {
                **event.body,
                "SigningCertURL": self._base + CERTIFICATE_PATH,
            }
            body["Signature"] = await self._signer.sign(body)
            return "Notification", body, headers
        subscribe_url = (
            f"{self._base}{CONFIRM_PATH}?Action=ConfirmSubscription&TopicArn={quote(topic)}"
            f"&Token={token}"
        )
        confirmation = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(_uuid(f"confirmation|{token}")),
            "Token": token,
            "TopicArn": topic,
            "Message": (
                f"You have chosen to subscribe to the topic {topic}.\nTo confirm the "
                "subscription, visit the SubscribeURL included in this message."
            ),
            "SubscribeURL": subscribe_url,
            "Timestamp": event.body["Timestamp"],
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": self._base + CERTIFICATE_PATH,
        }
        confirmation["Signature"] = await self._signer.sign(confirmation)
        headers = {
            **headers,
            "x-amz-sns-message-type": "SubscriptionConfirmation",
            "x-amz-sns-message-id": confirmation["MessageId"],
        }
        headers.pop("x-amz-sns-subscription-arn", None)
        return "SubscriptionConfirmation", confirmation, headers


def _uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def confirmation_answer(subscription_arn: str, request_id: str) -> bytes:
    """SNS's ConfirmSubscription answer (XML)."""
    return (
        '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<ConfirmSubscriptionResult><SubscriptionArn>{subscription_arn}</SubscriptionArn>"
        f"</ConfirmSubscriptionResult><ResponseMetadata><RequestId>{request_id}</RequestId>"
        "</ResponseMetadata></ConfirmSubscriptionResponse>"
    ).encode()
