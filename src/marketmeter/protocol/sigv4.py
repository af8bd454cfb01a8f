"""Verifying AWS Signature Version 4 (the ``Authorization`` header form), as AWS's front door does.

``SigV4Verifier.verify`` rebuilds the canonical request from what was received (method, path,
query, the headers the client says it signed, and the SHA-256 of the body *as received*),
derives the signing key from the access key's secret with the standard library's ``hmac`` and
``hashlib``, and compares signatures in constant time. It answers which key signed and for
which region, or raises the error AWS's JSON 1.1 services send (docs/wire-protocol.md):

- no ``Authorization`` header → ``MissingAuthenticationTokenException``;
- a header that cannot be parsed (algorithm, Credential, SignedHeaders, Signature, a date
  header) → ``IncompleteSignatureException``;
- an access key nobody owns → ``UnrecognizedClientException``;
- a credential scope for another service, a region the service is not offered in (when the
  verifier is given its regions: "Credential should be scoped to a valid region. ", as AWS's
  JSON services answer a scope they do not serve), another terminator or day, a date more
  than 5 minutes from
  the server's *wall* clock (never the simulated service clock), a ``host``, ``x-amz-date`` or
  ``x-amz-target`` left unsigned, an ``X-Amz-Security-Token`` sent but not signed (it names the
  buyer's instance that MeterUsage bills), a declared ``X-Amz-Content-SHA256`` that is not the
  body's hash (``UNSIGNED-PAYLOAD`` included), or a signature that does not match →
  ``InvalidSignatureException``.

The declared content hash is never trusted: the canonical request always carries the hash the
server computed, so a body changed under the original declared hash fails.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote_to_bytes

from marketmeter.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from marketmeter.protocol.raw_request import RawRequest

__all__ = [
    "ALGORITHM",
    "MAX_SKEW",
    "REQUIRED_SIGNED_HEADERS",
    "SIGNING_NAME",
    "SigV4Verifier",
    "SignatureClaim",
    "VerifiedSignature",
    "canonical_request",
    "parse_authorization",
    "signing_key",
]

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_NAME = "aws-marketplace"
MAX_SKEW = timedelta(minutes=5)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_FORMAT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
_TERMINATOR = "aws4_request"
# Headers a JSON 1.1 call must sign: the host, the date and the operation.
REQUIRED_SIGNED_HEADERS = ("host", "x-amz-date", "x-amz-target")
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
_SPACES = re.compile(r"\s+")

# The secret of an access key, or None when no account owns the key.
SecretLookup = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class SignatureClaim:
    """What the ``Authorization`` header claims: who signed, for what scope, over which
    headers, and the signature."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    access_key_id: str
    region: str


def parse_authorization(header: str) -> SignatureClaim:
    """Parse ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``; raise
    ``IncompleteSignatureException`` naming every part that is missing or malformed."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{algorithm}'. Authorization={header}"
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, equals, value = item.strip().partition("=")
        if equals:
            parts[name] = value.strip()
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not parts.get(name)
    ]
    if problems:
        raise IncompleteSignatureException(" ".join(problems) + f" Authorization={header}")
    credential = parts["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{parts['Credential']}'"
        )
    key, date, region, service, terminator = credential
    return SignatureClaim(
        access_key_id=key,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=tuple(parts["SignedHeaders"].split(";")),
        signature=parts["Signature"],
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key: HMAC-SHA256 chained over date, region, service and terminator."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, _TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(
    request: RawRequest, signed_headers: tuple[str, ...], payload_hash: str
) -> str:
    """The canonical request AWS signs, rebuilt from the request as received."""
    headers = _header_values(request)
    return "\n".join(
        (
            request.method,
            _canonical_uri(request.raw_path or request.path.encode()),
            _canonical_query(request.query),
            "".join(
                f"{name}:{_canonical_value(headers.get(name, []))}\n" for name in signed_headers
            ),
            ";".join(signed_headers),
            payload_hash,
        )
    )


def _canonical_uri(raw_path: bytes) -> str:
    """The path with dot segments and empty segments removed, each byte outside the unreserved
    set percent-encoded (the path as sent is encoded once more, as AWS does for every service
    but S3)."""
    segments: list[bytes] = []
    for segment in raw_path.split(b"/"):
        if segment in (b"", b"."):
            continue
        if segment == b"..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    path = b"/" + b"/".join(segments)
    if raw_path.endswith(b"/") and segments:
        path += b"/"
    return quote(path, safe="/~")


def _canonical_query(query: bytes) -> str:
    pairs: list[tuple[str, str]] = []
    for item in query.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        pairs.append(
            (
                quote(unquote_to_bytes(name), safe="-_.~"),
                quote(unquote_to_bytes(value), safe="-_.~"),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _header_values(request: RawRequest) -> dict[str, list[str]]:
    """Every header's values by lower-case name, in the order received."""
    values: dict[str, list[str]] = {}
    for key, value in request.headers:
        values.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return values


def _canonical_value(values: list[str]) -> str:
    """A header's values, each trimmed with inner runs of spaces collapsed, joined by commas."""
    return ",".join(_SPACES.sub(" ", value).strip() for value in values)


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_AMZ_DATE)


# What AWS's JSON services answer a scope naming a region they are not offered in (the
# trailing space is AWS's).
_INVALID_REGION = "Credential should be scoped to a valid region. "


