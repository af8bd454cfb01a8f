"""``python -m marketmeter.healthcheck``: exit 0 if the local ``serve`` is healthy, else 1.

The container image's ``HEALTHCHECK``: it asks ``GET /_marketmeter/health`` on the address
``serve`` was given by the environment (``MARKETMETER_HOST``, ``MARKETMETER_PORT``), reaching a
server bound to every interface (``0.0.0.0`` or ``::``) through the loopback address. Needs no
curl in the image.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

from marketmeter.config import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["health_url", "main"]

_EVERY_INTERFACE = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def health_url(environment: Mapping[str, str]) -> str:
    """Where the server configured by ``environment`` answers its health check."""
    host = environment.get("MARKETMETER_HOST", DEFAULT_HOST)
    host = _EVERY_INTERFACE.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    port = environment.get("MARKETMETER_PORT", str(DEFAULT_PORT))
    return f"http://{host}:{port}/_marketmeter/health"


def main() -> int:
    url = health_url(os.environ)
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            status = int(answer.status)
    except OSError as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
