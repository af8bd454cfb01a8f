"""Each error's traits (``throttling``, ``retryable``) are what the AWS SDKs do with it: checked
against botocore's own standard-mode retry conditions, and against the limits table of
``config.ConnectionLimits`` (its "SDKs retry" column)."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import standard

from marketmeter import errors
from marketmeter.config import ConnectionLimits

ERRORS: list[type[errors.AwsError]] = [
    cls
    for cls in (getattr(errors, name) for name in errors.__all__)
    if isinstance(cls, type) and issubclass(cls, errors.AwsError)
]


def botocore_context(error: type[errors.AwsError]) -> standard.RetryContext:
    """The first attempt of a BatchMeterUsage call answered with ``error``, as botocore's
    retry handler sees it."""
    model = botocore.session.get_session().get_service_model("meteringmarketplace")
    response = AWSResponse("https://mm", error.http_status, {}, None)
    parsed: dict[str, Any] = {"Error": {"Code": error.code, "Message": "m"}}
    return standard.RetryContext(
        attempt_number=1,
        operation_model=model.operation_model("BatchMeterUsage"),
        parsed_response=parsed,
        http_response=response,
    )


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
def test_retryable_is_what_botocore_retries(error: type[errors.AwsError]) -> None:
    context = botocore_context(error)
    assert error.retryable is standard.StandardRetryConditions().is_retryable(context)
    assert error.throttling is standard.ThrottledRetryableChecker().is_retryable(context)


def test_the_retryable_errors() -> None:
    assert {e.code for e in ERRORS if e.retryable} == {
        "InternalServerException",  # the Agreement API's 500
        "InternalServiceErrorException",
        "RequestTimeoutException",
        "ServiceUnavailableException",
        "ThrottlingException",
    }
    assert {e.code for e in ERRORS if e.throttling} == {"ThrottlingException"}


def test_the_limits_table_says_what_the_traits_say() -> None:
    """Every row of the table naming an error: its status is the error's, and "SDKs retry"
    is its ``retryable``."""
    table = ConnectionLimits.__doc__ or ""
    rows = re.findall(r"^\s*``\w+``,?\s+(\d{3})\s+``(\w+)``\s+(yes|no)\s*$", table, re.M)
    assert len(rows) == 4, table
    for status, code, retried in rows:
        error = getattr(errors, code)
        assert (error.http_status, error.retryable) == (int(status), retried == "yes"), code