def _unsigned_message(header: str) -> str:
    if header == "host":
        return "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    title = "-".join(part.capitalize() for part in header.split("-"))
    return f"'{title}' must be a 'SignedHeader' in the AWS Authorization."


class SigV4Verifier:
    """Checks requests signed for ``service`` against the secrets ``lookup`` knows, within
    ``max_skew`` of ``wall_clock`` (epoch seconds). ``required_headers`` must be signed, and
    the session token too when one is sent, unless ``session_token_signed`` is False (some AWS
    services let it be added after signing; AWS's test suite has such a case). ``regions``:
    the regions a credential scope may name (``None``: any)."""

    def __init__(
        self,
        service: str = SIGNING_NAME,
        max_skew: timedelta = MAX_SKEW,
        wall_clock: Callable[[], float] = time.time,
        required_headers: tuple[str, ...] = REQUIRED_SIGNED_HEADERS,
        session_token_signed: bool = True,
        regions: frozenset[str] | None = None,
    ) -> None:
        self._service = service
        self._regions = regions
        self._required = required_headers
        self._session_token_signed = session_token_signed
        self._max_skew = max_skew
        self._wall_clock = wall_clock
        self._keys: dict[tuple[str, str, str], bytes] = {}

    def verify(
        self,
        request: RawRequest,
        lookup: SecretLookup,
        regions: frozenset[str] | None = None,
    ) -> VerifiedSignature:
        """Who signed ``request``; ``regions`` (when given) replaces the verifier's own: the
        regions of the service the request names."""
        authorization = request.header(b"authorization")
        if authorization is None:
            raise MissingAuthenticationTokenException("Missing Authentication Token")
        claim = parse_authorization(authorization)
        amz_date = request.header(b"x-amz-date")
        if amz_date is None:
            raise IncompleteSignatureException(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                f"header. Authorization={authorization}"
            )
        secret = lookup(claim.access_key_id)
        if secret is None:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        self._check_scope(claim, amz_date, regions if regions is not None else self._regions)
        for name in self._required:
            if name not in claim.signed_headers:
                raise InvalidSignatureException(_unsigned_message(name))
        # the session token names the buyer's instance (metering.callers): never unsigned
        token = "x-amz-security-token"
        if (
            self._session_token_signed
            and token not in claim.signed_headers
            and request.header(token.encode()) is not None
        ):
            raise InvalidSignatureException(_unsigned_message(token))
        self._check_date(amz_date)
        payload_hash = self._payload_hash(request)
        creq = canonical_request(request, claim.signed_headers, payload_hash)
        string_to_sign = "\n".join(
            (ALGORITHM, amz_date, claim.scope, hashlib.sha256(creq.encode()).hexdigest())
        )
        key = self._signing_key(secret, claim)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), claim.signature.encode()):
            raise InvalidSignatureException(
                f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n"
                f"'{creq}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
            )
        return VerifiedSignature(claim.access_key_id, claim.region)

    def _check_scope(
        self, claim: SignatureClaim, amz_date: str, regions: frozenset[str] | None
    ) -> None:
        if claim.service != self._service:
            raise InvalidSignatureException(
                f"Credential should be scoped to correct service: '{self._service}'. "
            )
        if regions is not None and claim.region not in regions:
            raise InvalidSignatureException(_INVALID_REGION)
        if claim.terminator != _TERMINATOR:
            raise InvalidSignatureException(
                f"Credential should be scoped with a valid terminator: '{_TERMINATOR}', "
                f"not '{claim.terminator}'. "
            )
        if claim.date != amz_date[:8]:
            raise InvalidSignatureException(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{claim.date}' != '{amz_date[:8]}', from '{amz_date}'."
            )

    def _check_date(self, amz_date: str) -> None:
        match = _AMZ_DATE_FORMAT.fullmatch(amz_date)
        try:
            if match is None:
                raise ValueError(amz_date)
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            # a real date and time (no 31 February, no 25 o'clock)
            signed_at = int(
                datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
            )
        except ValueError:
            raise IncompleteSignatureException(
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See "
                "http://en.wikipedia.org/wiki/ISO_8601"
            ) from None
        now = int(self._wall_clock())
        skew = int(self._max_skew.total_seconds())
        if signed_at < now - skew:
            raise InvalidSignatureException(
                f"Signature expired: {amz_date} is now earlier than {_stamp(now - skew)} "
                f"({_stamp(now)} - {skew // 60} min.)"
            )
        if signed_at > now + skew:
            raise InvalidSignatureException(
                f"Signature not yet current: {amz_date} is still later than "
                f"{_stamp(now + skew)} ({_stamp(now)} + {skew // 60} min.)"
            )

    @staticmethod
    def _payload_hash(request: RawRequest) -> str:
        computed = hashlib.sha256(request.body).hexdigest()
        declared = request.header(b"x-amz-content-sha256")
        if declared is not None and not hmac.compare_digest(
            declared.strip().encode("latin-1"), computed.encode()
        ):
            raise InvalidSignatureException(
                "The provided 'x-amz-content-sha256' header does not match what was computed: "
                "this service signs the body's SHA-256 (UNSIGNED-PAYLOAD and streaming "
                "payloads are not accepted)."
            )
        return computed

    def _signing_key(self, secret: str, claim: SignatureClaim) -> bytes:
        cache_key = (secret, claim.date, claim.region)
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) >= 4096:
                self._keys.clear()
            key = signing_key(secret, claim.date, claim.region, self._service)
            self._keys[cache_key] = key
        return key
