"""The test bench through the admin API: fault rules, the latency effect, quotas, the journal,
reset and snapshots, under ``/_marketmeter/``; the fault and effect routes also under
``/_localstack/chaos/``, so tooling written for LocalStack's chaos API works unchanged.

- ``GET|POST|PATCH|DELETE /faults`` (LocalStack's verbs: read, replace, add, remove;
  ``DELETE`` without a body removes every rule), ``DELETE /faults/{id}``;
  ``GET|POST|PUT /faults/effects`` (``{"latency": ms}`` on every call); ``GET|PUT /faults/quota``;
- ``GET|DELETE /journal`` (read with filters; empty);
- ``POST /reset``; ``GET|POST /snapshots``, ``GET|DELETE /snapshots/{name}``,
  ``POST /snapshots/{name}/restore``.

What each answers or refuses is ``operator.bench``'s; the models below describe it for the
OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from marketmeter.admin.routing import Endpoint, Handler, answer, body, no_content, query
from marketmeter.operator.bench import BenchOperations

__all__ = ["BENCH_SCHEMA_MODELS", "bench_endpoints", "chaos_endpoints"]


class FaultErrorSpec(BaseModel):
    """The error a rule answers: an error name of the service, its status, its message."""

    code: str | None = None
    statusCode: int | None = None
    message: str | None = None


class UnprocessedSpec(BaseModel):
    """Records a rule holds back as UnprocessedRecords: a count, or positions."""

    count: int | None = None
    indices: list[int] | None = None


class FaultRule(BaseModel):
    """A fault rule (LocalStack's chaos shape). What it matches (operation, product, access
    key, region), what it does (an error, UnprocessedRecords, an empty GetEntitlements page,
    latency), and when (probability
    with a seed, the next ``times`` calls, every Nth); answers add ``id``, ``remaining``,
    ``matched`` and ``applied``."""

    model_config = ConfigDict(extra="allow")

    operation: str | None = None
    productCode: str | None = None
    accessKeyId: str | None = None
    region: str | None = None
    error: FaultErrorSpec | None = None
    unprocessedRecords: UnprocessedSpec | None = None
    latencyMs: float | None = None
    emptyPage: bool | None = None
    probability: float | None = None
    seed: int | None = None
    times: int | None = None
    everyNth: int | None = None


class Effects(BaseModel):
    """Milliseconds added to every call."""

    latency: float = Field(ge=0, le=60_000)


class EffectsChange(BaseModel):
    """Milliseconds to add to every call (left out: 0, which removes the effect)."""

    model_config = ConfigDict(extra="forbid")

    latency: float = Field(default=0, ge=0, le=60_000)


class QuotaState(BaseModel):
    """The quota profile in force and its calls-per-second rates by operation."""

    profile: Literal["off", "aws", "custom"]
    rates: dict[str, float]


class QuotaChange(BaseModel):
    """Throttle per account: ``aws`` (AWS's published rates), ``custom`` rates, or ``off``."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["off", "aws", "custom"] = "aws"
    rates: dict[str, float] | None = None


class JournalStats(BaseModel):
    entries: int
    bytes: int
    maxEntries: int
    maxBytes: int
    dropped: int
    lastId: int


class JournalEntryView(BaseModel):
    """One call as the endpoint answered it (bodies as JSON when they are JSON)."""

    id: int
    time: str
    epoch: float
    wallTime: str
    requestId: str
    operation: str | None
    target: str | None
    accessKeyId: str | None
    productCode: str | None
    status: int
    errorType: str | None
    verdicts: list[str]
    fault: str | None
    durationMs: float
    request: Any
    response: Any


class JournalPage(BaseModel):
    entries: list[JournalEntryView]
    stats: JournalStats


class JournalCleared(BaseModel):
    stats: JournalStats


class ResetRequest(BaseModel):
    """What to reset: ``dropCatalog`` drops the catalog too; ``keep`` leaves the clock, the
    fault rules or the journal as they are."""

    model_config = ConfigDict(extra="forbid")

    dropCatalog: bool = False
    keep: list[Literal["clock", "faults", "journal"]] = []


class ResetResult(BaseModel):
    deleted: dict[str, int]
    catalogDropped: bool
    kept: list[str]
    clock: dict[str, Any] | None


class SnapshotInfo(BaseModel):
    """A named snapshot of the whole state."""

    name: str
    createdAt: str
    counts: dict[str, int]
    sizeBytes: int


class SnapshotList(BaseModel):
    snapshots: list[SnapshotInfo]


class SnapshotSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")


BENCH_SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    Effects,
    EffectsChange,
    FaultErrorSpec,
    FaultRule,
    JournalCleared,
    JournalEntryView,
    JournalPage,
    JournalStats,
    QuotaChange,
    QuotaState,
    ResetRequest,
    ResetResult,
    SnapshotInfo,
    SnapshotList,
    SnapshotSave,
    UnprocessedSpec,
)

