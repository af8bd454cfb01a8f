"""Usage quantities by value: integers (``Quantity``) and decimal strings (``QuantityAsDecimal``,
at most 6 decimal places) are one kind of number here, so ``17``, ``17.0`` and ``"17.00"`` are
the same quantity. The ledger keeps them as exact integer micro-units."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["MICROS", "from_micros", "json_number", "plain", "to_micros"]

MICROS = 1_000_000


def to_micros(quantity: Decimal) -> int:
    """A quantity as exact integer micro-units (how the ledger stores and compares it)."""
    return int(quantity * MICROS)


def from_micros(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def plain(quantity: Decimal) -> str:
    """A quantity as people write it: ``8``, ``17.42`` (no exponent, no trailing zeros)."""
    return format(quantity.normalize(), "f")


def json_number(quantity: Decimal) -> int | float:
    """A quantity for JSON views: an integer when whole, else its float (≤ 6 decimals)."""
    return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)
