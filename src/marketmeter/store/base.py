"""The store contract: what the rules, the lifecycle and the operator side may ask of a backend.

The store module code outside ``store/`` imports (besides ``store.open``, which opens a store,
and ``store.copy``, which copies a ledger between two). Typed methods only: no method takes a
callable over a database connection, so no SQL leaves ``store/``. The records they take and
return live here too (``UsageQuery``, ``EventQuery``, ``LoggedEvent``, ``DueDelivery``, ...).
Two backends implement ``OperatorStore`` (``store.sqlite``, ``store.postgres``, both on
``store.sql_store.SqlStore``); the contract tests run against each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol

from marketmeter.catalog.model import Catalog, CatalogSnapshot
from marketmeter.lifecycle.types import LifecycleEvent, Transition
from marketmeter.metering.types import (
    ContainerRegistration,
    LedgerEntry,
    LedgerOutcome,
    RegistrationToken,
    RequestClaim,
    RequestClaimOutcome,
    SigningKey,
)
from marketmeter.store.ledger_rows import LedgerRow, each_request, ledger_row

if TYPE_CHECKING:  # the catalog checker imports botocore's models: not for every importer
    from marketmeter.catalog.checks import KnownKeys

__all__ = [
    "BilledRecord",
    "CatalogConflictError",
    "CatalogEdit",
    "CatalogReferenceError",
    "DeliveryAttempt",
    "DeliveryQuery",
    "DeliveryRecord",
    "DueDelivery",
    "EventQuery",
    "LedgerRow",
    "LoggedEvent",
    "OperatorStore",
    "Outcome",
    "SchemaError",
    "SnapshotError",
    "SnapshotInfo",
    "Store",
    "TargetCounts",
    "TargetDelivery",
    "TokenQuery",
    "UsageQuery",
    "UsageSummaryQuery",
    "UsageTotal",
    "Window",
    "WriteObserver",
    "each_request",
    "ledger_row",
]


class SchemaError(Exception):
    """The database's schema is newer than this marketmeter, or otherwise unusable."""


class SnapshotError(Exception):
    """A snapshot cannot be restored here (the message says why, e.g. the schema version it
    was taken under)."""


class CatalogReferenceError(Exception):
    """A catalog entry cannot be deleted while others refer to it (the message names them,
    e.g. ``seller 111122223333 has products: prod-a, prod-b``)."""


