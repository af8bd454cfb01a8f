"""The ``aws`` CLI command that makes a journaled call again: the operation's CLI name (from
botocore's, as the CLI derives it) and the request body as ``--cli-input-json``, which takes the
API's own shapes (docs/dashboard.md, "Journal")."""

from __future__ import annotations

import shlex
from typing import Any

import orjson
from botocore import xform_name

__all__ = ["AWS_CLI_SERVICE", "aws_cli_command"]

AWS_CLI_SERVICE = "meteringmarketplace"


def aws_cli_command(entry: dict[str, Any], endpoint: str) -> str | None:
    """The command for a journal entry (``entry_json``'s value), sent to ``endpoint``; None
    when the call named no operation or its body was not a JSON object."""
    operation = entry.get("operation")
    request = entry.get("request")
    if not isinstance(operation, str) or not isinstance(request, dict):
        return None
    body = orjson.dumps(request).decode()
    return shlex.join(
        [
            "aws",
            AWS_CLI_SERVICE,
            xform_name(operation, "-"),
            "--endpoint-url",
            endpoint,
            "--cli-input-json",
            body,
        ]
    )
