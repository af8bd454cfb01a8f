"""MeterUsage's per-request ClientToken claims, for every backend: claim a token and bill its
record in the caller's transaction, or report what the token is already bound to.

The claim is the insert itself (``ON CONFLICT DO NOTHING`` on ``(customer_account,
client_token)``); a token claimed by another node or an earlier call is then read back, in a
new statement, which sees it once committed.
"""

from __future__ import annotations

from marketmeter.metering.types import RequestClaim, RequestClaimOutcome
from marketmeter.store.ledger_rows import LEDGER_COLUMNS, LedgerRow
from marketmeter.store.sql_connection import SqlConnection

__all__ = ["CLAIMED", "bill_claim"]

CLAIM = (
    "INSERT INTO request_claims (customer_account, client_token, fingerprint, "
    "metering_record_id, created_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (customer_account, client_token) DO NOTHING RETURNING metering_record_id"
)
CLAIMED = (
    "SELECT metering_record_id, fingerprint FROM request_claims "
    "WHERE customer_account = ? AND client_token = ?"
)
_INSERT_ROW = (
    f"INSERT INTO usage_records ({LEDGER_COLUMNS}) VALUES ({', '.join(['?'] * 14)}) "
    "ON CONFLICT (hour, scope, customer_account, dimension) DO NOTHING"
)


def bill_claim(sql: SqlConnection, claim: RequestClaim, row: LedgerRow) -> RequestClaimOutcome:
    claimed = sql.execute(
        CLAIM,
        (
            claim.customer_account,
            claim.client_token,
            claim.fingerprint,
            claim.metering_record_id,
            claim.created_at,
        ),
    ).fetchone()
    if claimed is None:
        existing = sql.execute(CLAIMED, (claim.customer_account, claim.client_token)).fetchone()
        assert existing is not None, "a conflicting claim must be readable once committed"
        return RequestClaimOutcome(existing[0], existing[1], inserted=False)
    sql.execute(_INSERT_ROW, row)
    return RequestClaimOutcome(claimed[0], claim.fingerprint, inserted=True)