class CatalogConflictError(Exception):
    """A catalog write that the stored catalog, as it stands inside the writing transaction,
    does not allow: ``field`` names the entry's field at fault (``access_key_id``, ``seller``,
    ``customer_identifier``, ``account_id``, ...); ``missing`` says the entry the write needs
    does not exist (a 404 rather than a 409). Nothing of the write is applied."""

    def __init__(self, field: str, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.missing = missing


@dataclass(frozen=True, slots=True)
class CatalogEdit:
    """A change of the catalog entry by entry, applied in one transaction: the deletions
    first (an account's access keys go with it, a product's dimensions too), then
    ``upserts`` as ``apply_catalog`` writes them."""

    upserts: Catalog = field(default_factory=Catalog)
    delete_access_keys: tuple[str, ...] = ()  # access key ids
    delete_products: tuple[str, ...] = ()  # product codes
    delete_sellers: tuple[str, ...] = ()  # account ids
    delete_buyers: tuple[str, ...] = ()  # account ids
    delete_offers: tuple[str, ...] = ()  # offer ids
    # checked first, inside the transaction: entries that must exist (a replacement, a new
    # key) and entries that must not (a creation), as (table, key): ("sellers", account id),
    # ("buyers", account id), ("products", product code), ("offers", offer id)
    expect_existing: tuple[tuple[str, str], ...] = ()
    expect_new: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A named snapshot of the whole state, as listed (its data stays in the database)."""

    name: str
    created_at: float  # epoch seconds, given by the caller (the service clock)
    counts: dict[str, int]  # rows per table held in the snapshot
    size_bytes: int  # size of the stored (compressed) data


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Filters for the billed-usage view. Times are epoch seconds on the usage timestamp."""

    product_code: str | None = None
    customer: str | None = None  # an AWS account id or a legacy CustomerIdentifier
    dimension: str | None = None
    start: float | None = None  # inclusive
    end: float | None = None  # exclusive
    limit: int = 1000


# The windows usage is summed over (UTC): an hour, a day, a calendar month.
Window = Literal["hour", "day", "month"]


@dataclass(frozen=True, slots=True)
class UsageSummaryQuery:
    """Billed quantities summed per window and key. ``usage``'s filters select the records
    (its ``limit`` is not used); the key is always the product and the dimension (totals are
    per dimension, never summed across dimensions), and the customer too with
    ``by_customer``."""

    usage: UsageQuery = field(default_factory=UsageQuery)
    window: Window = "day"
    by_customer: bool = False


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """One row of a summary: what ``dimension`` of ``product_code`` billed in the window that
    starts at ``window_start`` (epoch seconds, UTC), for one customer (its AWS account id) or,
    with ``customer_aws_account_id`` None, for all of them."""

    window_start: float
    product_code: str
    dimension: str
    customer_aws_account_id: str | None
    quantity: Decimal
    records: int


@dataclass(frozen=True, slots=True)
class TokenQuery:
    """Filters for listing registration tokens, newest first."""

    product_code: str | None = None
    buyer_account_id: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class BilledRecord:
    """One row of the ledger, as the inspection views show it."""

    metering_record_id: str
    product_code: str
    customer_aws_account_id: str
    customer_identifier: str | None
    license_arn: str | None
    dimension: str
    quantity: Decimal
    usage_timestamp: float
    hour: int
    allocations: list[dict[str, object]] | None
    received_at: float
    operation: str = "BatchMeterUsage"
    instance: str | None = None
    # the ledger's insertion order, the key ``usage_page`` pages on (not part of equality)
    seq: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for the lifecycle event log, oldest first. ``since``/``until`` are service-clock
    epoch seconds on ``occurred_at`` (inclusive, exclusive); ``after`` a ``seq`` (exclusive)."""

    product_code: str | None = None
    buyer_account_id: str | None = None
    action: str | None = None
    since: float | None = None
    until: float | None = None
    after: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    attempt: int
    attempted_at: float  # wall clock
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event's delivery to one URL: ``pending`` (``next_attempt_at``), ``delivered`` or
    ``failed`` (attempts exhausted), with every attempt made."""

    url: str
    status: str
    attempts: int
    next_attempt_at: float | None
    delivered_at: float | None
    history: tuple[DeliveryAttempt, ...]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    event: LifecycleEvent
    deliveries: tuple[DeliveryRecord, ...]


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery this node has claimed: send ``event`` to the target ``url`` (a target's
    name or a webhook URL); this is attempt ``attempt`` (1 for the first), the attempt limit
    counting from ``retry_base`` (the attempts made before the last redelivery)."""

    event: LifecycleEvent
    url: str
    attempt: int
    retry_base: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Filters for deliveries (oldest event first): a product, a target (its name or webhook
    URL), a status (``pending``, ``delivered``, ``failed``), a buyer."""

    product_code: str | None = None
    target: str | None = None
    status: str | None = None
    buyer_account_id: str | None = None
    limit: int = 100
    event_seq: int | None = None  # one event's


@dataclass(frozen=True, slots=True)
class TargetDelivery:
    """One event's delivery to one target."""

    event: LifecycleEvent
    delivery: DeliveryRecord


@dataclass(frozen=True, slots=True)
class TargetCounts:
    """How many deliveries of one product's target are in each status (an operator's view,
    and what metrics read)."""

    product_code: str
    target: str
    pending: int
    delivered: int
    failed: int


# What one POST of a delivery came to: done, to be tried again, or given up.
Outcome = Literal["delivered", "retry", "failed"]


class WriteObserver(Protocol):
    """Hears of every committed write transaction (the metrics): how many writes were queued
    or in flight when it began, and how long it took to commit, in seconds."""

    def committed(self, queued: int, seconds: float) -> None: ...


class Store(Protocol):
    async def catalog_snapshot(self) -> CatalogSnapshot:
        """The current catalog; cheap (cached, refreshed only when the catalog changed)."""
        ...

    async def bill(self, entries: Sequence[LedgerEntry]) -> list[LedgerOutcome]:
        """Insert each entry unless its key is already billed; one durable transaction.

        Returns, in order, what the ledger holds for each entry's key afterwards. Nothing is
        returned before the transaction has committed.
        """
        ...

    async def bill_rows(self, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None:
        """``bill`` of rows already in the ledger's column order (``store.ledger_rows``), the
        request path's form: None when every row was new (each billed under its own id, the
        usual case), else what the ledger holds for each row's key, in order."""
        ...

    async def billed(self, entry: LedgerEntry) -> LedgerOutcome | None:
        """What the ledger holds for ``entry``'s key, if anything (a read; nothing written)."""
        ...

    async def bill_claim(self, claim: RequestClaim, entry: LedgerEntry) -> RequestClaimOutcome:
        """Claim ``claim.client_token`` for its account and, if the claim is new, bill
        ``entry``; one durable transaction. Returns what the token is bound to afterwards."""
        ...

    async def claim(self, customer_account: str, client_token: str) -> RequestClaimOutcome | None:
        """What a ClientToken is bound to, if it was used (a read)."""
        ...

    async def usage(self, query: UsageQuery) -> list[BilledRecord]:
        """Billed records matching ``query``, oldest usage first."""
        ...

    async def usage_page(self, query: UsageQuery, after: int, size: int) -> list[BilledRecord]:
        """Up to ``size`` billed records matching ``query`` (its ``limit`` is not used) whose
        ``seq`` is greater than ``after``, in the order they were billed: a keyset page, so
        that a whole ledger is read page by page in constant memory (an export)."""
        ...

    async def usage_count(self, query: UsageQuery) -> int:
        """How many billed records match ``query`` (its ``limit`` is not used)."""
        ...

    async def usage_summary(self, query: UsageSummaryQuery) -> list[UsageTotal]:
        """Billed quantities and record counts per window and key, in window order, then
        product, dimension and customer."""
        ...

    async def apply_catalog(
        self, catalog: Catalog, tokens: Sequence[RegistrationToken] = ()
    ) -> int:
        """Upsert a whole catalog, and issue ``tokens``, in one transaction; returns the new
        catalog version. ``CatalogConflictError`` (nothing applied) if the catalog, as it stands
        inside the transaction, does not allow it (a key owned by another account, a seller,
        buyer or product referred to that no longer exists, a CustomerIdentifier taken)."""
        ...

    async def apply_catalog_chunks(
        self,
        chunks: Iterable[tuple[Catalog, Sequence[RegistrationToken]]],
        digest: str | None = None,
    ) -> int:
        """``apply_catalog`` for a catalog in parts (a streamed document), all in one
        transaction: each part is checked and written in turn, and whatever iterating
        ``chunks`` raises rolls it all back (and is raised here). ``digest`` names the document
        (``catalog_digest_now``). Returns the new catalog version."""
        ...

    async def catalog_keys(self) -> KnownKeys:
        """The stored catalog's keys (what a catalog being checked may refer to)."""
        ...

    async def issue_tokens(self, tokens: Sequence[RegistrationToken]) -> None:
        """Store newly minted registration tokens durably."""
        ...

    async def registration_token(self, value: str) -> RegistrationToken | None:
        """The registration token ``value``, if it was ever issued."""
        ...

    async def claim_first_resolution(self, value: str, at: float) -> bool:
        """Note that the registration token ``value`` is resolved at ``at``: True if this is
        its first resolution."""
        ...

    async def registration_tokens(self, query: TokenQuery) -> list[RegistrationToken]:
        """Issued registration tokens matching ``query``, newest first."""
        ...

    async def signing_keys(self) -> list[SigningKey]:
        """Every RegisterUsage key pair, by version."""
        ...

    async def add_signing_key(self, key: SigningKey, retire_previous_at: float | None) -> bool:
        """Store ``key`` unless its version exists (then False). With ``retire_previous_at``,
        every older version not yet retired is retired at that time, in the same transaction."""
        ...

    async def container_registration(
        self, product_code: str, buyer_account_id: str, task: str
    ) -> ContainerRegistration | None:
        """The task's registration, if it registered before (a read)."""
        ...

    async def register_container(self, registration: ContainerRegistration) -> None:
        """Record a task's registration durably (a task already registered keeps its first)."""
        ...

    async def reset(self, drop_catalog: bool) -> dict[str, int]:
        """Empty the ledger: billed records, ClientToken claims, container registrations. With
        ``drop_catalog`` also registration tokens and the whole catalog (sellers, access keys,
        products, dimensions, buyers, agreements). Signing keys (RegisterUsage key pairs) and
        snapshots are always kept. One transaction. Returns rows deleted per table. Bumps
        ``catalog_state.version`` when the catalog is dropped."""
        ...

    async def save_snapshot(self, name: str, created_at: float) -> SnapshotInfo:
        """Save the whole state (catalog, tokens, signing keys, container registrations,
        claims, billed records) under ``name``, replacing a snapshot of that name. One
        transaction (consistent)."""
        ...

    async def snapshots(self) -> list[SnapshotInfo]:
        """Every saved snapshot, by name."""
        ...

    async def restore_snapshot(self, name: str) -> SnapshotInfo | None:
        """Replace the whole state with the snapshot's (None if no such snapshot), in one
        transaction. Raises ``SnapshotError`` if it was taken under another schema version.
        Afterwards the catalog version is strictly greater than before the restore (so every
        node's cached catalog reloads), and this store's cached catalog serves the restored
        catalog immediately."""
        ...

    async def delete_snapshot(self, name: str) -> bool:
        """Delete the snapshot ``name``; False if there was none."""
        ...

    async def edit_catalog(self, edit: CatalogEdit) -> int:
        """Apply ``edit`` in one transaction and return the new catalog version. Raises
        ``CatalogConflictError`` (nothing applied) if an expectation of ``edit`` or an
        invariant of the catalog does not hold inside the transaction, and
        ``CatalogReferenceError`` (nothing applied) if a product to delete has agreements or
        registration tokens, a seller has products, or a buyer has agreements or tokens.
        Deleting what does not exist is not an error. This store's cached catalog serves the
        edited catalog immediately."""
        ...

    async def commit_transition(
        self, plan: Callable[[CatalogSnapshot], Transition], wall_now: float
    ) -> Transition:
        """In one transaction that serializes catalog writers: plan a lifecycle transition on
        the catalog as it stands (``plan`` may raise, e.g. ``Refusal``, and then nothing is
        written), apply its catalog change and tokens, and log its events with one pending
        delivery (due at wall time ``wall_now``) per webhook URL of the product. Returns the
        transition with its events' ``seq`` set."""
        ...

    async def events(self, query: EventQuery) -> list[LoggedEvent]:
        """Logged lifecycle events matching ``query``, oldest first, each with its deliveries."""
        ...

    async def deliveries_due(
        self, wall_now: float, paused: Collection[tuple[str, str]] = ()
    ) -> bool:
        """Whether any delivery is due and unclaimed at ``wall_now`` (a read), but to the
        ``paused`` (product code, target) pairs."""
        ...

    async def claim_deliveries(
        self,
        wall_now: float,
        lease: float,
        limit: int,
        paused: Collection[tuple[str, str]] = (),
    ) -> list[DueDelivery]:
        """Lease up to ``limit`` due deliveries until ``wall_now + lease`` (one transaction; a
        delivery leased by another node is skipped; none to a ``paused`` (product code,
        target); none while an earlier delivery of the same customer to the same target is
        pending, so that each customer's messages reach a target in order); returns them, the
        oldest first."""
        ...

    async def deliveries(self, query: DeliveryQuery) -> list[TargetDelivery]:
        """Deliveries matching ``query``, oldest event first, with their attempts."""
        ...

    async def redeliver(self, event: str, target: str, wall_now: float) -> TargetDelivery | None:
        """Make the delivery of ``event`` (its id or seq) to ``target`` pending again, due at
        ``wall_now``, with a fresh attempt limit; ``None`` if there is no such delivery."""
        ...

    async def delivery_counts(self) -> list[TargetCounts]:
        """Deliveries per product and target and status (a read)."""
        ...

    async def sns_subscription(
        self, product_code: str, target: str, topic_arn: str
    ) -> tuple[str, bool]:
        """The SNS HTTP(S) subscription of a product's ``target`` to ``topic_arn`` (created,
        pending, if there is none): its token and whether its endpoint confirmed it."""
        ...

    async def confirm_sns_subscription(self, topic_arn: str, token: str, wall_now: float) -> bool:
        """Confirm the subscription with ``token`` to ``topic_arn``; ``False`` if none."""
        ...

    async def record_attempt(
        self,
        due: DueDelivery,
        attempted_at: float,
        status_code: int | None,
        error: str | None,
        outcome: Outcome,
        next_attempt_at: float | None = None,
    ) -> None:
        """Store one POST's result and release its lease: delivered, to be retried at
        ``next_attempt_at``, or failed for good. Nothing, if the event is no longer in the log
        (a reset or a restore during the POST)."""
        ...

    def observe_writes(self, observer: WriteObserver) -> None:
        """Tell ``observer`` of every write transaction this store commits from now on."""
        ...

    async def close(self) -> None:
        """Finish queued writes, then release the database."""
        ...


class OperatorStore(Store, Protocol):
    """What the server's start-up and the CLI need besides ``Store``: blocking forms, usable
    outside an event loop, and a one-line description for the banner."""

    def describe(self) -> str: ...

    def catalog_snapshot_now(self) -> CatalogSnapshot: ...

    def apply_catalog_now(
        self, catalog: Catalog, tokens: Sequence[RegistrationToken] = ()
    ) -> int: ...

    def apply_catalog_chunks_now(
        self,
        chunks: Iterable[tuple[Catalog, Sequence[RegistrationToken]]],
        digest: str | None = None,
    ) -> int: ...

    def catalog_keys_now(self) -> KnownKeys: ...

    def catalog_digest_now(self) -> str | None:
        """The digest given to the last apply, if the catalog has not changed since."""
        ...

    def usage_now(self, query: UsageQuery) -> list[BilledRecord]: ...

    def close_now(self) -> None: ...

    def schema_version(self) -> int:
        """The schema version this database is migrated to."""
        ...

    def commit_transition_now(
        self, plan: Callable[[CatalogSnapshot], Transition], wall_now: float
    ) -> Transition:
        """Blocking form of ``commit_transition``."""
        ...
