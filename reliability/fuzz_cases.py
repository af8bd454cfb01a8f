"""The malformed requests of the fuzz harness: hypothesis strategies of raw HTTP exchanges.

A ``Probe`` is what goes on one TCP connection: the bytes, in the pieces they are sent in, the
pause between pieces, and whether the client half-closes after sending. The strategies build
probes in fourteen categories (``CATEGORIES``); the members and types they break are read from
botocore's service model (``marketmeter.servicemodel.spec``), only the valid base values of each
operation are written here; ``admin_params`` and ``catalog_document`` go to the admin API (its
query parameters; ``POST /_marketmeter/catalog``). ``slow_body`` probes are built apart
(``slow_probe``): they take time, so a run sends only a handful.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from hypothesis import strategies as st

from marketmeter.config import ConnectionLimits
from marketmeter.operator.journal import JOURNAL_FILTERS
from marketmeter.servicemodel.spec import service_model, target_prefix

__all__ = [
    "ADMIN_CATEGORIES",
    "ADMIN_QUERY_PARAMETERS",
    "CATEGORIES",
    "HTTP_LAYER_CATEGORIES",
    "Pairs",
    "Probe",
    "Raw",
    "base_params",
    "member_paths",
    "probes",
    "render",
    "request_bytes",
    "slow_probe",
]

MIB = 1024 * 1024
MAX_HEADER_BYTES = ConnectionLimits().max_header_bytes
OPERATIONS = ("BatchMeterUsage", "MeterUsage", "RegisterUsage", "ResolveCustomer")

CATEGORIES = (
    "bad_json",
    "wrong_type",
    "numbers",
    "nan_infinity",
    "deep_nesting",
    "bad_utf8",
    "duplicate_keys",
    "target",
    "oversize",
    "lying_length",
    "unknown_method",
    "huge_headers",
    "admin_params",
    "catalog_document",
    "slow_body",
)

# Categories whose bytes are not always a well-formed HTTP request (bad_utf8: in a header):
# uvicorn's HTTP parser may answer them itself (400, text/plain "Invalid HTTP request
# received.") before the app runs.
HTTP_LAYER_CATEGORIES = frozenset({"bad_utf8", "lying_length", "unknown_method"})
# Categories sent to the admin API (/_marketmeter): answers are its own JSON, not the AWS wire's.
ADMIN_CATEGORIES = frozenset({"admin_params", "catalog_document"})


@dataclass(frozen=True, slots=True)
class Probe:
    """One connection's worth of bytes. ``operation`` is the operation the target names (None
    when the target names none); ``expect_status`` pins the status when the category has one
    (oversize: 413); ``reply_optional``: the client half-closes, so no answer is owed."""

    category: str
    pieces: tuple[bytes, ...]
    operation: str | None = None
    pause: float = 0.0
    half_close: bool = False
    expect_status: int | None = None
    reply_optional: bool = False
    head_request: bool = False

    @property
    def wire(self) -> bytes:
        return b"".join(self.pieces)


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes written into the JSON text verbatim (NaN, 1e400, invalid UTF-8 ...)."""

    text: bytes


@dataclass(frozen=True, slots=True)
class Pairs:
    """A JSON object written member by member, so a name may repeat."""

    items: tuple[tuple[str, Any], ...]


def render(value: Any) -> bytes:
    """JSON text of ``value``, with ``Raw`` written as is and ``Pairs`` keeping repeats."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        members = (render(name) + b":" + render(item) for name, item in value.items)
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, dict):
        return render(Pairs(tuple(value.items())))
    if isinstance(value, list):
        return b"[" + b",".join(render(item) for item in value) + b"]"
    return json.dumps(value).encode()


def base_params(operation: str, now: int) -> dict[str, Any]:
    """A well-formed request of ``operation`` for tests/data/catalog.yaml; every optional
    member is present so that every member can be broken."""
    allocation = {"AllocatedUsageQuantity": 1, "Tags": [{"Key": "fuzz", "Value": "v"}]}
    if operation == "BatchMeterUsage":
        record = {
            "Timestamp": now,
            "CustomerIdentifier": "cust-alice",
            "Dimension": "api_calls",
            "Quantity": 1,
            "UsageAllocations": [allocation],
        }
        return {"ProductCode": "prod-legacy", "UsageRecords": [record]}
    if operation == "MeterUsage":
        return {
            "ProductCode": "prod-ami",
            "Timestamp": now,
            "UsageDimension": "vcpu_hours",
            "UsageQuantity": 1,
            "DryRun": True,
            "UsageAllocations": [allocation],
            "ClientToken": "fuzz-token",
        }
    if operation == "RegisterUsage":
        return {"ProductCode": "prod-container", "PublicKeyVersion": 1, "Nonce": "fuzz"}
    return {"RegistrationToken": "fuzz-token"}


Path = tuple[str | int, ...]


def member_paths(operation: str, now: int) -> list[tuple[Path, str]]:
    """Every member of the base request, as (path, botocore type name), walked along the
    operation's input shape: ``(("UsageRecords", 0, "Quantity"), "integer")``."""
    shape = service_model().operation_model(operation).input_shape
    return list(_walk(shape, base_params(operation, now), ()))


