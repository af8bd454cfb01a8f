"""``marketmeter-client``: inspect and flush a metering client's spool from a shell.

    marketmeter-client status --spool /var/lib/myapp/metering.db
    marketmeter-client list --spool metering.db --state failed --json
    marketmeter-client flush --spool metering.db [--include-open-hour] [--endpoint-url URL]

``flush`` sends with the AWS credentials and region of the environment (boto3's usual chain);
the products and modes are those the spool's records were made with. Bad input is one line on
stderr and exit status 2; a spool problem exits 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from marketmeter.client.meter import MeteringClient, make_aws_client
from marketmeter.client.model import Mode, RecordState, SpoolRecord
from marketmeter.client.spool import SpoolError

__all__ = ["cli", "main"]

_SPOOL = click.option(
    "--spool",
    "spool_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The spool file (SQLite) the application records into.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Inspect and flush a marketmeter.client metering spool."""


def _open(path: str) -> MeteringClient:
    return MeteringClient.open_existing(path)


def _record_json(record: SpoolRecord) -> dict[str, Any]:
    customer = record.customer
    return {
        "id": record.id,
        "mode": record.mode.value,
        "productCode": record.product_code,
        "customerIdentifier": customer.identifier if customer else None,
        "customerAWSAccountId": customer.account_id if customer else None,
        "licenseArn": customer.license_arn if customer else None,
        "dimension": record.dimension,
        "hour": record.hour.isoformat().replace("+00:00", "Z"),
        "timestamp": int(record.timestamp.timestamp()),
        "quantity": str(record.quantity),
        "state": record.state.value,
        "attempts": record.attempts,
        "meteringRecordId": record.metering_record_id,
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "usageEvents": record.usage_events,
    }


@cli.command()
@_SPOOL
@_JSON
def status(spool_path: str, as_json: bool) -> None:
    """Records per state, at risk, and per customer x dimension."""
    meter = _open(spool_path)
    found = meter.status()
    if as_json:
        document = {
            "unaggregated": found.unaggregated,
            "counts": {state.value: found.count(state) for state in RecordState},
            "atRisk": found.at_risk,
            "rows": [
                {
                    "customer": r.customer,
                    "dimension": r.dimension,
                    "state": r.state.value,
                    "records": r.records,
                    "quantity": str(r.quantity),
                }
                for r in found.rows
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    counts = "  ".join(f"{state.value} {found.count(state)}" for state in RecordState)
    click.echo(f"unaggregated events {found.unaggregated}  {counts}  at risk {found.at_risk}")
    if found.rows:
        click.echo(f"{'CUSTOMER':<24} {'DIMENSION':<20} {'STATE':<10} {'RECORDS':>7} QUANTITY")
        for r in found.rows:
            click.echo(
                f"{r.customer or '-':<24} {r.dimension:<20} {r.state.value:<10}"
                f" {r.records:>7} {r.quantity}"
            )


@cli.command(name="list")
@_SPOOL
@click.option("--state", type=click.Choice([s.value for s in RecordState]), default=None)
@click.option("--customer", default=None, help="A CustomerIdentifier or an AWS account id.")
@_JSON
def list_records(spool_path: str, state: str | None, customer: str | None, as_json: bool) -> None:
    """The spool's records, oldest first."""
    records = _open(spool_path).records(state=state, customer=customer)
    if as_json:
        click.echo(json.dumps([_record_json(r) for r in records], indent=2))
        return
    for r in records:
        who = r.customer.label if r.customer else "(instance)"
        extra = r.metering_record_id or r.error_code or ""
        click.echo(
            f"{r.id:>6} {r.hour:%Y-%m-%dT%H:00Z} {who:<24} {r.dimension:<20}"
            f" {r.quantity!s:>12} {r.state.value:<9} {extra}"
        )
    click.echo(f"{len(records)} record(s)")


@cli.command()
@_SPOOL
@click.option("--include-open-hour", is_flag=True, help="Send the current hour's usage too.")
@click.option("--endpoint-url", default=None, help="Another endpoint (e.g. marketmeter's).")
@click.option("--region", default=None, help="The AWS region (default: the environment's).")
def flush(
    spool_path: str, include_open_hour: bool, endpoint_url: str | None, region: str | None
) -> None:
    """Send what is due now, and print what happened."""
    MeteringClient.open_existing(spool_path).close()
    options = {k: v for k, v in (("endpoint_url", endpoint_url), ("region_name", region)) if v}
    aws = make_aws_client(**options)
    alarms: list[SpoolRecord] = []
    for mode in Mode:
        meter = MeteringClient(spool_path, mode=mode, aws=aws, on_alarm=alarms.extend)
        result = meter.flush(include_open_hour=include_open_hour)
        settled = "  ".join(f"{s.value} {n}" for s, n in sorted(result.settled.items()))
        if result.calls or result.settled or result.pending:
            click.echo(
                f"{mode.value}: {result.calls} call(s), {result.retries} retried;"
                f" {settled or 'nothing settled'}; pending {result.pending}"
            )
        for error in result.errors:
            click.echo(f"  {error}", err=True)
    for record in alarms:
        click.echo(f"at risk: record {record.id} ({record.hour:%Y-%m-%dT%H:00Z})", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: click's parsing, with every error on one line."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.UsageError as error:
        click.echo(f"error: {error.format_message()}", err=True)
        return 2
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        return error.exit_code
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except SpoolError as error:
        click.echo(f"error: {error}", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
