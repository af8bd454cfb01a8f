"""A Python client for marketmeter's admin API, for sellers' tests and the CLI.

``MarketmeterAdmin(endpoint)`` talks HTTP to a running server (``/_marketmeter/...``), so it
works the same against a server in the test's process, a subprocess, or one started by hand:

    admin = MarketmeterAdmin("http://127.0.0.1:8686")
    admin.clock.set("2026-11-30T23:00:00Z")
    admin.faults.add({"operation": "BatchMeterUsage", "times": 2,
                      "error": {"code": "ThrottlingException"}})
    admin.journal.entries(operation="BatchMeterUsage")
    admin.usage(product="prod-...")
    admin.reset()
    admin.products.add({"product_code": "prod-x", "seller": "111122223333",
                        "kind": "saas", "dimensions": ["users"]})
    admin.sellers.add_key("111122223333")   # {"access_key_id", "secret_access_key"}
    admin.agreements.subscribe("prod-...", "444455556666", quantities={"seats": 10})
    admin.agreements.events(action="entitlement-updated")

A server with an admin token wants it: ``MarketmeterAdmin(endpoint, admin_token=...)``, or
the environment's ``MARKETMETER_ADMIN_TOKEN``. Every admin error (a 4xx with
``{"error", "field"}``) is raised as ``AdminError``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

__all__ = [
    "ADMIN_TOKEN_ENV",
    "AccountsHandle",
    "AdminError",
    "AgreementsHandle",
    "CatalogHandle",
    "ClockHandle",
    "FaultsHandle",
    "JournalHandle",
    "MarketmeterAdmin",
]

ADMIN_TOKEN_ENV = "MARKETMETER_ADMIN_TOKEN"

Rule = Mapping[str, Any]


class AdminError(Exception):
    """The admin API refused a call: ``status``, the ``field`` at fault, its ``message``."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(f"{status}: {field + ': ' if field else ''}{message}")
        self.status = status
        self.field = field
        self.message = message


class _Api:
    def __init__(self, endpoint: str, timeout: float, admin_token: str | None) -> None:
        self.endpoint = endpoint.rstrip("/")
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else None
        # plain HTTP has no certificate to verify: not loading the CA bundle saves 30-80 ms per
        # CLI command (an https:// endpoint is verified; redirects are not followed)
        tls = not self.endpoint.startswith("http://")
        self._http = httpx.Client(
            base_url=self.endpoint, timeout=timeout, headers=headers, verify=tls
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        content_type: str | None = None,
    ) -> Any:
        """``body`` as JSON, or ``content`` (bytes or a binary file, streamed) as
        ``content_type``."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if content is not None:
            response = self._http.request(
                method,
                f"/_marketmeter{path}",
                content=content,
                params=query or None,
                headers={"Content-Type": content_type or "application/octet-stream"},
            )
        else:
            response = self._http.request(
                method, f"/_marketmeter{path}", json=body, params=query or None
            )
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"error": response.text}
            raise AdminError(response.status_code, problem.get("field"), problem.get("error", ""))
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    @contextmanager
    def stream(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """A GET whose body is read as it arrives (``response.iter_bytes()``)."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        with self._http.stream("GET", f"/_marketmeter{path}", params=query or None) as response:
            if response.status_code >= 400:
                response.read()
                try:
                    problem = response.json()
                except ValueError:
                    problem = {"error": response.text}
                raise AdminError(
                    response.status_code, problem.get("field"), problem.get("error", "")
                )
            yield response

    def close(self) -> None:
        self._http.close()


def _time(at: datetime | str | float) -> str | float:
    if isinstance(at, datetime):
        return at.isoformat()
    return at


def _seconds(delta: timedelta | float) -> float:
    return delta.total_seconds() if isinstance(delta, timedelta) else float(delta)


class ClockHandle:
    """The service clock (``/_marketmeter/clock``). Every method answers the clock's state."""

    def __init__(self, api: _Api) -> None:
        self._api = api

    def state(self) -> dict[str, Any]:
        return dict(self._api.call("GET", "/clock"))

    def now(self) -> datetime:
        return datetime.fromisoformat(self.state()["now"])

    def set(self, at: datetime | str | float, frozen: bool = True) -> dict[str, Any]:
        """Read ``at`` from now on: standing still (default) or running on from it."""
        return dict(self._api.call("PUT", "/clock", {"time": _time(at), "frozen": frozen}))

    def freeze(self) -> dict[str, Any]:
        return dict(self._api.call("PUT", "/clock", {"frozen": True}))

    def offset(self, delta: timedelta | float) -> dict[str, Any]:
        """Run at wall time plus ``delta`` (seconds)."""
        return dict(self._api.call("PUT", "/clock", {"offsetSeconds": _seconds(delta)}))

    def advance(self, delta: timedelta | float) -> dict[str, Any]:
        """Move by ``delta`` (seconds; negative goes back), frozen or running."""
        return dict(self._api.call("POST", "/clock/advance", {"seconds": _seconds(delta)}))

    def reset(self) -> dict[str, Any]:
        """Back to wall time."""
        return dict(self._api.call("DELETE", "/clock"))


