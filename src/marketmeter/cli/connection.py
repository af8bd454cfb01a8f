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
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click
from click.core import ParameterSource

from marketmeter.cli.ledger_file import LedgerFile
from marketmeter.config import DEFAULT_DB, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TOKEN_TTL
from marketmeter.refusal import Refusal

if TYPE_CHECKING:  # imported where a command uses them: --help and --db commands skip httpx
    from marketmeter.cli.service import Service
    from marketmeter.store.base import OperatorStore
    from marketmeter.testing.admin_client import AdminError, MarketmeterAdmin

__all__ = [
    "ADMIN_TOKEN_ENV",
    "ADMIN_TOKEN_FILE_ENV",
    "DEFAULT_ENDPOINT",
    "Mode",
    "db_option",
    "open_database",
    "read_token_file",
    "refusal_line",
    "resolve_admin_token",
    "server",
    "service",
    "target_options",
]

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_TOKEN_ENV = "MARKETMETER_ADMIN_TOKEN"  # testing.admin_client reads the same variable
Mode = Literal["db", "endpoint"]
DEFAULT_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
ADMIN_TOKEN_FILE_ENV = "MARKETMETER_ADMIN_TOKEN_FILE"
_TOKEN_OPTIONS = "give --admin-token or --admin-token-file, not both"
_META = "marketmeter.target"


@dataclass(slots=True)
class _Target:
    endpoint: str | None = None
    db: str | None = None
    admin_token: str | None = None
    given: set[str] = field(default_factory=set)  # named on the command line, not the env


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
        if (
            name == "admin_token"
            and given
            and ctx.get_parameter_source("admin_token_file") is ParameterSource.COMMANDLINE
        ):
            raise click.UsageError(_TOKEN_OPTIONS)
        if given or getattr(target, name) is None:  # the environment never overrides an option
            setattr(target, name, value)
        if given:
            target.given.add(name)

    return store


def read_token_file(path: Path) -> str:
    """The admin token in ``path``: its first line, without surrounding blanks."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise click.BadParameter(
            f"cannot read {path}: {reason}", param_hint="'--admin-token-file'"
        ) from None
    lines = text.strip().splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise click.BadParameter(f"{path} holds no token", param_hint="'--admin-token-file'")
    return token


def resolve_admin_token(token: str | None, token_file: Path | None) -> str | None:
    """The admin token given as a value or in a file (never both)."""
    if token_file is None:
        return token
    if token is not None:
        raise click.UsageError(_TOKEN_OPTIONS)
    return read_token_file(token_file)


def _remember_token_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is None:
        return
    target = _target()
    given = ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE
    if given and ctx.get_parameter_source("admin_token") is ParameterSource.COMMANDLINE:
        raise click.UsageError(_TOKEN_OPTIONS)
    if given or target.admin_token is None:
        target.admin_token = read_token_file(value)


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
                    help="The server's admin token, if it has one. Given here it is visible in "
                    f"the process list: prefer env {ADMIN_TOKEN_ENV} or --admin-token-file.",
                )
            )
            options.append(
                click.option(
                    "--admin-token-file",
                    envvar=ADMIN_TOKEN_FILE_ENV,
                    type=click.Path(path_type=Path, dir_okay=False),
                    expose_value=False,
                    callback=_remember_token_file,
                    help="Read the server's admin token from this file (its first line; "
                    f"env {ADMIN_TOKEN_FILE_ENV}).",
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


def open_database(db: str, *, option: str = "--db", reads: bool = False) -> OperatorStore:
    """The store at ``db``, or one line saying why it cannot be used. ``reads``: the command
    only reads, so a database that is not there is an error, never created."""
    return LedgerFile(db, option).open(reads=reads)


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
        parts = (error.field or "").split(".")  # a member's field: its nearest named parent's
        named = (".".join(parts[:end]) for end in range(len(parts), 0, -1))
        hint = next((options[field] for field in named if field in options), f"--{error.field}")
        return click.BadParameter(error.message, param_hint=hint)
    return click.ClickException(error.message)


@contextmanager
def server() -> Iterator[MarketmeterAdmin]:
    """The admin client of the running server (``--endpoint``), for its own state (clock,
    fault rules, journal)."""
    from marketmeter.cli.service import RemoteService

    with service("endpoint") as operator:
        assert isinstance(operator, RemoteService)
        yield operator.admin


@contextmanager
def service(
    default: Mode = "db",
    *,
    token_ttl: timedelta = DEFAULT_TOKEN_TTL,
    options: Mapping[str, str] | None = None,
    reads: bool = False,
) -> Iterator[Service]:
    """The operator where the command acts (``default`` unless an option says otherwise).
    Refusals (``options`` maps their fields to this command's options), admin API errors and
    an unreachable server become the CLI's errors. ``reads``: the command only reads, so on
    ``--db`` a database that is not there is an error, never created; a command that writes
    and then fails removes a database file it created."""
    target = _target()
    if target.endpoint is not None and target.db is not None:
        if {"endpoint", "db"} <= target.given:
            raise click.UsageError("give --endpoint or --db, not both")
        if "endpoint" in target.given:  # an option wins over the other's environment variable
            target.db = None
        elif "db" in target.given:
            target.endpoint = None
    mode: Mode = "endpoint" if target.endpoint else "db" if target.db else default
    if mode == "endpoint":
        import httpx

        from marketmeter.cli.service import RemoteService
        from marketmeter.testing.admin_client import AdminError

        endpoint = target.endpoint or DEFAULT_ENDPOINT
        if not endpoint.startswith(("http://", "https://")):
            raise click.BadParameter(
                f"{endpoint!r} is not a URL: give one like {DEFAULT_ENDPOINT}",
                param_hint="'--endpoint'",
            )
        remote = RemoteService(endpoint, target.admin_token)
        try:
            yield remote
        except AdminError as error:
            raise click.ClickException(admin_line(error, endpoint)) from None
        except httpx.TransportError as error:
            raise click.ClickException(
                f"cannot reach marketmeter at {endpoint} ({error or type(error).__name__}): "
                "start it with `marketmeter serve`, or give --endpoint URL"
            ) from None
        finally:
            remote.close()
    else:
        from marketmeter.cli.service import LocalService

        ledger = LedgerFile(target.db or DEFAULT_DB, "--db")
        store = ledger.open(reads=reads)
        local = LocalService(store, token_ttl)
        failed = True
        try:
            yield local
            failed = False
        except Refusal as error:
            raise refusal_line(error, options) from None
        finally:
            local.close()
            store.close_now()
            if failed:
                ledger.remove_if_created()


def admin_line(error: AdminError, endpoint: str) -> str:
    """An admin API refusal as one line: what is wrong, and for the admin token what to do
    (never the HTTP status)."""
    if error.status == 401:
        return (
            f"the server at {endpoint} requires its admin token: set {ADMIN_TOKEN_ENV} or give "
            "--admin-token-file FILE"
        )
    if error.status == 403 and error.field == "Authorization":
        return (
            f"the server at {endpoint} refused the admin token given: give the one it was "
            "started with"
        )
    return f"{error.field}: {error.message}" if error.field else error.message
