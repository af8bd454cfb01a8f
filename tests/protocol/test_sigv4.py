"""The SigV4 verifier against AWS's published test suite and botocore's signer (the oracles),
and the tampering matrix: every signed element changed after signing is refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from marketmeter.errors import (
    AwsError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from marketmeter.protocol.auth import RawRequest
from marketmeter.protocol.sigv4 import (
    SigV4Verifier,
    canonical_request,
    parse_authorization,
)
from marketmeter.servicemodel.spec import _loader, service_regions

# AWS's Signature Version 4 test suite, as published (its LICENSE and NOTICE beside it)
VECTORS = Path(__file__).resolve().parents[1] / "data" / "sigv4"
VECTOR_KEY = "AKIDEXAMPLE"
VECTOR_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
VECTOR_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC).timestamp()


def parse_http(text: bytes) -> RawRequest:
    """A request as the test suite writes it (request line, headers with folded lines, body)."""
    head, _, body = text.partition(b"\n\n")
    lines = head.split(b"\n")
    method, _, rest = lines[0].partition(b" ")
    target = rest.rsplit(b" ", 1)[0]
    raw_path, _, query = target.partition(b"?")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            name, value = headers[-1]
            headers[-1] = (name, value + b"\n" + line)
            continue
        name, _, value = line.partition(b":")
        headers.append((name.lower(), value))
    return RawRequest(method.decode(), raw_path.decode("utf-8"), query, headers, body, raw_path)


def vector_cases() -> list[Path]:
    return sorted(path.parent for path in VECTORS.rglob("*.sreq"))


def vector_request(case: Path) -> RawRequest:
    """The case's request with the expected Authorization (``.authz``): the suite's ``.sreq``
    of get-vanilla-with-session-token carries a stale signature (pinned below)."""
    request = parse_http((case / f"{case.name}.sreq").read_bytes())
    authorization = (case / f"{case.name}.authz").read_bytes()
    return with_header(request, b"authorization", authorization)


def vector_verifier() -> SigV4Verifier:
    return SigV4Verifier(
        service="service",
        wall_clock=lambda: VECTOR_TIME,
        required_headers=("host", "x-amz-date"),
        session_token_signed=False,  # post-sts-header-after adds it after signing
    )


def lookup(key: str) -> str | None:
    return {VECTOR_KEY: VECTOR_SECRET}.get(key)


def test_the_whole_published_suite_is_there() -> None:
    assert len(vector_cases()) == 34


def test_the_stale_signature_in_one_published_sreq_is_refused() -> None:
    case = VECTORS / "get-vanilla-with-session-token"
    request = parse_http((case / f"{case.name}.sreq").read_bytes())
    with pytest.raises(InvalidSignatureException):
        vector_verifier().verify(request, lookup)


@pytest.mark.parametrize("case", vector_cases(), ids=lambda path: path.name)
def test_aws_vectors_verify_and_canonicalise_exactly(case: Path) -> None:
    request = vector_request(case)
    claim = parse_authorization(request.header(b"authorization") or "")
    expected_creq = (case / f"{case.name}.creq").read_text("utf-8")
    payload_hash = hashlib.sha256(request.body).hexdigest()
    assert canonical_request(request, claim.signed_headers, payload_hash) == expected_creq
    verified = vector_verifier().verify(request, lookup)
    assert (verified.access_key_id, verified.region) == (VECTOR_KEY, "us-east-1")


@pytest.mark.parametrize("case", vector_cases(), ids=lambda path: path.name)
def test_aws_vectors_fail_with_another_secret(case: Path) -> None:
    request = vector_request(case)
    with pytest.raises(InvalidSignatureException) as failure:
        vector_verifier().verify(request, lambda key: "not-the-secret")
    expected_sts = (case / f"{case.name}.sts").read_text("utf-8")
    assert failure.value.message.endswith(
        f"The String-to-Sign should have been\n'{expected_sts}'\n"
    )


# --- botocore as the oracle, for the metering service ---------------------------------------

SELLER_KEY, SELLER_SECRET = "AKIATESTSELLER000001", "test-seller-secret"
OTHER_KEY, OTHER_SECRET = "AKIATESTOTHER0000001", "other-secret"
NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
BODY = b'{"ProductCode":"prod-saas-1","UsageRecords":[]}'
KEYS = {SELLER_KEY: SELLER_SECRET, OTHER_KEY: OTHER_SECRET}


def sign_at(auth: SigV4Auth, request: AWSRequest, at: datetime) -> None:
    """What ``SigV4Auth.add_auth`` does, at the time ``at`` instead of now."""
    request.context["timestamp"] = at.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(request)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    auth._inject_signature_to_request(request, auth.signature(string_to_sign, request))


def signed(
    *,
    body: bytes = BODY,
    secret: str = SELLER_SECRET,
    key: str = SELLER_KEY,
    service: str = "aws-marketplace",
    region: str = "us-east-1",
    at: datetime = NOW,
    extra_headers: dict[str, str] | None = None,
    url: str = "http://127.0.0.1:8686/",
) -> RawRequest:
    """A request signed by botocore's SigV4Auth, as boto3 sends it."""
    request = AWSRequest(
        "POST",
        url,
        data=body,
        headers={
            "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage",
            "Content-Type": "application/x-amz-json-1.1",
            **(extra_headers or {}),
        },
    )
    sign_at(SigV4Auth(Credentials(key, secret), service, region), request, at)
    prepared = request.prepare()
    headers = [(b"host", b"127.0.0.1:8686")] + [
        (name.lower().encode(), value.encode() if isinstance(value, str) else value)
        for name, value in prepared.headers.items()
    ]
    path, _, query = url.removeprefix("http://127.0.0.1:8686").partition("?")
    return RawRequest("POST", path, query.encode(), headers, body, path.encode())


