"""``python -m marketmeter.healthcheck``: the image's HEALTHCHECK finds the server from the
environment ``serve`` reads."""

from __future__ import annotations

import os
import subprocess
import sys

from marketmeter.healthcheck import health_url
from tests.ports import free_port


def test_the_health_url_follows_the_serve_environment() -> None:
    assert health_url({}) == "http://127.0.0.1:8686/_marketmeter/health"
    assert health_url({"MARKETMETER_HOST": "0.0.0.0", "MARKETMETER_PORT": "9000"}) == (
        "http://127.0.0.1:9000/_marketmeter/health"
    )
    assert health_url({"MARKETMETER_HOST": "::"}) == "http://[::1]:8686/_marketmeter/health"
    assert health_url({"MARKETMETER_HOST": "10.0.0.7"}) == (
        "http://10.0.0.7:8686/_marketmeter/health"
    )


def test_nothing_listening_is_unhealthy_in_one_line() -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "marketmeter.healthcheck"],
        capture_output=True,
        text=True,
        env={**os.environ, "MARKETMETER_HOST": "0.0.0.0", "MARKETMETER_PORT": str(port)},
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"unhealthy: http://127.0.0.1:{port}/_marketmeter/health: "
        "<urlopen error [Errno 111] Connection refused>\n"
    )