def _walk(shape: Any, value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if path:
        yield path, shape.type_name
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                yield from _walk(member, value[name], (*path, name))
    elif shape.type_name == "list" and value:
        yield from _walk(shape.member, value[0], (*path, 0))


def _replace(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the member at ``path`` set to ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        copy = list(value)
        copy[int(head)] = _replace(copy[int(head)], rest, new)
        return copy
    return {**value, str(head): _replace(value[str(head)], rest, new)}


def request_bytes(
    body: bytes,
    target: bytes | None,
    *,
    method: bytes = b"POST",
    path: bytes = b"/",
    length: int | None = None,
    extra_headers: bytes = b"",
    close: bool = True,
) -> bytes:
    """An HTTP/1.1 request as bytes: Content-Length ``length`` (the true one by default)."""
    head = method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if close:
        head += b"Connection: close\r\n"
    head += b"Content-Type: application/x-amz-json-1.1\r\n"
    if target is not None:
        head += b"X-Amz-Target: " + target + b"\r\n"
    head += extra_headers
    head += b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length)
    return head + body


def _target(operation: str) -> bytes:
    return f"{target_prefix()}.{operation}".encode()


def _post(category: str, operation: str, body: bytes, **kwargs: Any) -> Probe:
    return Probe(category, (request_bytes(body, _target(operation)),), operation, **kwargs)


# --- values ------------------------------------------------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

# For each botocore type: JSON values of every other JSON type.
_WRONG_FOR: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.lists(st.text(max_size=5), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        st.none(),
    ),
    "integer": st.one_of(
        st.text(max_size=12),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        st.none(),
    ),
    "timestamp": st.one_of(
        st.text(max_size=30),
        st.booleans(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        st.none(),
    ),
    "boolean": st.one_of(
        st.integers(),
        st.text(max_size=8),
        st.floats(allow_nan=False),
        st.lists(st.booleans(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.booleans(), max_size=3),
        st.none(),
    ),
    "structure": st.one_of(_JSON_SCALARS, st.lists(_JSON_SCALARS, max_size=3)),
    "list": st.one_of(
        _JSON_SCALARS, st.dictionaries(st.text(max_size=5), _JSON_SCALARS, max_size=3)
    ),
}

_NUMBER_LITERALS = st.sampled_from(
    [
        b"-1",
        b"-0",
        b"-2147483649",
        b"2147483648",
        b"9223372036854775807",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"18446744073709551616",
        b"9" * 400,
        b"-" + b"9" * 400,
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"1.0",
        b"1E2",
        b"2147483647.0000001",
        b"0.000001",
        b"4e9",
    ]
)
_NUMBERS = st.one_of(
    _NUMBER_LITERALS,
    st.integers(min_value=-(10**40), max_value=10**40).map(lambda n: str(n).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
)
_NON_FINITE = st.sampled_from(
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"nan",
        b"inf",
        b"-inf",
        b"+1",
        b"01",
        b".5",
        b"1.",
        b"0x10",
    ]
)
_BAD_UTF8 = st.sampled_from(
    [
        b"\xff",
        b"\xfe\xff",
        b"\x80",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xe2\x82",
        b"\\ud800",
        b"\\udc00\\ud800",
        b"\\ud83d",
        b"\\u0000",
        b"\x00",
    ]
)


@st.composite
def _operation_and_path(draw: st.DrawFn, now: int, types: frozenset[str] | None = None) -> Any:
    operation = draw(st.sampled_from(OPERATIONS))
    paths = [(p, t) for p, t in member_paths(operation, now) if types is None or t in types]
    if not paths:
        operation = "BatchMeterUsage"
        paths = [(p, t) for p, t in member_paths(operation, now) if types is None or t in types]
    path, type_name = draw(st.sampled_from(paths))
    return operation, path, type_name


# --- categories --------------------------------------------------------------------------------


@st.composite
def _bad_json(draw: st.DrawFn, now: int) -> Probe:
    operation = draw(st.sampled_from(OPERATIONS))
    valid = render(base_params(operation, now))
    body = draw(
        st.one_of(
            st.binary(max_size=200),
            st.text(max_size=100).map(str.encode),
            st.integers(0, len(valid) - 1).map(lambda cut: valid[:cut]),
            _JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(render),
            st.sampled_from(
                [b"{", b"}", b"{]", b"{'a': 1}", b'{"a" 1}', b"{,}", b"\xef\xbb\xbf{}"]
            ),
        )
    )
    return _post("bad_json", operation, body)


@st.composite
def _wrong_type(draw: st.DrawFn, now: int) -> Probe:
    operation, path, type_name = draw(_operation_and_path(now))
    wrong = draw(_WRONG_FOR[type_name])
    return _post(
        "wrong_type", operation, render(_replace(base_params(operation, now), path, wrong))
    )


@st.composite
def _numbers(draw: st.DrawFn, now: int) -> Probe:
    operation, path, _ = draw(_operation_and_path(now, frozenset({"integer", "timestamp"})))
    number = Raw(draw(_NUMBERS))
    return _post("numbers", operation, render(_replace(base_params(operation, now), path, number)))


@st.composite
def _nan_infinity(draw: st.DrawFn, now: int) -> Probe:
    operation, path, _ = draw(_operation_and_path(now))
    literal = Raw(draw(_NON_FINITE))
    body = render(_replace(base_params(operation, now), path, literal))
    return _post("nan_infinity", operation, body)


@st.composite
def _deep_nesting(draw: st.DrawFn, now: int) -> Probe:
    operation, path, _ = draw(_operation_and_path(now))
    depth = draw(st.sampled_from([10_000, 10_001, 100_000]) | st.integers(500, 20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")]))
    closed = draw(st.booleans())
    nested = opener * depth + (b"1" + closer * depth if closed else b"")
    if draw(st.booleans()):
        body = nested
    else:
        body = render(_replace(base_params(operation, now), path, Raw(nested)))
    return _post("deep_nesting", operation, body)


@st.composite
def _bad_utf8(draw: st.DrawFn, now: int) -> Probe:
    operation, path, _ = draw(_operation_and_path(now, frozenset({"string"})))
    bad = draw(_BAD_UTF8)
    around = draw(st.text(alphabet="abc-_", max_size=5)).encode()
    if draw(st.integers(0, 4)) == 0:
        # in the X-Amz-Target header instead of the body
        body = render(base_params(operation, now))
        return Probe("bad_utf8", (request_bytes(body, _target(operation) + bad),), None)
    member = Raw(b'"' + around + bad + around + b'"')
    return _post("bad_utf8", operation, render(_replace(base_params(operation, now), path, member)))


@st.composite
def _duplicate_keys(draw: st.DrawFn, now: int) -> Probe:
    operation, path, type_name = draw(_operation_and_path(now))
    params = base_params(operation, now)
    *parent_path, name = path
    if isinstance(name, int):  # a list item: repeat a member of the top-level object instead
        parent_path, name = [], path[0]
    parent = params
    for step in parent_path:
        parent = parent[step]
    second = draw(st.one_of(_WRONG_FOR[type_name], _JSON_SCALARS))
    items = list(parent.items())
    items.insert(draw(st.integers(0, len(items))), (str(name), second))
    return _post(
        "duplicate_keys",
        operation,
        render(_replace(params, tuple(parent_path), Pairs(tuple(items)))),
    )


_TOKEN = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", max_size=40
)


@st.composite
def _target_probe(draw: st.DrawFn, now: int) -> Probe:
    operation = draw(st.sampled_from(OPERATIONS))
    body = render(base_params(operation, now))
    prefix = target_prefix().encode()
    target = draw(
        st.one_of(
            st.none(),
            st.just(b""),
            _TOKEN.map(str.encode),
            _TOKEN.map(lambda name: prefix + b"." + name.encode()),
            st.just(_target(operation).lower()),
            st.just(_target(operation).upper()),
            st.just(_target(operation) + b" "),
            st.just(b"AWSMPMeteringService." + operation.encode() + b".Extra"),
            st.just(b"OtherService." + operation.encode()),
            st.just(prefix),
            st.just(prefix + b"."),
        )
    )
    if draw(st.booleans()) or target is None:
        # HTTP trims a header value's surrounding spaces: a padded real target is that target
        valid = target is not None and target.strip() == _target(operation)
        return Probe("target", (request_bytes(body, target),), operation if valid else None)
    # two X-Amz-Target headers: the real one first (the first one counts)
    extra = b"X-Amz-Target: " + target + b"\r\n"
    wire = request_bytes(body, _target(operation), extra_headers=extra)
    return Probe("target", (wire,), operation)


@st.composite
def _oversize(draw: st.DrawFn, now: int) -> Probe:
    operation = draw(st.sampled_from(OPERATIONS))
    size = draw(st.sampled_from([MIB, MIB + 1, 2 * MIB]))
    body = b"{" + b" " * (size - 2) + b"}"
    mode = draw(st.sampled_from(["honest", "chunked", "declared"]))
    target = _target(operation)
    if mode == "honest":
        wire = request_bytes(body, target)
    elif mode == "declared":  # declares the size, sends a small body, waits for the answer
        wire = request_bytes(b"{}", target, length=size)[:-2]
    else:
        head = request_bytes(b"", target, extra_headers=b"Transfer-Encoding: chunked\r\n")
        head = head.replace(b"Content-Length: 0\r\n", b"")
        chunk = 64 * 1024
        parts = [b"%x\r\n" % chunk + body[i : i + chunk] + b"\r\n" for i in range(0, size, chunk)]
        wire = head + b"".join(parts) + b"0\r\n\r\n"
    pieces = tuple(wire[i : i + 256 * 1024] for i in range(0, len(wire), 256 * 1024))
    return Probe("oversize", pieces, operation, expect_status=413)


@st.composite
def _lying_length(draw: st.DrawFn, now: int) -> Probe:
    operation = draw(st.sampled_from(OPERATIONS))
    body = render(base_params(operation, now))
    target = _target(operation)
    mode = draw(st.sampled_from(["longer", "shorter", "pipelined"]))
    if mode == "longer":  # claims more than it sends, then half-closes
        wire = request_bytes(body, target, length=len(body) + draw(st.integers(1, 10_000)))
        return Probe("lying_length", (wire,), operation, half_close=True, reply_optional=True)
    if mode == "shorter":
        cut = draw(st.integers(0, len(body) - 1))
        return Probe("lying_length", (request_bytes(body, target, length=cut),), operation)
    garbage = draw(st.sampled_from([b"{", b"[", b'"', b"\x00", b"\xff"])) + draw(
        st.binary(max_size=60)
    )
    wire = request_bytes(body, target, close=False) + garbage
    return Probe("lying_length", (wire,), operation)


_METHODS = st.sampled_from(
    [
        b"GET",
        b"PUT",
        b"DELETE",
        b"PATCH",
        b"OPTIONS",
        b"TRACE",
        b"CONNECT",
        b"HEAD",
        b"PROPFIND",
        b"BREW",
        b"post",
        b"POST ",
        b"P\x00ST",
        b"\xffPOST",
    ]
)


@st.composite
def _unknown_method(draw: st.DrawFn, now: int) -> Probe:
    operation = draw(st.sampled_from(OPERATIONS))
    method = draw(_METHODS | _TOKEN.filter(bool).map(str.encode))
    path = draw(st.sampled_from([b"/", b"/x", b"*", b"//", b"/?a=b"]))
    wire = request_bytes(
        render(base_params(operation, now)), _target(operation), method=method, path=path
    )
    return Probe("unknown_method", (wire,), operation, head_request=method == b"HEAD")


@st.composite
def _huge_headers(draw: st.DrawFn, now: int) -> Probe:
    """Heads over ``serve``'s default limits (16 KiB, 100 fields) are refused with 431 before
    the service sees them; a long target under the size limit is an unknown operation."""
    operation = draw(st.sampled_from(OPERATIONS))
    body = render(base_params(operation, now))
    shape = draw(st.sampled_from(["one", "many", "target"]))
    size = draw(st.integers(8 * 1024, 512 * 1024))
    if shape == "one":
        extra = b"X-Fuzz: " + b"a" * size + b"\r\n"
        return Probe(
            "huge_headers",
            (request_bytes(body, _target(operation), extra_headers=extra),),
            operation,
            expect_status=_head_status(size, small=None),
        )
    if shape == "many":
        extra = b"".join(b"X-Fuzz-%d: v\r\n" % i for i in range(size // 64))  # > 100 fields
        return Probe(
            "huge_headers",
            (request_bytes(body, _target(operation), extra_headers=extra),),
            operation,
            expect_status=431,
        )
    target = _target(operation) + b"x" * size
    return Probe(
        "huge_headers",
        (request_bytes(body, target),),
        None,
        expect_status=_head_status(size, small=400),
    )


def _head_status(size: int, small: int | None) -> int | None:
    """431 past the limit, ``small`` well under it; either near it (the other headers count)."""
    if size > MAX_HEADER_BYTES:
        return 431
    return small if size < MAX_HEADER_BYTES - 1024 else None


# --- the admin API: query parameters and catalog documents --------------------------------------

# Every admin route that parses query parameters, and the parameters it knows
# (GET /_marketmeter/openapi.json lists the same).
ADMIN_QUERY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "/_marketmeter/usage": ("product", "customer", "dimension", "from", "to", "limit"),
    "/_marketmeter/tokens": ("product", "buyer", "limit"),
    "/_marketmeter/agreements": ("product", "buyer", "state", "limit"),
    "/_marketmeter/events": ("product", "buyer", "action", "since", "until", "after", "limit"),
    "/_marketmeter/journal": JOURNAL_FILTERS,
}
_ADMIN_VALUE_LITERALS = st.sampled_from(
    [
        b"9" * 5000,
        b"0" * 5000 + b"1",
        b"-" + b"9" * 5000,
        b"1e300",
        b"-1e300",
        b"1e308",
        b"1e-320",
        b"1e12",
        b"-62135596801",
        b"253402300800",
        b"0001-01-01T00:00:00%2B14:00",
        b"9999-12-31T23:59:59-14:00",
        b"0000-01-01",
        b"2026-02-30",
        b"%EF%BC%91",  # a fullwidth digit one
        b"%D9%A3",  # an Arabic-Indic digit three
        b"%00",
        b"%FF%FE",
        b"%",
        b"+1",
        b"",
        b"0",
        b"1_000",
        b"0x10",
        b"%5Cu0031",  # a backslash escape, URL-encoded
    ]
)
_ADMIN_VALUES = st.one_of(
    _ADMIN_VALUE_LITERALS,
    _NUMBER_LITERALS,
    _NON_FINITE,
    _NUMBERS,
    st.text(max_size=40).map(lambda text: quote(text, safe="").encode()),
    st.binary(max_size=20).map(lambda raw: quote(raw, safe="").encode()),
)


def _admin_get(category: str, path_and_query: bytes) -> Probe:
    wire = b"GET " + path_and_query + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return Probe(category, (wire,))


@st.composite
def _admin_params(draw: st.DrawFn, now: int) -> Probe:
    """One admin route's query: its own parameters (or an unknown one) with values that are
    numbers far out of range, times past year 9999, odd digits and bytes."""
    route = draw(st.sampled_from(sorted(ADMIN_QUERY_PARAMETERS)))
    known = ADMIN_QUERY_PARAMETERS[route]
    names = draw(st.lists(st.sampled_from([*known, "zzz", "limit%00"]), min_size=1, max_size=3))
    pairs = [name.encode() + b"=" + draw(_ADMIN_VALUES) for name in names]
    return _admin_get("admin_params", route.encode() + b"?" + b"&".join(pairs))


_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_SCALAR_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=30
)
_NAMES = st.one_of(
    _SCALAR_TEXT,
    st.sampled_from(["a\x00b", "\x00", "x" * 5000, "x" * 300_000, "é" * 2000]),
)
_HOSTILE_DOCUMENTS = st.sampled_from(
    [
        "sellers: " + "[" * 500 + "]" * 500,
        "sellers: " + "{a: " * 200 + "1" + "}" * 200,
        "sellers:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)),
        'sellers:\n  - {account_id: "123412341234", name: "a\\0b"}\n',
        'sellers:\n  - {account_id: "123412341234", name: "\\x00"}\n',
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, n in zip("abcde", "bcdef", strict=True)
        )
        + "sellers: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
        "sellers: !!python/object/apply:os.system [echo]\n",
        "sellers: !!binary aGVsbG8=\n",
        "sellers:\n  - account_id: 123412341234\n    name: !!float 1e400\n",
        "sellers:\n  - {account_id: '123412341234', name: x}\n" * 2,
        "products:\n  - {product_code: p, seller: '111122223333', kind: saas, dimensions: ["
        + ", ".join(f"d{i}" for i in range(5_000))
        + "]}\n",
        "agreements:\n" + "  - {buyer: '444455556666', product: prod-ami}\n" * 25_000,
        "%YAML 1.1\n---\nsellers: []\n---\nbuyers: []\n",
        "? [a, b]\n: c\n",
        "sellers: [" + "1, " * 10_000 + "1]",
        "\ufeffsellers: []",
        "sellers: 2026-01-01\nbuyers: 1e400\n",
    ]
)


@st.composite
def _structured_document(draw: st.DrawFn) -> str:
    """A document of catalog sections whose entries carry odd values in their fields."""
    values = st.one_of(
        _NAMES,
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(),
        st.booleans(),
        st.none(),
        st.lists(_SCALAR_TEXT, max_size=5),
    )
    seller = st.fixed_dictionaries(
        {"account_id": st.sampled_from(["123412341234", "111122223333", "444455556666"])},
        optional={
            "name": values,
            "access_keys": st.lists(
                st.fixed_dictionaries(
                    {
                        "access_key_id": st.sampled_from(
                            ["AKIAFUZZ000000000001", "AKIATESTALICE0000001", "short"]
                        ),
                        "secret_access_key": values,
                    }
                ),
                max_size=2,
            ),
        },
    )
    product = st.fixed_dictionaries(
        {
            "product_code": st.one_of(st.sampled_from(["fuzz-p", "prod-ami"]), _NAMES),
            "seller": st.sampled_from(["123412341234", "111122223333", "999999999999"]),
            "kind": st.sampled_from(["saas", "ami", "container", "x"]),
            "dimensions": st.lists(st.one_of(_SCALAR_TEXT, st.just("users")), max_size=4),
        },
        optional={"registration_url": values, "notification_urls": st.lists(values, max_size=2)},
    )
    buyer = st.fixed_dictionaries(
        {"account_id": st.sampled_from(["123412341235", "444455556666", "111122223333"])},
        optional={"customer_identifier": values, "name": values},
    )
    agreement = st.fixed_dictionaries(
        {
            "buyer": st.sampled_from(["123412341235", "444455556666", "000000000000"]),
            "product": st.sampled_from(["fuzz-p", "prod-ami", "nope"]),
        },
        optional={"state": values, "start": values, "end": values, "license_arn": values},
    )
    document = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "sellers": st.lists(seller, max_size=2),
                "products": st.lists(product, max_size=2),
                "buyers": st.lists(buyer, max_size=2),
                "agreements": st.lists(agreement, max_size=2),
                "extra": values,
            },
        )
    )
    return json.dumps(document, allow_nan=True)