def verifier(at: datetime = NOW) -> SigV4Verifier:
    return SigV4Verifier(wall_clock=lambda: at.timestamp())


def with_header(request: RawRequest, name: bytes, value: bytes) -> RawRequest:
    headers = [(k, value if k == name else v) for k, v in request.headers]
    return replace(request, headers=headers)


def test_a_botocore_signature_verifies() -> None:
    verified = verifier().verify(signed(region="eu-west-1"), KEYS.get)
    assert (verified.access_key_id, verified.region) == (SELLER_KEY, "eu-west-1")


def test_a_scope_naming_a_region_outside_the_service_regions_is_refused() -> None:
    """As AWS's JSON services answer (the trailing space is theirs)."""
    checker = SigV4Verifier(wall_clock=lambda: NOW.timestamp(), regions=service_regions())
    for region in ("ca-west-1", "ap-southeast-5", "local"):
        with pytest.raises(InvalidSignatureException) as failure:
            checker.verify(signed(region=region), KEYS.get)
        assert failure.value.message == "Credential should be scoped to a valid region. "
    for region in ("us-east-1", "il-central-1", "cn-northwest-1", "us-gov-east-1"):
        assert checker.verify(signed(region=region), KEYS.get).region == region
    # without regions (the default), any region verifies
    assert verifier().verify(signed(region="local"), KEYS.get).region == "local"


def test_the_service_regions_are_botocores_endpoints() -> None:
    regions = service_regions()
    assert {"us-east-1", "eu-south-2", "cn-northwest-1", "us-gov-west-1"} <= regions
    assert {"ca-west-1", "ap-east-2", "mx-central-1", "us-east-1-fips"}.isdisjoint(regions)
    # the endpoints file is not kept by the shared loader (7 MiB in every server process)
    assert not [key for key in _loader()._cache if "endpoints" in key]


def test_a_session_token_signed_by_botocore_verifies() -> None:
    request = AWSRequest(
        "POST",
        "http://127.0.0.1:8686/",
        data=BODY,
        headers={"X-Amz-Target": "AWSMPMeteringService.MeterUsage"},
    )
    credentials = Credentials(SELLER_KEY, SELLER_SECRET, "i-0abc")
    sign_at(SigV4Auth(credentials, "aws-marketplace", "us-east-1"), request, NOW)
    headers = [(b"host", b"127.0.0.1:8686")] + [
        (name.lower().encode(), value.encode()) for name, value in request.prepare().headers.items()
    ]
    raw = RawRequest("POST", "/", b"", headers, BODY, b"/")
    assert raw.header(b"x-amz-security-token") == "i-0abc"
    assert verifier().verify(raw, KEYS.get).access_key_id == SELLER_KEY


def test_the_date_may_be_five_minutes_off_either_way() -> None:
    request = signed()
    assert verifier(datetime(2026, 11, 23, 10, 5, 0, tzinfo=UTC)).verify(request, KEYS.get)
    assert verifier(datetime(2026, 11, 23, 9, 55, 0, tzinfo=UTC)).verify(request, KEYS.get)