_RULES = (
    '{application/json: {schema: {type: array, items: {$ref: "#/components/schemas/FaultRule"}}}}'
)
_RULE_BODY = (
    '{application/json: {schema: {oneOf: [{$ref: "#/components/schemas/FaultRule"}, '
    '{type: array, items: {$ref: "#/components/schemas/FaultRule"}}]}}}'
)
# rules, or no body (or null): every rule
_NULL_RULE_BODY = (
    '{application/json: {schema: {oneOf: [{$ref: "#/components/schemas/FaultRule"}, '
    '{type: array, items: {$ref: "#/components/schemas/FaultRule"}}, {type: "null"}]}}}'
)


def _optional_body(match: re.Match[str]) -> str:
    """``@OPTIONAL(Model)``: a body that may be left out or sent as null (the defaults)."""
    schema = f'{{oneOf: [{{$ref: "#/components/schemas/{match[1]}"}}, {{type: "null"}}]}}'
    return f"{{required: false, content: {{application/json: {{schema: {schema}}}}}}}"


def _documented(name: str, doc: str) -> Callable[[Handler], Handler]:
    """Give the next handler ``name`` (its operation id) and ``doc`` (its OpenAPI YAML)."""

    def name_it(handler: Handler) -> Handler:
        handler.__name__ = name
        handler.__doc__ = (
            doc.replace("@RULES", _RULES)
            .replace("@NULL_RULE_BODY", _NULL_RULE_BODY)
            .replace("@RULE_BODY", _RULE_BODY)
        )
        handler.__doc__ = re.sub(r"@OPTIONAL\((\w+)\)", _optional_body, handler.__doc__)
        return handler

    return name_it


