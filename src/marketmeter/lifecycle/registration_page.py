"""Delivering a registration token to a seller's registration URL, as the buyer's browser does.

AWS Marketplace answers a subscription by sending the buyer's browser to the product's
registration URL with a form POST (``application/x-www-form-urlencoded``) carrying
``x-amzn-marketplace-token`` and, for free trials, ``x-amzn-marketplace-offer-type=free-trial``
(docs/saas-registration.md). ``deliver`` sends that POST with httpx, does not follow redirects
(a seller's page usually answers 302 to its sign-up form) and reports what the seller
answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from marketmeter import __version__

__all__ = ["Delivery", "deliver", "registration_form"]

_BODY_PREVIEW = 2000


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to the POST: the seller's status, redirect and body, or the error."""

    url: str
    form: dict[str, str]
    status: int | None = None
    reason: str = ""
    location: str | None = None
    body: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


def registration_form(token: str, offer_type: str | None = None) -> dict[str, str]:
    form = {"x-amzn-marketplace-token": token}
    if offer_type is not None:
        form["x-amzn-marketplace-offer-type"] = offer_type
    return form


def deliver(url: str, token: str, offer_type: str | None = None, timeout: float = 10.0) -> Delivery:
    """POST the registration form of ``token`` (and its offer type) to ``url``; never raises
    for network trouble."""
    form = registration_form(token, offer_type)
    try:
        response = httpx.post(
            url,
            data=form,
            follow_redirects=False,
            timeout=timeout,
            headers={"User-Agent": f"marketmeter/{__version__} (simulated buyer browser)"},
        )
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Delivery(url, form, error=f"{type(error).__name__}: {error}")
    return Delivery(
        url,
        form,
        status=response.status_code,
        reason=response.reason_phrase,
        location=response.headers.get("location"),
        body=response.text[:_BODY_PREVIEW],
    )