def test_an_expired_signature_says_by_how_much() -> None:
    with pytest.raises(InvalidSignatureException) as failure:
        verifier(datetime(2026, 11, 23, 10, 5, 1, tzinfo=UTC)).verify(signed(), KEYS.get)
    assert failure.value.message == (
        "Signature expired: 20261123T100000Z is now earlier than 20261123T100001Z "
        "(20261123T100501Z - 5 min.)"
    )


def test_a_signature_from_the_future_is_not_yet_current() -> None:
    with pytest.raises(InvalidSignatureException) as failure:
        verifier(datetime(2026, 11, 23, 9, 54, 59, tzinfo=UTC)).verify(signed(), KEYS.get)
    assert failure.value.message == (
        "Signature not yet current: 20261123T100000Z is still later than 20261123T095959Z "
        "(20261123T095459Z + 5 min.)"
    )


def test_no_authorization_is_a_missing_token() -> None:
    request = signed()
    bare = replace(request, headers=[h for h in request.headers if h[0] != b"authorization"])
    with pytest.raises(MissingAuthenticationTokenException) as failure:
        verifier().verify(bare, KEYS.get)
    assert failure.value.message == "Missing Authentication Token"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'. Authorization="
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
            id="algorithm",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIATESTSELLER000001/20261123/us-east-1/"
            "aws-marketplace/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires "
            "'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential="
            "AKIATESTSELLER000001/20261123/us-east-1/aws-marketplace/aws4_request",
            id="signature-and-signed-headers",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIATESTSELLER000001/20261123, SignedHeaders=host, "
            "Signature=00",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKIATESTSELLER000001/20261123'",
            id="credential",
        ),
    ],
)
def test_a_malformed_authorization_is_incomplete(authorization: str, message: str) -> None:
    request = with_header(signed(), b"authorization", authorization.encode())
    with pytest.raises(IncompleteSignatureException) as failure:
        verifier().verify(request, KEYS.get)
    assert failure.value.message == message