def _fault_endpoints(bench: BenchOperations, prefix: str) -> list[Endpoint]:
    """LocalStack's fault verbs and the latency effect; ``prefix`` names their operations
    apart (``""`` under ``/_marketmeter``, ``chaos_`` under ``/_localstack/chaos``)."""

    @_documented(
        f"{prefix}list_faults",
        """The fault rules.
---
summary: Every fault rule, with its id and counters
tags: [bench]
responses:
  "200": {description: The rules, content: @RULES}
""",
    )
    async def fault_list(request: Request) -> Response:
        return answer(bench.rules())

    @_documented(
        f"{prefix}replace_faults",
        """Replace the fault rules.
---
summary: Replace every fault rule (LocalStack's POST)
tags: [bench]
requestBody: {required: true, content: @RULE_BODY}
responses:
  "200": {description: The rules now, content: @RULES}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def fault_replace(request: Request) -> Response:
        return answer(bench.replace_rules(await body(request)))

    @_documented(
        f"{prefix}add_faults",
        """Add fault rules.
---
summary: Add rules after those in force (LocalStack's PATCH)
tags: [bench]
requestBody: {required: true, content: @RULE_BODY}
responses:
  "200": {description: The rules now, content: @RULES}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def fault_add(request: Request) -> Response:
        return answer(bench.add_rules(await body(request)))

    @_documented(
        f"{prefix}remove_faults",
        """Remove fault rules.
---
summary: Remove the rules sent (LocalStack's DELETE); without a body (or null), every rule
tags: [bench]
requestBody: {required: false, content: @NULL_RULE_BODY}
responses:
  "200": {description: The rules now, content: @RULES}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def fault_remove(request: Request) -> Response:
        return answer(bench.remove_rules(await body(request)))

    @_documented(
        f"{prefix}read_effects",
        """The latency effect.
---
summary: The milliseconds added to every call
tags: [bench]
responses:
  "200":
    description: The effect
    content: {application/json: {schema: {$ref: "#/components/schemas/Effects"}}}
""",
    )
    async def effects_read(request: Request) -> Response:
        return answer(bench.effects())

    @_documented(
        f"{prefix}set_effects",
        """Set the latency effect.
---
summary: Add milliseconds to every call (0, or no body, removes it)
tags: [bench]
requestBody: @OPTIONAL(EffectsChange)
responses:
  "200":
    description: The effect now
    content: {application/json: {schema: {$ref: "#/components/schemas/Effects"}}}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def effects_set(request: Request) -> Response:
        return answer(bench.set_effects(await body(request)))

    @_documented(f"{prefix}put_effects", effects_set.__doc__ or "")
    async def effects_put(request: Request) -> Response:
        return answer(bench.set_effects(await body(request)))

    return [
        Endpoint("/faults", "GET", fault_list),
        Endpoint("/faults", "POST", fault_replace),
        Endpoint("/faults", "PATCH", fault_add),
        Endpoint("/faults", "DELETE", fault_remove),
        Endpoint("/faults/effects" if not prefix else "/effects", "GET", effects_read),
        Endpoint("/faults/effects" if not prefix else "/effects", "POST", effects_set),
        Endpoint("/faults/effects" if not prefix else "/effects", "PUT", effects_put),
    ]


def chaos_endpoints(bench: BenchOperations) -> list[Endpoint]:
    """The fault and effect endpoints as LocalStack's chaos API serves them."""
    return _fault_endpoints(bench, "chaos_")


def bench_endpoints(bench: BenchOperations) -> list[Endpoint]:
    """The bench's endpoints under ``/_marketmeter``."""

    @_documented(
        "delete_fault",
        """Remove one fault rule.
---
summary: Remove the fault rule with this id
tags: [bench]
parameters:
  - {name: id, in: path, required: true, schema: {type: string}}
responses:
  "200": {description: The rules now, content: @RULES}
  "400": {$ref: "#/components/responses/BadInput"}
  "404": {$ref: "#/components/responses/NotFound"}
""",
    )
    async def fault_remove_one(request: Request) -> Response:
        return answer(bench.remove_rule(request.path_params["id"]))

    @_documented(
        "read_quota",
        """The quota profile.
---
summary: The quota profile in force
tags: [bench]
responses:
  "200":
    description: The profile
    content: {application/json: {schema: {$ref: "#/components/schemas/QuotaState"}}}
""",
    )
    async def quota_read(request: Request) -> Response:
        return answer(bench.quota())

    @_documented(
        "set_quota",
        """Set the quota profile.
---
summary: Throttle per account at AWS's rates (also without a body), custom rates, or not at all
tags: [bench]
requestBody: @OPTIONAL(QuotaChange)
responses:
  "200":
    description: The profile now
    content: {application/json: {schema: {$ref: "#/components/schemas/QuotaState"}}}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def quota_set(request: Request) -> Response:
        return answer(bench.set_quota(await body(request)))

    @_documented(
        "read_journal",
        """The request journal.
---
summary: Every call answered, newest last, with filters
tags: [bench]
parameters:
  - {name: operation, in: query, schema: {type: string}}
  - {name: product, in: query, schema: {type: string}}
  - {name: accessKeyId, in: query, schema: {type: string}}
  - {name: status, in: query, schema: {type: integer, minimum: 100, maximum: 599}}
  - {name: errorType, in: query, schema: {type: string}}
  - {name: since, in: query, schema: {type: string}, description: Service-clock time}
  - {name: until, in: query, schema: {type: string}, description: Service-clock time}
  - name: after
    in: query
    schema: {type: integer, minimum: 0, maximum: 4611686018427387904}
    description: An entry id
  - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000}}
responses:
  "200":
    description: The entries and the journal's counters
    content: {application/json: {schema: {$ref: "#/components/schemas/JournalPage"}}}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def journal_read(request: Request) -> Response:
        return answer(bench.journal(query(request)))

    @_documented(
        "clear_journal",
        """Empty the journal.
---
summary: Empty the request journal
tags: [bench]
responses:
  "200":
    description: The journal's counters
    content: {application/json: {schema: {$ref: "#/components/schemas/JournalCleared"}}}
""",
    )
    async def journal_clear(request: Request) -> Response:
        return answer(bench.clear_journal())

    @_documented(
        "reset",
        """Reset the server.
---
summary: Empty the ledger; put the clock, fault rules and journal back as the server started
tags: [bench]
requestBody: @OPTIONAL(ResetRequest)
responses:
  "200":
    description: What was deleted and kept
    content: {application/json: {schema: {$ref: "#/components/schemas/ResetResult"}}}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def reset(request: Request) -> Response:
        return answer(await bench.reset(await body(request)))

    @_documented(
        "list_snapshots",
        """The snapshots.
---
summary: Every named snapshot
tags: [bench]
responses:
  "200":
    description: The snapshots
    content: {application/json: {schema: {$ref: "#/components/schemas/SnapshotList"}}}
""",
    )
    async def snapshot_list(request: Request) -> Response:
        return answer(await bench.snapshots())

    @_documented(
        "save_snapshot",
        """Save a snapshot.
---
summary: Save the whole state under a name (replacing a snapshot of that name)
tags: [bench]
requestBody:
  required: true
  content: {application/json: {schema: {$ref: "#/components/schemas/SnapshotSave"}}}
responses:
  "201":
    description: The snapshot
    content: {application/json: {schema: {$ref: "#/components/schemas/SnapshotInfo"}}}
  "400": {$ref: "#/components/responses/BadInput"}
""",
    )
    async def snapshot_save(request: Request) -> Response:
        return answer(await bench.save_snapshot(await body(request)), 201)

    @_documented(
        "read_snapshot",
        """One snapshot.
---
summary: Show a snapshot
tags: [bench]
responses:
  "200":
    description: The snapshot
    content: {application/json: {schema: {$ref: "#/components/schemas/SnapshotInfo"}}}
  "400": {$ref: "#/components/responses/BadInput"}
  "404": {$ref: "#/components/responses/NotFound"}
""",
    )
    async def snapshot_read(request: Request) -> Response:
        return answer(await bench.snapshot(request.path_params["name"]))

    @_documented(
        "restore_snapshot",
        """Restore a snapshot.
---
summary: Replace the whole state with a snapshot's
tags: [bench]
responses:
  "200":
    description: The snapshot restored
    content: {application/json: {schema: {$ref: "#/components/schemas/SnapshotInfo"}}}
  "400": {$ref: "#/components/responses/BadInput"}
  "404": {$ref: "#/components/responses/NotFound"}
  "409": {$ref: "#/components/responses/Conflict"}
""",
    )
    async def snapshot_restore(request: Request) -> Response:
        return answer(await bench.restore_snapshot(request.path_params["name"]))

    @_documented(
        "delete_snapshot",
        """Delete a snapshot.
---
summary: Delete a snapshot
tags: [bench]
responses:
  "204": {description: Deleted}
  "400": {$ref: "#/components/responses/BadInput"}
  "404": {$ref: "#/components/responses/NotFound"}
""",
    )
    async def snapshot_delete(request: Request) -> Response:
        await bench.delete_snapshot(request.path_params["name"])
        return no_content()

    return [
        Endpoint("/journal", "GET", journal_read),
        Endpoint("/journal", "DELETE", journal_clear),
        Endpoint("/faults/quota", "GET", quota_read),
        Endpoint("/faults/quota", "PUT", quota_set),
        Endpoint("/reset", "POST", reset),
        Endpoint("/snapshots", "GET", snapshot_list),
        Endpoint("/snapshots", "POST", snapshot_save),
        Endpoint("/snapshots/{name}", "GET", snapshot_read),
        Endpoint("/snapshots/{name}", "DELETE", snapshot_delete),
        Endpoint("/snapshots/{name}/restore", "POST", snapshot_restore),
        *_fault_endpoints(bench, ""),
        Endpoint("/faults/{id}", "DELETE", fault_remove_one),
    ]