@st.composite
def _catalog_document(draw: st.DrawFn, now: int) -> Probe:
    """``POST /_marketmeter/catalog`` with a document: hostile shapes (deep nesting, NUL,
    huge names and lists, alias bombs, unsafe tags), odd values in catalog entries, or text."""
    document = draw(
        st.one_of(
            _HOSTILE_DOCUMENTS,
            _structured_document(),
            _SCALAR_TEXT,
            st.text(alphabet="[]{}:-,&*!|>'\" \n\tab0", max_size=80),
        )
    )
    body = json.dumps({"document": document, "source": "fuzz"}).encode()
    head = (
        b"POST /_marketmeter/catalog HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return Probe("catalog_document", (head + body,))


def probes(now: int) -> st.SearchStrategy[Probe]:
    """Probes of every category but ``slow_body``, about evenly."""
    return st.one_of(
        _bad_json(now),
        _wrong_type(now),
        _numbers(now),
        _nan_infinity(now),
        _deep_nesting(now),
        _bad_utf8(now),
        _duplicate_keys(now),
        _target_probe(now),
        _oversize(now),
        _lying_length(now),
        _unknown_method(now),
        _huge_headers(now),
        _admin_params(now),
        _catalog_document(now),
    )


def slow_probe(index: int, now: int) -> Probe:
    """Operation ``index`` (of the four, in turn), its base request sent 3 bytes per 100 ms once
    the head is out."""
    operation = OPERATIONS[index % len(OPERATIONS)]
    body = render(base_params(operation, now))
    wire = request_bytes(body, _target(operation))
    head_end = len(wire) - len(body)
    step = 3
    pieces = (wire[:head_end], *(body[i : i + step] for i in range(0, len(body), step)))
    return Probe("slow_body", pieces, operation, pause=0.1)