def test_a_missing_date_is_incomplete() -> None:
    request = signed()
    undated = replace(request, headers=[h for h in request.headers if h[0] != b"x-amz-date"])
    with pytest.raises(IncompleteSignatureException) as failure:
        verifier().verify(undated, KEYS.get)
    assert failure.value.message.startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("host", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        ("x-amz-date", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."),
        ("x-amz-target", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
    ],
)
def test_host_date_and_target_must_be_signed(header: str, message: str) -> None:
    request = signed()
    claim = parse_authorization(request.header(b"authorization") or "")
    names = ";".join(h for h in claim.signed_headers if h != header)
    authorization = (request.header(b"authorization") or "").replace(
        ";".join(claim.signed_headers), names
    )
    with pytest.raises(InvalidSignatureException) as failure:
        verifier().verify(with_header(request, b"authorization", authorization.encode()), KEYS.get)
    assert failure.value.message == message


@pytest.mark.parametrize(
    "declared",
    ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", hashlib.sha256(b"{}").hexdigest()],
)
def test_a_declared_content_hash_must_be_the_bodys(declared: str) -> None:
    request = signed(extra_headers={"X-Amz-Content-SHA256": declared})
    with pytest.raises(InvalidSignatureException) as failure:
        verifier().verify(request, KEYS.get)
    assert failure.value.message.startswith(
        "The provided 'x-amz-content-sha256' header does not match what was computed"
    )


def test_the_bodys_own_declared_hash_is_accepted() -> None:
    request = signed(extra_headers={"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()})
    assert verifier().verify(request, KEYS.get).access_key_id == SELLER_KEY


def test_a_body_changed_under_its_original_declared_hash_fails() -> None:
    request = signed(extra_headers={"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()})
    changed = replace(request, body=BODY.replace(b"saas-1", b"saas-2"))
    with pytest.raises(InvalidSignatureException):
        verifier().verify(changed, KEYS.get)


# --- the tampering matrix --------------------------------------------------------------------


def _tamper_header(name: bytes, value: bytes) -> Callable[[RawRequest], RawRequest]:
    return lambda request: with_header(request, name, value)


def _tamper_authorization(old: str, new: str) -> Callable[[RawRequest], RawRequest]:
    def tamper(request: RawRequest) -> RawRequest:
        authorization = (request.header(b"authorization") or "").replace(old, new)
        return with_header(request, b"authorization", authorization.encode())

    return tamper


TAMPERING: dict[str, tuple[Callable[[RawRequest], RawRequest], type[AwsError]]] = {
    "method": (lambda r: replace(r, method="PUT"), InvalidSignatureException),
    "path": (lambda r: replace(r, path="/x", raw_path=b"/x"), InvalidSignatureException),
    "query": (lambda r: replace(r, query=b"a=b"), InvalidSignatureException),
    "host": (_tamper_header(b"host", b"127.0.0.1:9999"), InvalidSignatureException),
    "x-amz-date": (
        _tamper_header(b"x-amz-date", b"20261123T100001Z"),
        InvalidSignatureException,
    ),
    "x-amz-target": (
        _tamper_header(b"x-amz-target", b"AWSMPMeteringService.MeterUsage"),
        InvalidSignatureException,
    ),
    "content-type": (
        _tamper_header(b"content-type", b"application/json"),
        InvalidSignatureException,
    ),
    "body-byte": (
        lambda r: replace(r, body=r.body[:-2] + b" }"),
        InvalidSignatureException,
    ),
    "region": (_tamper_authorization("/us-east-1/", "/us-west-2/"), InvalidSignatureException),
    "service": (
        _tamper_authorization("/aws-marketplace/", "/execute-api/"),
        InvalidSignatureException,
    ),
    "scope-date": (
        _tamper_authorization("/20261123/", "/20261122/"),
        InvalidSignatureException,
    ),
    "access-key-known": (
        _tamper_authorization(SELLER_KEY, OTHER_KEY),
        InvalidSignatureException,
    ),
    "access-key-unknown": (
        _tamper_authorization(SELLER_KEY, "AKIANOBODY0000000001"),
        UnrecognizedClientException,
    ),
    "signature": (
        lambda r: _tamper_authorization("Signature=", "Signature=0")(r),
        InvalidSignatureException,
    ),
}


@pytest.mark.parametrize("element", sorted(TAMPERING))
def test_every_signed_element_changed_after_signing_is_refused(element: str) -> None:
    tamper, error = TAMPERING[element]
    request = signed()
    assert verifier().verify(request, KEYS.get).access_key_id == SELLER_KEY
    with pytest.raises(error):
        verifier().verify(tamper(request), KEYS.get)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(InvalidSignatureException) as failure:
        verifier().verify(signed(secret="not-the-secret"), KEYS.get)
    assert failure.value.message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_another_service_in_the_scope_names_ours() -> None:
    with pytest.raises(InvalidSignatureException) as failure:
        verifier().verify(signed(service="execute-api"), KEYS.get)
    assert failure.value.message == (
        "Credential should be scoped to correct service: 'aws-marketplace'. "
    )


def test_the_signing_key_cache_follows_the_secret() -> None:
    checker = verifier()
    assert checker.verify(signed(), KEYS.get).access_key_id == SELLER_KEY
    with pytest.raises(InvalidSignatureException):
        checker.verify(signed(), {SELLER_KEY: "rotated-secret"}.get)


@pytest.mark.parametrize("amz_date", ["20261123T250000Z", "20261123T1000Z", "20261123t100000z"])
def test_a_date_that_is_not_iso_8601_basic_is_incomplete(amz_date: str) -> None:
    request = with_header(signed(), b"x-amz-date", amz_date.encode())
    with pytest.raises(IncompleteSignatureException) as failure:
        verifier().verify(request, KEYS.get)
    assert failure.value.message == (
        f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See "
        "http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_the_published_token_added_after_signing_is_refused_by_default() -> None:
    case = VECTORS / "post-sts-token" / "post-sts-header-after"
    checker = SigV4Verifier(
        service="service", wall_clock=lambda: VECTOR_TIME, required_headers=("host",)
    )
    with pytest.raises(InvalidSignatureException) as failure:
        checker.verify(vector_request(case), lookup)
    assert failure.value.message == (
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_a_session_token_added_after_signing_is_refused() -> None:
    request = signed()
    added = replace(request, headers=[*request.headers, (b"x-amz-security-token", b"i-other")])
    with pytest.raises(InvalidSignatureException) as failure:
        verifier().verify(added, KEYS.get)
    assert failure.value.message == (
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
    )
