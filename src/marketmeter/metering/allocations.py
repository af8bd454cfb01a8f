"""Usage allocation and tag rules, shared by BatchMeterUsage and MeterUsage
(docs/batch-meter-usage.md).

The model's own limits (1..5 tags per allocation, 1..2500 allocations, tag lengths) are checked
by the protocol layer as ``ValidationException``; so is the tag character set, which AWS
reports as ``InvalidTagException`` (the protocol layer raises that one itself). What is left
here are the rules that need the whole record:

- the allocated quantities add up to the record's quantity;
- no two allocations carry the same tag set; at most one allocation is untagged;
- at most 5 distinct tag keys across all allocations of a record, and no key twice in one
  allocation → ``InvalidTagException``;
- every allocation gives exactly one of AllocatedUsageQuantity / AllocatedUsageQuantityAsDecimal
  (``ValidationException``), the decimal form exactly when the record's quantity is decimal
  (``InvalidUsageAllocationsException``). Quantities are compared by value.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from marketmeter.errors import InvalidTagException, InvalidUsageAllocationsException
from marketmeter.metering.quantities import plain
from marketmeter.metering.types import UsageAllocation

__all__ = ["MAX_DISTINCT_TAG_KEYS", "allocation_quantity_violations", "check_allocations"]

MAX_DISTINCT_TAG_KEYS = 5


def allocation_quantity_violations(allocations: Sequence[UsageAllocation], path: str) -> list[str]:
    """Validation messages for allocations giving both or neither quantity form."""
    return [
        f"{path}.{index}.member must specify exactly one of allocatedUsageQuantity and "
        "allocatedUsageQuantityAsDecimal"
        for index, allocation in enumerate(allocations, start=1)
        if (allocation.quantity is None) == (allocation.quantity_decimal is None)
    ]


def check_allocations(
    allocations: Sequence[UsageAllocation], quantity: Decimal, decimal: bool = False
) -> None:
    """Raise the AWS error if these allocations cannot split ``quantity``.

    ``decimal`` tells whether the record gave its quantity as a decimal string.
    """
    for allocation in allocations:
        if (allocation.quantity_decimal is not None) != decimal:
            expected = "AllocatedUsageQuantityAsDecimal" if decimal else "AllocatedUsageQuantity"
            raise InvalidUsageAllocationsException(
                f"Every usage allocation must use {expected}, like the usage quantity."
            )
    total = sum((allocation.amount for allocation in allocations), Decimal(0))
    if total != quantity:
        raise InvalidUsageAllocationsException(
            f"The sum of allocated usage quantities ({plain(total)}) is not equal to the usage "
            f"quantity ({plain(quantity)})."
        )
    seen: set[frozenset[tuple[str, str]]] = set()
    untagged = 0
    keys: set[str] = set()
    for allocation in allocations:
        if not allocation.tags:
            untagged += 1
            if untagged > 1:
                raise InvalidUsageAllocationsException(
                    "At most one usage allocation may have no tags."
                )
            continue
        allocation_keys = [tag.key for tag in allocation.tags]
        if len(set(allocation_keys)) != len(allocation_keys):
            raise InvalidTagException("A usage allocation has the same tag key more than once.")
        keys.update(allocation_keys)
        tag_set = frozenset((tag.key, tag.value) for tag in allocation.tags)
        if tag_set in seen:
            raise InvalidUsageAllocationsException(
                "Each usage allocation must have a unique set of tags."
            )
        seen.add(tag_set)
    if len(keys) > MAX_DISTINCT_TAG_KEYS:
        raise InvalidTagException(
            f"A usage record's allocations use {len(keys)} distinct tag keys; "
            f"the limit is {MAX_DISTINCT_TAG_KEYS}."
        )
