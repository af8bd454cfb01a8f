"""The store contract written once over SQL, for both backends.

``SqlStore`` implements every typed method of ``store.base.OperatorStore`` whose SQL both
backends share (the ``*_sql`` modules, against ``SqlConnection``) over four primitives each
backend provides:

- ``_read(work)`` / ``_read_now(work)``: run ``work`` on a connection (reads; point reads on
  SQLite run on the event loop, on its reader connection, in microseconds);
- ``_write(work)`` / ``_write_now(work)``: run ``work`` in one committed transaction (SQLite: a
  job of the writer thread; PostgreSQL: a pooled connection, retried on deadlock);
- ``_scan(work)``: a read that may take long (lists), kept off the event loop; ``_read`` unless
  a backend says otherwise.

The primitives take callables over a raw connection and stay inside ``store/`` (``store.copy``
and the store's own tests use them). What differs between the backends stays in theirs: billing
a batch, the cached catalog, the usage view, migrations, ``describe`` and ``close``.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TypeVar

from marketmeter.catalog.checks import KnownKeys
from marketmeter.catalog.model import Catalog, CatalogSnapshot
from marketmeter.lifecycle.types import Transition
from marketmeter.metering.types import (
    ContainerRegistration,
    LedgerEntry,
    LedgerOutcome,
    RegistrationToken,
    RequestClaim,
    RequestClaimOutcome,
    SigningKey,
)
from marketmeter.store import events_sql, registration_sql, snapshots_sql, usage_sql
from marketmeter.store.base import (
    BilledRecord,
    CatalogConflictError,
    CatalogEdit,
    DeliveryQuery,
    DueDelivery,
    EventQuery,
    LoggedEvent,
    Outcome,
    SnapshotInfo,
    TargetCounts,
    TargetDelivery,
    TokenQuery,
    UsageQuery,
    UsageSummaryQuery,
    UsageTotal,
    WriteObserver,
)
from marketmeter.store.catalog_edits_sql import edit_catalog
from marketmeter.store.catalog_sql import (
    apply_catalog,
    apply_catalog_chunks,
    catalog_digest,
    catalog_keys,
)
from marketmeter.store.claims_sql import CLAIMED, bill_claim
from marketmeter.store.ledger_rows import BILLED, ledger_row
from marketmeter.store.migrations import current_version
from marketmeter.store.prefetch import prefetched
from marketmeter.store.sql_connection import SqlConnection

__all__ = ["SqlStore"]

T = TypeVar("T")


def _once(
    chunks: Iterable[tuple[Catalog, Sequence[RegistrationToken]]],
    digest: str | None,
    prefetch: bool = False,
) -> Callable[[SqlConnection], int]:
    """The write of a streamed catalog, which cannot be retried (its chunks are read once):
    a transaction PostgreSQL aborted is a conflict to apply again, never a silent half."""
    tried = False

    def work(sql: SqlConnection) -> int:
        nonlocal tried
        if tried:
            raise CatalogConflictError(
                "catalog", "the catalog changed while this one was applied; apply it again"
            )
        tried = True
        return apply_catalog_chunks(sql, prefetched(chunks) if prefetch else chunks, digest)

    return work


class SqlStore(ABC):
    """The typed methods shared by ``SQLiteStore`` and ``PostgresStore``."""

    # a streamed catalog's next chunk read while one is written (``store.prefetch``)
    prefetch_catalog_chunks = False

    # --- primitives (each backend's own) ---------------------------------------------------

    @abstractmethod
    async def _read(self, work: Callable[[SqlConnection], T]) -> T:
        """Run ``work`` (reads only) on a connection of this database."""

    @abstractmethod
    async def _write(self, work: Callable[[SqlConnection], T]) -> T:
        """Run ``work`` in one committed transaction; what it raises rolls it back and is
        raised here. Nothing returns before the commit."""

    @abstractmethod
    def _read_now(self, work: Callable[[SqlConnection], T]) -> T:
        """Blocking form of ``_read``."""

    @abstractmethod
    def _write_now(self, work: Callable[[SqlConnection], T]) -> T:
        """Blocking form of ``_write``."""

    async def _scan(self, work: Callable[[SqlConnection], T]) -> T:
        """A read that may take long, off the event loop."""
        return await self._read(work)

    # --- observation ---------------------------------------------------------------------

    _write_observer: WriteObserver | None = None

    def observe_writes(self, observer: WriteObserver) -> None:
        self._write_observer = observer

    # --- schema ----------------------------------------------------------------------------

    def schema_version(self) -> int:
        return self._read_now(current_version)

    # --- catalog ---------------------------------------------------------------------------

    async def apply_catalog(
        self, catalog: Catalog, tokens: Sequence[RegistrationToken] = ()
    ) -> int:
        return await self._write(lambda sql: apply_catalog(sql, catalog, tokens))

    def apply_catalog_now(self, catalog: Catalog, tokens: Sequence[RegistrationToken] = ()) -> int:
        """Blocking form of ``apply_catalog``, for the CLI."""
        return self._write_now(lambda sql: apply_catalog(sql, catalog, tokens))

    async def apply_catalog_chunks(
        self,
        chunks: Iterable[tuple[Catalog, Sequence[RegistrationToken]]],
        digest: str | None = None,
    ) -> int:
        return await self._write(_once(chunks, digest, self.prefetch_catalog_chunks))

    def apply_catalog_chunks_now(
        self,
        chunks: Iterable[tuple[Catalog, Sequence[RegistrationToken]]],
        digest: str | None = None,
    ) -> int:
        """Blocking form of ``apply_catalog_chunks``, for the CLI."""
        return self._write_now(_once(chunks, digest, self.prefetch_catalog_chunks))

    async def catalog_keys(self) -> KnownKeys:
        return await self._scan(catalog_keys)

    def catalog_keys_now(self) -> KnownKeys:
        return self._read_now(catalog_keys)

    def catalog_digest_now(self) -> str | None:
        return self._read_now(catalog_digest)

    async def edit_catalog(self, edit: CatalogEdit) -> int:
        return await self._write(lambda sql: edit_catalog(sql, edit))

    # --- ledger ----------------------------------------------------------------------------

    async def billed(self, entry: LedgerEntry) -> LedgerOutcome | None:
        key = (entry.hour, entry.scope, entry.customer_account, entry.dimension)
        row = await self._read(lambda sql: sql.execute(BILLED, key).fetchone())
        return LedgerOutcome(row[0], row[1], inserted=False) if row is not None else None

    async def bill_claim(self, claim: RequestClaim, entry: LedgerEntry) -> RequestClaimOutcome:
        row = ledger_row(entry)
        return await self._write(lambda sql: bill_claim(sql, claim, row))

    async def claim(self, customer_account: str, client_token: str) -> RequestClaimOutcome | None:
        found = await self._read(
            lambda sql: sql.execute(CLAIMED, (customer_account, client_token)).fetchone()
        )
        return RequestClaimOutcome(found[0], found[1], inserted=False) if found else None

    async def usage_page(self, query: UsageQuery, after: int, size: int) -> list[BilledRecord]:
        return await self._scan(lambda sql: usage_sql.usage_page(sql, query, after, size))

    async def usage_count(self, query: UsageQuery) -> int:
        return await self._scan(lambda sql: usage_sql.usage_count(sql, query))

    async def usage_summary(self, query: UsageSummaryQuery) -> list[UsageTotal]:
        return await self._scan(lambda sql: usage_sql.usage_summary(sql, query))

    # --- registration ----------------------------------------------------------------------

    async def issue_tokens(self, tokens: Sequence[RegistrationToken]) -> None:
        await self._write(lambda sql: registration_sql.insert_tokens(sql, tokens))

    async def registration_token(self, value: str) -> RegistrationToken | None:
        return await self._read(lambda sql: registration_sql.registration_token(sql, value))

    async def claim_first_resolution(self, value: str, at: float) -> bool:
        return await self._write(
            lambda sql: registration_sql.claim_first_resolution(sql, value, at)
        )

    async def registration_tokens(self, query: TokenQuery) -> list[RegistrationToken]:
        return await self._read(lambda sql: registration_sql.registration_tokens(sql, query))

    async def signing_keys(self) -> list[SigningKey]:
        return await self._read(registration_sql.signing_keys)

    async def add_signing_key(self, key: SigningKey, retire_previous_at: float | None) -> bool:
        return await self._write(
            lambda sql: registration_sql.add_signing_key(sql, key, retire_previous_at)
        )

    async def container_registration(
        self, product_code: str, buyer_account_id: str, task: str
    ) -> ContainerRegistration | None:
        return await self._read(
            lambda sql: registration_sql.container_registration(
                sql, product_code, buyer_account_id, task
            )
        )

    async def register_container(self, registration: ContainerRegistration) -> None:
        await self._write(lambda sql: registration_sql.register_container(sql, registration))

    # --- lifecycle: transitions and their event log ----------------------------------------

    async def commit_transition(
        self, plan: Callable[[CatalogSnapshot], Transition], wall_now: float
    ) -> Transition:
        return await self._write(lambda sql: events_sql.commit_transition(sql, plan, wall_now))

    def commit_transition_now(
        self, plan: Callable[[CatalogSnapshot], Transition], wall_now: float
    ) -> Transition:
        return self._write_now(lambda sql: events_sql.commit_transition(sql, plan, wall_now))

    async def events(self, query: EventQuery) -> list[LoggedEvent]:
        return await self._scan(lambda sql: events_sql.list_events(sql, query))

    async def deliveries_due(
        self, wall_now: float, paused: Collection[tuple[str, str]] = ()
    ) -> bool:
        return await self._scan(lambda sql: events_sql.deliveries_due(sql, wall_now, paused))

    async def claim_deliveries(
        self,
        wall_now: float,
        lease: float,
        limit: int,
        paused: Collection[tuple[str, str]] = (),
    ) -> list[DueDelivery]:
        return await self._write(
            lambda sql: events_sql.claim_deliveries(sql, wall_now, lease, limit, paused)
        )

    async def deliveries(self, query: DeliveryQuery) -> list[TargetDelivery]:
        return await self._scan(lambda sql: events_sql.list_deliveries(sql, query))

    async def redeliver(self, event: str, target: str, wall_now: float) -> TargetDelivery | None:
        return await self._write(lambda sql: events_sql.redeliver(sql, event, target, wall_now))

    async def delivery_counts(self) -> list[TargetCounts]:
        return await self._scan(events_sql.delivery_counts)

    async def sns_subscription(
        self, product_code: str, target: str, topic_arn: str
    ) -> tuple[str, bool]:
        token = secrets.token_hex(64)
        return await self._write(
            lambda sql: events_sql.sns_subscription(sql, product_code, target, topic_arn, token)
        )

    async def confirm_sns_subscription(self, topic_arn: str, token: str, wall_now: float) -> bool:
        return await self._write(
            lambda sql: events_sql.confirm_sns_subscription(sql, topic_arn, token, wall_now)
        )

    async def record_attempt(
        self,
        due: DueDelivery,
        attempted_at: float,
        status_code: int | None,
        error: str | None,
        outcome: Outcome,
        next_attempt_at: float | None = None,
    ) -> None:
        await self._write(
            lambda sql: events_sql.record_attempt(
                sql, due, attempted_at, status_code, error, outcome, next_attempt_at
            )
        )

    # --- test bench: reset and snapshots ---------------------------------------------------

    async def reset(self, drop_catalog: bool) -> dict[str, int]:
        return await self._write(lambda sql: snapshots_sql.reset(sql, drop_catalog))

    async def save_snapshot(self, name: str, created_at: float) -> SnapshotInfo:
        return await self._write(lambda sql: snapshots_sql.save_snapshot(sql, name, created_at))

    async def snapshots(self) -> list[SnapshotInfo]:
        return await self._read(snapshots_sql.snapshots)

    async def restore_snapshot(self, name: str) -> SnapshotInfo | None:
        # the catalog version moves, so the next catalog_snapshot() reloads the catalog
        return await self._write(lambda sql: snapshots_sql.restore_snapshot(sql, name))

    async def delete_snapshot(self, name: str) -> bool:
        return await self._write(lambda sql: snapshots_sql.delete_snapshot(sql, name))
