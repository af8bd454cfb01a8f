"""Where a command acts: a running server (``--endpoint``, with ``--admin-token``) or a database
straight (``--db``), and the errors of either as one clear line.

Commands that act on the ledger (the catalog, agreements, tokens, keys, usage, snapshots, reset)
take both; commands on a server's own state (clock, fault rules, journal) take ``--endpoint``
only. Each command has a default: the ledger commands that always worked on a file default to
``--db`` (``marketmeter.db`` here, or ``$MARKETMETER_DB``), the others to ``--endpoint``
(``http://127.0.0.1:8686``, or ``$MARKETMETER_ENDPOINT``). Both go through the same operator
service (``cli.service``): against a server, its admin API on its service clock; on a database,
in this process on the wall clock (there is no server whose clock it could read). The options
may be given on a command or on its group (``marketmeter faults --endpoint URL add ...``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

import click
import httpx
from click.core import ParameterSource

from marketmeter.cli.service import LocalService, RemoteService, Service
from marketmeter.config import DEFAULT_DB, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TOKEN_TTL
from marketmeter.refusal import Refusal
from marketmeter.store.base import OperatorStore, SchemaError
from marketmeter.store.open import UnsupportedDatabase, open_store
from marketmeter.testing.admin_client import ADMIN_TOKEN_ENV, AdminError, MarketmeterAdmin

__all__ = [
    "DEFAULT_ENDPOINT",
    "Mode",
    "db_option",
    "open_database",
    "refusal_line",
    "server",
    "service",
    "target_options",
]

F = TypeVar("F", bound=Callable[..., Any])
Mode = Literal["db", "endpoint"]
DEFAULT_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
_META = "marketmeter.target"


@dataclass(slots=True)
class _Target:
    endpoint: str | None = None
    db: str | None = None
    admin_token: str | None = None


def _target() -> _Target:
    meta = click.get_current_context().meta
    found = meta.get(_META)
    if found is None:
        found = meta[_META] = _Target()
    assert isinstance(found, _Target)
    return found


def _remember(name: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def store(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if not value:
            return
        target = _target()  # ctx.meta is shared with the subcommands' contexts
        given = ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE
        if given or getattr(target, name) is None:  # the environment never overrides an option
            setattr(target, name, value)

    return store


def target_options(
    *, db: bool = True, endpoint: bool = True, default: Mode = "db"
) -> Callable[[F], F]:
    """``--endpoint`` and ``--admin-token`` (and ``--db`` where the command can work on a
    database) for a command or a group; ``default`` is where it acts when none is given (its
    environment variable is read only then)."""

    def decorate(command: F) -> F:
        options = []
        if endpoint:
            options.append(
                click.option(
                    "--endpoint",
                    envvar="MARKETMETER_ENDPOINT" if default == "endpoint" else None,
                    expose_value=False,
                    callback=_remember("endpoint"),
                    help=f"A running server (default {DEFAULT_ENDPOINT}"
                    + (", or env MARKETMETER_ENDPOINT)." if default == "endpoint" else ")."),
                )
            )
            options.append(
                click.option(
                    "--admin-token",
                    envvar=ADMIN_TOKEN_ENV,
                    expose_value=False,
                    callback=_remember("admin_token"),
                    help=f"The server's admin token, if it has one (env {ADMIN_TOKEN_ENV}).",
                )
            )
        if db:
            options.append(
                click.option(
                    "--db",
                    envvar="MARKETMETER_DB" if default == "db" else None,
                    expose_value=False,
                    callback=_remember("db"),
                    help="Work straight on this database: a SQLite file or URL "
                    "(sqlite:///path), or postgresql://..."
                    + (f" Default {DEFAULT_DB}, or env MARKETMETER_DB." if default == "db" else ""),
                )
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def open_database(db: str) -> OperatorStore:
    """The store at ``db``, or a clean CLI error saying why it cannot be used."""
    try:
        return open_store(db)
    except (UnsupportedDatabase, SchemaError) as error:
        raise click.ClickException(str(error)) from None


db_option = click.option(
    "--db",
    envvar="MARKETMETER_DB",
    show_envvar=True,
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite file or URL (sqlite:///path), or postgresql://...",
)


def refusal_line(error: Refusal, options: Mapping[str, str] | None = None) -> click.ClickException:
    """A refusal as the CLI's error: with ``options`` (field → option) a usage error naming
    the option (exit 2), else one line (exit 1)."""
    if options is not None:
        hint = options.get(error.field or "", f"--{error.field}")
        return click.BadParameter(error.message, param_hint=hint)
    return click.ClickException(error.message)


@contextmanager
def server() -> Iterator[MarketmeterAdmin]:
    """The admin client of the running server (``--endpoint``), for its own state (clock,
    fault rules, journal)."""
    with service("endpoint") as operator:
        assert isinstance(operator, RemoteService)
        yield operator.admin


@contextmanager
def service(
    default: Mode = "db",
    *,
    token_ttl: timedelta = DEFAULT_TOKEN_TTL,
    options: Mapping[str, str] | None = None,
) -> Iterator[Service]:
    """The operator where the command acts (``default`` unless an option says otherwise).
    Refusals (``options`` maps their fields to this command's options), admin API errors and
    an unreachable server become the CLI's errors."""
    target = _target()
    if target.endpoint is not None and target.db is not None:
        raise click.UsageError("give --endpoint or --db, not both")
    mode: Mode = "endpoint" if target.endpoint else "db" if target.db else default
    if mode == "endpoint":
        endpoint = target.endpoint or DEFAULT_ENDPOINT
        remote = RemoteService(endpoint, target.admin_token)
        try:
            yield remote
        except AdminError as error:
            raise click.ClickException(str(error)) from None
        except httpx.TransportError as error:
            raise click.ClickException(
                f"cannot reach marketmeter at {endpoint} ({error}); is `marketmeter serve` running?"
            ) from None
        finally:
            remote.close()
    else:
        store = open_database(target.db or DEFAULT_DB)
        local = LocalService(store, token_ttl)
        try:
            yield local
        except Refusal as error:
            raise refusal_line(error, options) from None
        finally:
            local.close()
            store.close_now()
