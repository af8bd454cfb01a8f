"""Testing a seller's metering code against marketmeter: a client for the admin API
(``MarketmeterAdmin``: clock, faults, journal, reset, snapshots), a server started in-process
or as a subprocess (``MarketmeterServer``), and the pytest plugin built on both
(``marketmeter.testing.pytest_plugin``, registered with pytest when marketmeter is installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marketmeter.testing.admin_client import AdminError, MarketmeterAdmin

if TYPE_CHECKING:
    from marketmeter.testing.servers import MarketmeterServer

__all__ = ["AdminError", "MarketmeterAdmin", "MarketmeterServer"]


def __getattr__(name: str) -> Any:
    # The server pulls in the whole app; the CLI's bench commands only need the client.
    if name == "MarketmeterServer":
        from marketmeter.testing.servers import MarketmeterServer

        return MarketmeterServer
    raise AttributeError(name)
