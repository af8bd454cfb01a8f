"""The operator as the command line reaches it: ``Service``, the same actions in two places.

``LocalService`` runs the ``Operator`` in this process over a database (``--db``), on the wall
clock; ``RemoteService`` asks a running server's admin API (``--endpoint``), which runs the
same ``Operator`` on the server's service clock. Both answer the operator's JSON values, so a
command prints the same whichever it was given. Server-only state (the clock, fault rules, the
journal) is reached through ``RemoteService.admin``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import quote

from marketmeter.testing.admin_client import MarketmeterAdmin

if TYPE_CHECKING:  # the operator is imported where it runs (``LocalService``), not for --help
    from marketmeter.operator.catalog import AccountKind
    from marketmeter.store.base import OperatorStore

__all__ = ["Exported", "LocalService", "RemoteService", "Service"]

Params = Mapping[str, str]


class _Counted:
    """A binary file that tells ``progress`` how many bytes each read took."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None]) -> None:
        self._stream = stream
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._progress(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(64 * 1024):
            yield data


class Service(Protocol):
    """Every ledger action a command can take, wherever it runs."""

    def describe(self) -> str: ...
    def catalog_apply(
        self, path: Path, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]: ...
    def catalog_show(self) -> dict[str, Any]: ...
    def accounts(self, kind: str) -> list[dict[str, Any]]: ...
    def account(self, kind: str, account: str) -> dict[str, Any]: ...
    def add_account(self, kind: str, entry: dict[str, Any]) -> dict[str, Any]: ...
    def remove_account(self, kind: str, account: str) -> None: ...
    def add_key(self, kind: str, account: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def remove_key(self, kind: str, account: str, key_id: str) -> None: ...
    def products(self) -> list[dict[str, Any]]: ...
    def product(self, code: str) -> dict[str, Any]: ...
    def add_product(self, entry: dict[str, Any]) -> dict[str, Any]: ...
    def replace_product(self, code: str, entry: dict[str, Any]) -> dict[str, Any]: ...
    def remove_product(self, code: str) -> None: ...
    def offers(self) -> list[dict[str, Any]]: ...
    def offer(self, offer_id: str) -> dict[str, Any]: ...
    def add_offer(self, entry: dict[str, Any]) -> dict[str, Any]: ...
    def replace_offer(self, offer_id: str, entry: dict[str, Any]) -> dict[str, Any]: ...
    def remove_offer(self, offer_id: str) -> None: ...
    def agreements(self, params: Params) -> dict[str, Any]: ...
    def agreement(self, reference: str) -> dict[str, Any]: ...
    def subscribe(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def subscribe_fail(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def transition(self, reference: str, verb: str, body: Any = None) -> dict[str, Any]: ...
    def events(self, params: Params) -> dict[str, Any]: ...
    def deliveries(self, params: Params) -> dict[str, Any]: ...
    def targets(self) -> dict[str, Any]: ...
    def redeliver(self, event: str, target: str) -> dict[str, Any]: ...
    def pause_target(self, product: str, target: str, paused: bool) -> dict[str, Any]: ...
    def tokens(self, params: Params) -> dict[str, Any]: ...
    def mint_token(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def keys(self) -> dict[str, Any]: ...
    def key_pem(self, version: str) -> str: ...
    def rotate_key(self) -> dict[str, Any]: ...
    def usage(self, params: Mapping[str, str | None]) -> dict[str, Any]: ...
    def export(self, params: Mapping[str, str]) -> AbstractContextManager[Exported]: ...
    def usage_summary(self, params: Mapping[str, str | None]) -> dict[str, Any]: ...
    def snapshots(self) -> list[dict[str, Any]]: ...
    def save_snapshot(self, name: str) -> dict[str, Any]: ...
    def restore_snapshot(self, name: str) -> dict[str, Any]: ...
    def delete_snapshot(self, name: str) -> None: ...
    def reset(self, drop_catalog: bool, keep: tuple[str, ...]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Exported:
    """An export as it streams: how many records (or totals) it holds, and its bytes with how
    many of them each chunk carries (for a progress bar)."""

    size: int
    chunks: Iterator[tuple[bytes, int]]


def _subscription(body: dict[str, Any]) -> tuple[str, str, bool, str | None]:
    """A subscription request's product, buyer, free trial and offer, as the command line
    sends them (the rules check the values and name what is wrong)."""
    return (
        str(body["productCode"]),
        str(body["buyerAccountId"]),
        bool(body.get("freeTrial", False)),
        body.get("offerId"),
    )


def _kind(name: str) -> AccountKind[Any]:
    from marketmeter.operator.catalog import BUYERS, SELLERS

    return SELLERS if name == "seller" else BUYERS


class LocalService:
    """The operator in this process, over ``store`` and the wall clock."""

    def __init__(self, store: OperatorStore, token_ttl: timedelta) -> None:
        import asyncio

        from marketmeter.metering.clock import SystemClock
        from marketmeter.operator.service import Operator

        self.store = store
        self.operator = Operator.build(store, SystemClock(), token_ttl=token_ttl)
        self._runner = asyncio.Runner()

    def _run(self, work: Any) -> Any:
        return self._runner.run(work)

    def describe(self) -> str:
        return self.store.describe()

    def close(self) -> None:
        self._runner.close()

    def catalog_apply(
        self, path: Path, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Stream the file into the ledger (``CatalogOperations.apply_stream``); ``progress``
        is told how many bytes each read took."""
        from marketmeter.operator.catalog import document_digest

        digest = document_digest([path])
        with path.open("rb") as stream:
            reader: Any = _Counted(stream, progress) if progress is not None else stream
            return dict(self._run(self.operator.catalog.apply_stream(reader, str(path), digest)))

    def catalog_show(self) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.show()))

    def accounts(self, kind: str) -> list[dict[str, Any]]:
        return list(self._run(self.operator.catalog.accounts(_kind(kind)))[f"{kind}s"])

    def account(self, kind: str, account: str) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.account(_kind(kind), account)))

    def add_account(self, kind: str, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.add_account(_kind(kind), entry)))

    def remove_account(self, kind: str, account: str) -> None:
        self._run(self.operator.catalog.remove_account(_kind(kind), account))

    def add_key(self, kind: str, account: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.add_key(_kind(kind), account, body)))

    def remove_key(self, kind: str, account: str, key_id: str) -> None:
        self._run(self.operator.catalog.remove_key(_kind(kind), account, key_id))

    def products(self) -> list[dict[str, Any]]:
        return list(self._run(self.operator.catalog.products())["products"])

    def product(self, code: str) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.product(code)))

    def add_product(self, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.add_product(entry)))

    def replace_product(self, code: str, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.replace_product(code, entry)))

    def remove_product(self, code: str) -> None:
        self._run(self.operator.catalog.remove_product(code))

    def offers(self) -> list[dict[str, Any]]:
        return list(self._run(self.operator.catalog.offers())["offers"])

    def offer(self, offer_id: str) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.offer(offer_id)))

    def add_offer(self, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.add_offer(entry)))

    def replace_offer(self, offer_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.catalog.replace_offer(offer_id, entry)))

    def remove_offer(self, offer_id: str) -> None:
        self._run(self.operator.catalog.remove_offer(offer_id))

    def agreements(self, params: Params) -> dict[str, Any]:
        return dict(self._run(self.operator.lifecycle.agreements(dict(params))))

    def agreement(self, reference: str) -> dict[str, Any]:
        return dict(self._run(self.operator.lifecycle.agreement(reference)))

    def subscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        from marketmeter.operator.lifecycle import configuration_of

        lifecycle = self.operator.lifecycle
        configuration = configuration_of(body.get("configuration"))
        done = self._run(lifecycle.subscribe(*_subscription(body), configuration))
        return dict(self._run(lifecycle.result(done)))

    def subscribe_fail(self, body: dict[str, Any]) -> dict[str, Any]:
        lifecycle = self.operator.lifecycle
        done = self._run(lifecycle.subscribe_fail(*_subscription(body)))
        return dict(self._run(lifecycle.result(done)))

    def transition(self, reference: str, verb: str, body: Any = None) -> dict[str, Any]:
        return dict(self._run(self.operator.lifecycle.transition(reference, verb, body or {})))

    def events(self, params: Params) -> dict[str, Any]:
        return dict(self._run(self.operator.lifecycle.event_log(dict(params))))

    def deliveries(self, params: Params) -> dict[str, Any]:
        return dict(self._run(self.operator.deliveries.deliveries(dict(params))))

    def targets(self) -> dict[str, Any]:
        return dict(self._run(self.operator.deliveries.targets()))

    def redeliver(self, event: str, target: str) -> dict[str, Any]:
        return dict(self._run(self.operator.deliveries.redeliver(event, target)))

    def pause_target(self, product: str, target: str, paused: bool) -> dict[str, Any]:
        deliveries = self.operator.deliveries
        change = deliveries.pause if paused else deliveries.resume
        return dict(self._run(change(product, target)))

    def tokens(self, params: Params) -> dict[str, Any]:
        return dict(self._run(self.operator.tokens.list(params)))

    def mint_token(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._run(self.operator.tokens.mint(body)))

    def keys(self) -> dict[str, Any]:
        return dict(self._run(self.operator.keys.list()))

    def key_pem(self, version: str) -> str:
        return str(self._run(self.operator.keys.public_pem(version)))

    def rotate_key(self) -> dict[str, Any]:
        return dict(self._run(self.operator.keys.rotate()))

    def usage(self, params: Mapping[str, str | None]) -> dict[str, Any]:
        return dict(self._run(self.operator.usage.records(params)))

    @contextmanager
    def export(self, params: Mapping[str, str]) -> Iterator[Exported]:
        export = self.operator.exports.open(params)
        size = int(self._run(export.size()))
        stream = export.chunks()
        try:
            yield Exported(size, self._chunks(stream))
        finally:
            self._run(stream.aclose())

    def _chunks(self, stream: AsyncIterator[Any]) -> Iterator[tuple[bytes, int]]:
        async def step() -> Any:
            return await anext(stream, None)

        while (chunk := self._run(step())) is not None:
            yield chunk.text.encode(), chunk.rows

    def usage_summary(self, params: Mapping[str, str | None]) -> dict[str, Any]:
        return dict(self._run(self.operator.summaries.summary(params)))

    def snapshots(self) -> list[dict[str, Any]]:
        return list(self._run(self.operator.bench.snapshots())["snapshots"])

    def save_snapshot(self, name: str) -> dict[str, Any]:
        return dict(self._run(self.operator.bench.save_snapshot({"name": name})))

    def restore_snapshot(self, name: str) -> dict[str, Any]:
        return dict(self._run(self.operator.bench.restore_snapshot(name)))

    def delete_snapshot(self, name: str) -> None:
        self._run(self.operator.bench.delete_snapshot(name))

    def reset(self, drop_catalog: bool, keep: tuple[str, ...]) -> dict[str, Any]:
        body = {"dropCatalog": drop_catalog, "keep": list(keep)}
        return dict(self._run(self.operator.bench.reset(body)))


EXPORT_ROWS_HEADER = "X-Marketmeter-Export-Rows"  # admin.api's


def _counted(chunks: Iterator[bytes], skip: int) -> Iterator[tuple[bytes, int]]:
    """Chunks of lines with how many lines ended in each, the first ``skip`` not counted."""
    for chunk in chunks:
        lines = chunk.count(b"\n")
        counted = max(0, lines - skip)
        skip -= lines - counted
        yield chunk, counted


class RemoteService:
    """The operator of the server at ``endpoint``, through its admin API."""

    def __init__(self, endpoint: str, admin_token: str | None) -> None:
        self.admin = MarketmeterAdmin(endpoint, admin_token=admin_token)
        self._call = self.admin.call

    def describe(self) -> str:
        return self.admin.endpoint

    def close(self) -> None:
        self.admin.close()

    def catalog_apply(
        self, path: Path, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        with path.open("rb") as stream:
            reader: Any = _Counted(stream, progress or (lambda _: None))
            return self.admin.apply_catalog(reader, str(path))

    def catalog_show(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"sellers": self.accounts("seller")}
        shown["products"] = self.products()
        shown["buyers"] = self.accounts("buyer")
        shown["agreements"] = self.agreements({})["agreements"]
        offers = self.offers()
        if offers:  # as the in-process answer: only where the catalog has them
            shown["offers"] = offers
        return shown

    def _accounts(self, kind: str, *parts: str) -> str:
        return "/".join([f"/{kind}s", *(quote(part, safe="") for part in parts)])

    def accounts(self, kind: str) -> list[dict[str, Any]]:
        return list(self._call("GET", self._accounts(kind))[f"{kind}s"])

    def account(self, kind: str, account: str) -> dict[str, Any]:
        return dict(self._call("GET", self._accounts(kind, account)))

    def add_account(self, kind: str, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", self._accounts(kind), entry))

    def remove_account(self, kind: str, account: str) -> None:
        self._call("DELETE", self._accounts(kind, account))

    def add_key(self, kind: str, account: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", self._accounts(kind, account, "keys"), body or None))

    def remove_key(self, kind: str, account: str, key_id: str) -> None:
        self._call("DELETE", self._accounts(kind, account, "keys", key_id))

    def products(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/products")["products"])

    def product(self, code: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/products/{quote(code, safe='')}"))

    def add_product(self, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/products", entry))

    def replace_product(self, code: str, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/products/{quote(code, safe='')}", entry))

    def remove_product(self, code: str) -> None:
        self._call("DELETE", f"/products/{quote(code, safe='')}")

    def offers(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/offers")["offers"])

    def offer(self, offer_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/offers/{quote(offer_id, safe='')}"))

    def add_offer(self, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/offers", entry))

    def replace_offer(self, offer_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/offers/{quote(offer_id, safe='')}", entry))

    def remove_offer(self, offer_id: str) -> None:
        self._call("DELETE", f"/offers/{quote(offer_id, safe='')}")

    def agreements(self, params: Params) -> dict[str, Any]:
        return dict(self._call("GET", "/agreements", params=params))

    def agreement(self, reference: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/agreements/{reference}"))

    def subscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/agreements", body))

    def subscribe_fail(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/subscribe-fail", body))

    def transition(self, reference: str, verb: str, body: Any = None) -> dict[str, Any]:
        return dict(self._call("POST", f"/agreements/{reference}/{verb}", body))

    def events(self, params: Params) -> dict[str, Any]:
        return dict(self._call("GET", "/events", params=params))

    def deliveries(self, params: Params) -> dict[str, Any]:
        return dict(self._call("GET", "/deliveries", params=params))

    def targets(self) -> dict[str, Any]:
        return dict(self._call("GET", "/targets"))

    def redeliver(self, event: str, target: str) -> dict[str, Any]:
        body = {"event": event, "target": target}
        return dict(self._call("POST", "/deliveries/redeliver", body))

    def pause_target(self, product: str, target: str, paused: bool) -> dict[str, Any]:
        verb = "pause" if paused else "resume"
        path = f"/products/{quote(product, safe='')}/targets/{quote(target, safe='')}/{verb}"
        return dict(self._call("POST", path))

    def tokens(self, params: Params) -> dict[str, Any]:
        return dict(self._call("GET", "/tokens", params=params))

    def mint_token(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/tokens", body))

    def keys(self) -> dict[str, Any]:
        return dict(self._call("GET", "/keys"))

    def key_pem(self, version: str) -> str:
        return str(self._call("GET", f"/keys/{quote(version, safe='')}"))

    def rotate_key(self) -> dict[str, Any]:
        return dict(self._call("POST", "/keys/rotate"))

    def usage(self, params: Mapping[str, str | None]) -> dict[str, Any]:
        return dict(self._call("GET", "/usage", params=params))

    @contextmanager
    def export(self, params: Mapping[str, str]) -> Iterator[Exported]:
        filters = dict(params)
        fmt = filters.pop("format", "csv")
        with self.admin.export(fmt, **filters) as response:
            size = int(response.headers.get(EXPORT_ROWS_HEADER, "0"))
            yield Exported(size, _counted(response.iter_bytes(), skip=1 if fmt == "csv" else 0))

    def usage_summary(self, params: Mapping[str, str | None]) -> dict[str, Any]:
        return dict(self._call("GET", "/usage/summary", params=params))

    def snapshots(self) -> list[dict[str, Any]]:
        return self.admin.snapshots()

    def save_snapshot(self, name: str) -> dict[str, Any]:
        return self.admin.save_snapshot(name)

    def restore_snapshot(self, name: str) -> dict[str, Any]:
        return self.admin.restore_snapshot(name)

    def delete_snapshot(self, name: str) -> None:
        self.admin.delete_snapshot(name)

    def reset(self, drop_catalog: bool, keep: tuple[str, ...]) -> dict[str, Any]:
        return self.admin.reset(drop_catalog, keep)
