"""The one way an operator action is refused: ``Refusal(field, message, status)``.

Operator actions (the catalog, agreements and their lifecycle, tokens, keys, the clock, fault
rules, quotas, the journal, usage, snapshots, reset) come from the admin API, the command line
or the pytest plugin, never from an AWS SDK; what they refuse is not an AWS error
(``marketmeter.errors``) but a ``Refusal``. The rules and the operator service raise it; the
admin API answers it as ``{"error": message, "field": field}`` with ``status``, the command line
as one line naming the option at fault and a non-zero exit.

``status`` says what kind of refusal it is: 400 the input is invalid, 404 it names nothing,
409 it conflicts with the stored state (the message says how). A leaf: imports nothing of ours.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Refusal", "RefusalKind"]

RefusalKind = Literal["invalid", "not-found", "conflict"]

_KINDS: dict[int, RefusalKind] = {404: "not-found", 409: "conflict"}


class Refusal(ValueError):
    """An operator action refused: ``field`` names the input at fault (None: no single input
    is), ``message`` says what is wrong, ``status`` is the admin API's HTTP status."""

    def __init__(self, field: str | None, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status

    @property
    def kind(self) -> RefusalKind:
        """``invalid`` (400 and any other 4xx), ``not-found`` (404) or ``conflict`` (409)."""
        return _KINDS.get(self.status, "invalid")

    @classmethod
    def not_found(cls, field: str | None, message: str) -> Refusal:
        return cls(field, message, 404)

    @classmethod
    def conflict(cls, field: str | None, message: str) -> Refusal:
        return cls(field, message, 409)

    def renamed(self, field: str | None, prefix: str = "") -> Refusal:
        """The same refusal on another field (e.g. a rule's key inside a list), its message
        prefixed with ``prefix``."""
        return Refusal(field, prefix + self.message, self.status)
