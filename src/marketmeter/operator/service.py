"""``Operator``: the one service every operator front end calls (the admin API, the command
line, the pytest plugin through the admin API), built over one store and one clock.

Its parts, one per subject: ``catalog`` (sellers, products, buyers, keys, a whole document),
``lifecycle`` (agreements, transitions, the event log), ``tokens``, ``keys``, ``usage``
(billed records), ``summaries`` (billed usage summed per window and group), ``exports`` (usage
as CSV or JSON Lines), ``clock``, ``bench`` (fault rules, quotas, journal, reset, snapshots),
``deliveries`` (the notification outbox per target) and ``overview`` (the server at a glance,
for the dashboard). Each action answers a JSON-ready value or raises a ``Refusal``. A server
builds it on its ``ServiceClock`` and its
``BenchControls``; the command line, working straight on a database (``--db``), builds one on
the wall clock with a bench of its own (there is no server whose state it could change).

The state the bench controls (clock offset, fault rules, quotas, journal) lives in
``BenchControls`` and the ``ServiceClock``, objects the operator is handed rather than owns, so
a server of several worker processes can hand it shared ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from marketmeter import __version__
from marketmeter.config import DEFAULT_TOKEN_TTL
from marketmeter.lifecycle.sns_http import SnsSigner
from marketmeter.metering.clock import Clock
from marketmeter.metering.ids import IdGenerator, RandomIds
from marketmeter.metering.registration_tokens import RandomTokens, TokenGenerator
from marketmeter.metering.signing_keys import KeyPairFactory, KeyRing, new_rsa_key_pair
from marketmeter.operator.bench import BenchOperations
from marketmeter.operator.catalog import AccessKeyFactory, CatalogOperations, random_access_key
from marketmeter.operator.clock import ClockOperations
from marketmeter.operator.deliveries import DeliveryOperations
from marketmeter.operator.lifecycle import LifecycleService
from marketmeter.operator.overview import OverviewOperations
from marketmeter.operator.tokens import KeyOperations, TokenOperations
from marketmeter.operator.usage import UsageOperations
from marketmeter.operator.usage_export import UsageExports
from marketmeter.operator.usage_summary import UsageSummaries
from marketmeter.store.base import Store
from marketmeter.testbench.controls import BenchControls

__all__ = ["Operator"]


@dataclass(frozen=True)
class Operator:
    """Every operator action, by subject."""

    store: Store
    catalog: CatalogOperations
    lifecycle: LifecycleService
    tokens: TokenOperations
    keys: KeyOperations
    usage: UsageOperations
    summaries: UsageSummaries
    clock: ClockOperations
    bench: BenchOperations
    deliveries: DeliveryOperations
    exports: UsageExports
    overview: OverviewOperations

    @classmethod
    def build(
        cls,
        store: Store,
        clock: Clock,
        *,
        bench: BenchControls | None = None,
        key_ring: KeyRing | None = None,
        tokens: TokenGenerator | None = None,
        event_ids: IdGenerator | None = None,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
        unsubscribe_delay: timedelta = timedelta(hours=1),
        key_pairs: KeyPairFactory = new_rsa_key_pair,
        access_keys: AccessKeyFactory = random_access_key,
    ) -> Operator:
        token_generator = tokens or RandomTokens()
        catalog = CatalogOperations(store, clock, token_generator, access_keys)
        key_ring = key_ring or KeyRing(store, clock, key_pairs)
        summaries = UsageSummaries(store)
        clock_operations = ClockOperations(clock)
        bench_operations = BenchOperations(store, clock, bench or BenchControls())
        return cls(
            store=store,
            catalog=catalog,
            lifecycle=LifecycleService(
                store,
                clock,
                event_ids or RandomIds(),
                token_generator,
                unsubscribe_delay,
                token_ttl,
            ),
            tokens=TokenOperations(store, clock, token_generator, token_ttl),
            keys=KeyOperations(key_ring),
            usage=UsageOperations(store),
            summaries=summaries,
            clock=clock_operations,
            bench=bench_operations,
            deliveries=DeliveryOperations(store, catalog, SnsSigner(key_ring)),
            exports=UsageExports(store),
            overview=OverviewOperations(summaries, clock_operations, bench_operations),
        )

    async def health(self) -> dict[str, Any]:
        """Up, this marketmeter's version, and the catalog version served."""
        snapshot = await self.store.catalog_snapshot()
        return {"status": "ok", "version": __version__, "catalogVersion": snapshot.version}
