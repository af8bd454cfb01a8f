"""The dashboard's form posts: an ``application/x-www-form-urlencoded`` body read as text fields
(bounded), and the actions they ask for, each one operator call.

An action answers a line to show (``done``) or raises the operator's ``Refusal``, shown as the
page's error; either way the browser is sent back to the page it came from (303).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from marketmeter.operator.catalog import BUYERS
from marketmeter.operator.service import Operator
from marketmeter.refusal import Refusal

__all__ = ["MAX_FORM_BYTES", "Action", "actions", "read_form"]

MAX_FORM_BYTES = 64 * 1024
Action = Callable[[dict[str, str]], Awaitable[str]]


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the last value of a repeated one); a ``Refusal`` for a body that is
    too large or not a form."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise Refusal(
            "Content-Type", "the dashboard's forms post application/x-www-form-urlencoded"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refusal("body", f"a form holds at most {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal("body", "a form must be UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def _flag(form: dict[str, str], name: str) -> bool:
    return form.get(name) in {"on", "true", "1"}


def _json_text(form: dict[str, str], name: str) -> Any:
    try:
        return orjson.loads(form.get(name, ""))
    except orjson.JSONDecodeError:
        raise Refusal(name, "must be JSON") from None


def _number(form: dict[str, str], name: str) -> float:
    try:
        return float(form.get(name, ""))
    except ValueError:
        raise Refusal(name, "must be a number") from None


def actions(operator: Operator) -> dict[str, Action]:
    """Every action a dashboard form can post, by name."""
    lifecycle = operator.lifecycle
    bench = operator.bench
    clock = operator.clock

    async def subscribe(form: dict[str, str]) -> str:
        body: dict[str, Any] = {
            "productCode": form.get("productCode", ""),
            "buyerAccountId": form.get("buyerAccountId", ""),
            "freeTrial": _flag(form, "freeTrial"),
        }
        done = await lifecycle.subscribe_request(body)
        return f"subscribed: agreement {done['agreement']['agreementId']}"

    async def transition(form: dict[str, str]) -> str:
        verb = form.get("verb", "")
        body = {"freeTrial": _flag(form, "freeTrial")} if verb == "entitlement-update" else None
        done = await lifecycle.transition(form.get("agreement", ""), verb, body)
        agreement = done["agreement"]
        return f"{verb}: agreement {agreement['agreementId']} is {agreement['state']}"

    async def mint_token(form: dict[str, str]) -> str:
        body = {
            "productCode": form.get("productCode", ""),
            "buyerAccountId": form.get("buyerAccountId", ""),
        }
        minted = await operator.tokens.mint(body)
        return f"minted registration token {minted['token']}"

    async def rotate_key(form: dict[str, str]) -> str:
        made = await operator.keys.rotate()
        return f"RegisterUsage key version {made['version']} made"

    async def clock_freeze(form: dict[str, str]) -> str:
        return f"clock frozen at {clock.set({'frozen': True})['now']}"

    async def clock_set(form: dict[str, str]) -> str:
        return f"clock set to {clock.set({'time': form.get('time', '')})['now']}"

    async def clock_advance(form: dict[str, str]) -> str:
        moved = clock.advance({"seconds": _number(form, "seconds")})
        return f"clock moved to {moved['now']}"

    async def clock_reset(form: dict[str, str]) -> str:
        return f"clock back to wall time: {clock.reset()['now']}"

    async def fault_add(form: dict[str, str]) -> str:
        rules = bench.add_rules(_json_text(form, "rule"))
        return f"fault rule {rules[-1]['id']} added"

    async def fault_remove(form: dict[str, str]) -> str:
        bench.remove_rule(form.get("id", ""))
        return f"fault rule {form.get('id')} removed"

    async def latency(form: dict[str, str]) -> str:
        effects = bench.set_effects({"latency": _number(form, "latency")})
        return f"added latency: {effects['latency']:g} ms"

    async def quota(form: dict[str, str]) -> str:
        rates = form.get("rates", "").strip()
        body: dict[str, Any] = {"profile": form.get("profile", "")}
        if rates:
            body["rates"] = _json_text(form, "rates")
        state = bench.set_quota(body)
        return f"quota profile: {state['profile']}"

    async def snapshot_save(form: dict[str, str]) -> str:
        saved = await bench.save_snapshot({"name": form.get("name", "")})
        return f"snapshot {saved['name']!r} saved"

    async def snapshot_restore(form: dict[str, str]) -> str:
        restored = await bench.restore_snapshot(form.get("name", ""))
        return f"snapshot {restored['name']!r} restored"

    async def snapshot_delete(form: dict[str, str]) -> str:
        await bench.delete_snapshot(form.get("name", ""))
        return f"snapshot {form.get('name')!r} deleted"

    async def reset(form: dict[str, str]) -> str:
        if form.get("confirm") != "reset":
            raise Refusal("confirm", "type reset to confirm")
        done = await bench.reset({"dropCatalog": _flag(form, "dropCatalog")})
        return f"reset: {sum(done['deleted'].values())} row(s) deleted"

    async def journal_clear(form: dict[str, str]) -> str:
        bench.clear_journal()
        return "journal cleared"

    async def buyer_add(form: dict[str, str]) -> str:
        entry = {"account_id": form.get("account_id", "")}
        for name in ("customer_identifier", "name"):
            if form.get(name):
                entry[name] = form[name]
        added = await operator.catalog.add_account(BUYERS, entry)
        return f"buyer {added['account_id']} added"

    return {
        "subscribe": subscribe,
        "transition": transition,
        "mint-token": mint_token,
        "rotate-key": rotate_key,
        "buyer-add": buyer_add,
        "clock-freeze": clock_freeze,
        "clock-set": clock_set,
        "clock-advance": clock_advance,
        "clock-reset": clock_reset,
        "fault-add": fault_add,
        "fault-remove": fault_remove,
        "latency": latency,
        "quota": quota,
        "snapshot-save": snapshot_save,
        "snapshot-restore": snapshot_restore,
        "snapshot-delete": snapshot_delete,
        "reset": reset,
        "journal-clear": journal_clear,
    }