class FaultsHandle:
    """Fault rules, global latency and the quota profile (``/_marketmeter/faults``)."""

    def __init__(self, api: _Api) -> None:
        self._api = api

    def rules(self) -> list[dict[str, Any]]:
        """Every rule, with its ``id`` and its ``matched`` and ``applied`` counters."""
        return list(self._api.call("GET", "/faults"))

    def set(self, *rules: Rule) -> list[dict[str, Any]]:
        """Replace every rule with ``rules``."""
        return list(self._api.call("POST", "/faults", [dict(r) for r in rules]))

    def add(self, *rules: Rule) -> list[dict[str, Any]]:
        """Add ``rules`` after the existing ones; answers every rule, with its id."""
        body: Any = dict(rules[0]) if len(rules) == 1 else [dict(r) for r in rules]
        return list(self._api.call("PATCH", "/faults", body))

    def remove(self, rule_id: int) -> list[dict[str, Any]]:
        return list(self._api.call("DELETE", f"/faults/{rule_id}"))

    def clear(self) -> list[dict[str, Any]]:
        return list(self._api.call("DELETE", "/faults"))

    def latency(self, milliseconds: float) -> dict[str, Any]:
        """Add ``milliseconds`` to every call (LocalStack's network effect)."""
        return dict(self._api.call("POST", "/faults/effects", {"latency": milliseconds}))

    def quota(
        self, profile: str = "aws", rates: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """Throttle per account: ``aws`` (AWS's published rates), ``custom`` or ``off``."""
        body: dict[str, Any] = {"profile": profile}
        if rates is not None:
            body["rates"] = dict(rates)
        return dict(self._api.call("PUT", "/faults/quota", body))

    def throttle(
        self, operation: str | None = None, times: int | None = None, **rule: Any
    ) -> dict[str, Any]:
        """Answer ``ThrottlingException`` (400, which AWS SDKs retry)."""
        return self.error("ThrottlingException", operation, times, **rule)

    def error(
        self, code: str, operation: str | None = None, times: int | None = None, **rule: Any
    ) -> dict[str, Any]:
        """Answer the error ``code`` (any error of the service) instead of the call."""
        body = {"error": {"code": code}, **_matching(operation, times), **rule}
        return self.add(body)[-1]

    def unprocessed(
        self,
        count: int | None = None,
        indices: list[int] | None = None,
        times: int | None = None,
        **rule: Any,
    ) -> dict[str, Any]:
        """Hold back records of BatchMeterUsage batches as UnprocessedRecords (not billed)."""
        held = {"count": count} if indices is None else {"indices": indices}
        body = {"unprocessedRecords": held, **_matching("BatchMeterUsage", times), **rule}
        return self.add(body)[-1]


def _matching(operation: str | None, times: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if operation is not None:
        found["operation"] = operation
    if times is not None:
        found["times"] = times
    return found


class JournalHandle:
    """The request journal (``/_marketmeter/journal``): every call, newest last."""

    def __init__(self, api: _Api) -> None:
        self._api = api

    def entries(
        self,
        operation: str | None = None,
        product: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
        access_key_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        params = {
            "operation": operation,
            "product": product,
            "status": status,
            "errorType": error_type,
            "accessKeyId": access_key_id,
            "since": since,
            "until": until,
            "after": after,
            "limit": limit,
        }
        return list(self._api.call("GET", "/journal", params=params)["entries"])

    def stats(self) -> dict[str, Any]:
        return dict(self._api.call("GET", "/journal", params={"limit": 1})["stats"])

    def clear(self) -> None:
        self._api.call("DELETE", "/journal")


class AgreementsHandle:
    """The subscription lifecycle (``/_marketmeter/agreements``, docs/subscription-lifecycle.md):
    the agreements, their transitions and the log of the notifications they sent. A transition
    answers ``{"action", "agreement", "events", "token"?}``; ``reference`` is an agreement id
    (``agmt-...``) or a LicenseArn."""

    def __init__(self, api: _Api) -> None:
        self._api = api

    def list(
        self,
        product: str | None = None,
        buyer: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        params = {"product": product, "buyer": buyer, "state": state, "limit": limit}
        return list(self._api.call("GET", "/agreements", params=params)["agreements"])

    def get(self, reference: str) -> dict[str, Any]:
        return dict(self._api.call("GET", f"/agreements/{quote(reference, safe='')}"))

    def subscribe(
        self,
        product: str,
        buyer: str,
        free_trial: bool = False,
        offer: str | None = None,
        selector: str | None = None,
        quantities: Mapping[str, int] | None = None,
        auto_renew: bool | None = None,
    ) -> dict[str, Any]:
        """Subscribe ``buyer`` to ``product`` (on ``offer``); for a product sold by contract,
        the rate card's ``selector`` (its duration), the ``quantities`` bought and
        ``auto_renew`` (each left out: the offer's default)."""
        configuration = {
            key: value
            for key, value in (
                ("selector", selector),
                ("dimensions", dict(quantities) if quantities else None),
                ("autoRenew", auto_renew),
            )
            if value is not None
        }
        body: dict[str, Any] = {"productCode": product, "buyerAccountId": buyer}
        body["freeTrial"] = free_trial
        if offer is not None:
            body["offerId"] = offer
        if configuration:
            body["configuration"] = configuration
        return dict(self._api.call("POST", "/agreements", body))

    def subscribe_fail(
        self, product: str, buyer: str, free_trial: bool = False, offer: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"productCode": product, "buyerAccountId": buyer}
        body["freeTrial"] = free_trial
        if offer is not None:
            body["offerId"] = offer
        return dict(self._api.call("POST", "/subscribe-fail", body))

    def _transition(self, reference: str, verb: str, body: Any = None) -> dict[str, Any]:
        path = f"/agreements/{quote(reference, safe='')}/{verb}"
        return dict(self._api.call("POST", path, body if body is not None else {}))

    def unsubscribe(self, reference: str) -> dict[str, Any]:
        return self._transition(reference, "unsubscribe")

    def suspend(self, reference: str) -> dict[str, Any]:
        return self._transition(reference, "suspend")

    def resubscribe(self, reference: str) -> dict[str, Any]:
        return self._transition(reference, "resubscribe")

    def update(
        self,
        reference: str,
        entitlements: Mapping[str, bool | int | float | str] | None = None,
        ends_at: datetime | str | None = None,
        free_trial: bool | None = None,
    ) -> dict[str, Any]:
        """An upgrade, amendment or renewal: ``entitlements`` (dimension → value) replace the
        agreement's, ``ends_at`` moves its end, ``free_trial`` converts it."""
        body: dict[str, Any] = {}
        if entitlements is not None:
            body["entitlements"] = [
                {"dimension": dimension, "value": value}
                for dimension, value in entitlements.items()
            ]
        if ends_at is not None:
            body["endsAt"] = _time(ends_at)
        if free_trial is not None:
            body["freeTrial"] = free_trial
        return self._transition(reference, "entitlement-update", body)

    def events(
        self,
        product: str | None = None,
        buyer: str | None = None,
        action: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """The notifications logged, oldest first, each with its ``message`` and deliveries."""
        params = {
            "product": product,
            "buyer": buyer,
            "action": action,
            "since": since,
            "until": until,
            "after": after,
            "limit": limit,
        }
        return list(self._api.call("GET", "/events", params=params)["events"])


class CatalogHandle:
    """One kind of catalog entry (``/_marketmeter/products``, ...): bodies and answers are the
    catalog file's entries (snake_case); reads never show secrets."""

    def __init__(self, api: _Api, collection: str) -> None:
        self._api = api
        self._collection = collection

    def _path(self, key: str = "", *rest: str) -> str:
        parts = [self._collection, *(quote(part, safe="") for part in (key, *rest) if part)]
        return "/" + "/".join(parts)

    def list(self) -> list[dict[str, Any]]:
        return list(self._api.call("GET", self._path())[self._collection])

    def get(self, key: str) -> dict[str, Any]:
        return dict(self._api.call("GET", self._path(key)))

    def add(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._api.call("POST", self._path(), dict(entry)))

    def replace(self, key: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the whole entry (a seller's or buyer's keys only if it lists them)."""
        return dict(self._api.call("PUT", self._path(key), dict(entry)))

    def remove(self, key: str) -> None:
        self._api.call("DELETE", self._path(key))


class AccountsHandle(CatalogHandle):
    """Sellers or buyers, with their access keys."""

    def add_key(
        self,
        account_id: str,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> dict[str, Any]:
        """Add a key pair (generated unless given); the answer is the only one with the
        secret."""
        body = None
        if access_key_id is not None or secret_access_key is not None:
            body = {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
        return dict(self._api.call("POST", self._path(account_id, "keys"), body))

    def remove_key(self, account_id: str, access_key_id: str) -> None:
        self._api.call("DELETE", self._path(account_id, "keys", access_key_id))


class MarketmeterAdmin:
    """The admin API of the marketmeter server at ``endpoint``; ``admin_token`` (default: the
    environment's ``MARKETMETER_ADMIN_TOKEN``) is sent as ``Authorization: Bearer``."""

    def __init__(
        self, endpoint: str, timeout: float = 30.0, admin_token: str | None = None
    ) -> None:
        token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV)
        self._api = _Api(endpoint, timeout, token)
        self.endpoint = self._api.endpoint
        self.clock = ClockHandle(self._api)
        self.faults = FaultsHandle(self._api)
        self.journal = JournalHandle(self._api)
        self.sellers = AccountsHandle(self._api, "sellers")
        self.products = CatalogHandle(self._api, "products")
        self.buyers = AccountsHandle(self._api, "buyers")
        self.agreements = AgreementsHandle(self._api)

    def health(self) -> dict[str, Any]:
        return dict(self._api.call("GET", "/health"))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Any admin route (``path`` after ``/_marketmeter``, e.g. ``/agreements``): its JSON
        answer, or ``AdminError``. Parameters that are None are left out."""
        return self._api.call(method, path, body, params)

    def apply_catalog(self, document: str | bytes | BinaryIO, source: str) -> dict[str, Any]:
        """Apply a catalog document of any size (YAML or JSON; text, bytes or a binary file,
        streamed), as ``marketmeter catalog apply`` applies a file: what it held, the catalog
        version after it, the tokens minted; ``AdminError`` with the problem list."""
        content = document.encode() if isinstance(document, str) else document
        return dict(
            self._api.call(
                "POST",
                "/catalog",
                params={"source": source},
                content=content,
                content_type="application/yaml",
            )
        )

    def usage(self, **filters: Any) -> list[dict[str, Any]]:
        """Billed records: filters ``product``, ``customer``, ``dimension``, ``from``, ``to``,
        ``limit`` (pass ``from`` as ``from_``)."""
        if "from_" in filters:
            filters["from"] = filters.pop("from_")
        return list(self._api.call("GET", "/usage", params=filters)["records"])

    @contextmanager
    def export(self, format: str = "csv", **filters: Any) -> Iterator[httpx.Response]:
        """Billed usage streamed as ``format`` (csv or jsonl): filters as ``usage``'s, and
        ``window`` (hour, day, month) with ``group`` for totals instead of records. The
        response's ``X-Marketmeter-Export-Rows`` header says how many lines of data follow;
        read the body with ``iter_bytes()`` or ``iter_lines()``."""
        if "from_" in filters:
            filters["from"] = filters.pop("from_")
        with self._api.stream(f"/usage.{format}", filters) as response:
            yield response

    def reset(self, drop_catalog: bool = False, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        """Empty the ledger (and the catalog with ``drop_catalog``); put the clock, faults and
        journal back as the server started, except those in ``keep``."""
        body = {"dropCatalog": drop_catalog, "keep": list(keep)}
        return dict(self._api.call("POST", "/reset", body))

    def save_snapshot(self, name: str) -> dict[str, Any]:
        return dict(self._api.call("POST", "/snapshots", {"name": name}))

    def restore_snapshot(self, name: str) -> dict[str, Any]:
        return dict(self._api.call("POST", f"/snapshots/{name}/restore"))

    def snapshots(self) -> list[dict[str, Any]]:
        return list(self._api.call("GET", "/snapshots")["snapshots"])

    def delete_snapshot(self, name: str) -> None:
        self._api.call("DELETE", f"/snapshots/{name}")

    def tokens(self, product: str | None = None, buyer: str | None = None) -> list[dict[str, Any]]:
        params = {"product": product, "buyer": buyer}
        return list(self._api.call("GET", "/tokens", params=params)["tokens"])

    def mint_token(self, product: str, buyer: str) -> dict[str, Any]:
        """A fresh registration token for ResolveCustomer."""
        body = {"productCode": product, "buyerAccountId": buyer}
        return dict(self._api.call("POST", "/tokens", body))

    def close(self) -> None:
        self._api.close()
