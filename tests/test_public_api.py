"""The public API, pinned: what ``marketmeter`` and ``marketmeter.testing`` export (the pytest
plugin and the admin client are used by sellers' tests, docs/testing-your-integration.md), and
the ``py.typed`` marker that lets their type checkers read it."""

from __future__ import annotations

from pathlib import Path

import marketmeter
import marketmeter.testing


def test_the_package_exports_its_version() -> None:
    assert marketmeter.__all__ == ["__version__"]


def test_the_testing_package_exports_the_admin_client_and_the_server() -> None:
    assert marketmeter.testing.__all__ == ["AdminError", "MarketmeterAdmin", "MarketmeterServer"]
    for name in marketmeter.testing.__all__:
        assert getattr(marketmeter.testing, name).__name__ == name


def test_the_package_is_marked_typed() -> None:
    assert (Path(marketmeter.__file__).parent / "py.typed").is_file()
