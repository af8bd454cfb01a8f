"""The container image (Containerfile), built and run for real with Debian's podman: its
settings, the environment and the catalog directory configuring it, boto3 metering against
it, SIGTERM draining the call in flight, and the ledger on the ``/data`` volume outliving the
container. One base image and one image serve every test (tests/container/podman.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from marketmeter.testing.admin_client import MarketmeterAdmin
from tests.container.podman import Podman, PodmanMissing, find_tool
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG
from tests.e2e.wire_records import record
from tests.ports import free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "running-in-ci.md"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    try:
        return Podman(tmp_path_factory.mktemp("podman"))
    except PodmanMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The image of this checkout's Containerfile, on the Debian base image."""
    name = "localhost/marketmeter-ci:test"
    base = podman.base_image()
    previous = podman.run("image", "inspect", "--format", "{{.Id}}", name, check=False).strip()
    podman.run(
        "build",
        "--quiet",
        "--format",
        "docker",  # keeps HEALTHCHECK (OCI image configs have no health check)
        "--network",
        "host",
        "--build-arg",
        f"BASE={base}",
        "--tag",
        name,
        "--file",
        str(ROOT / "Containerfile"),
        str(ROOT),
        timeout=600,
    )
    current = podman.run("image", "inspect", "--format", "{{.Id}}", name).strip()
    if previous and current != previous:
        podman.run("rmi", previous, check=False)  # the image of an earlier checkout
    # the build stages of earlier checkouts (the newest is the next build's cache); cleanup
    # only: podman 4.3 may fail to list while an image it just removed is still being let go
    stages = podman.run(
        "images",
        "--filter",
        "dangling=true",
        "--filter",
        "label=io.marketmeter.stage=build",
        "--format",
        "{{.ID}}",
        check=False,
    ).split()
    for stage in stages[1:]:
        podman.run("rmi", stage, check=False)
    return name


@pytest.fixture
def volume(podman: Podman) -> Iterator[str]:
    name = f"marketmeter-test-{uuid.uuid4().hex[:12]}"
    podman.run("volume", "create", name)
    yield name
    podman.run("volume", "rm", "--force", name, check=False)


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """A catalog directory the container's user (not root) can read."""
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "10-test.yaml").write_text(CATALOG.read_text())
    directory.chmod(0o755)
    (directory / "10-test.yaml").chmod(0o644)
    return directory


class Container:
    """One ``podman run -d`` of the image, on the host's network at a free port of 127.0.0.1
    (only loopback traffic is allowed on these machines)."""

    def __init__(self, podman: Podman, image: str, volume: str, catalog_dir: Path) -> None:
        self.podman, self.image, self.volume, self.catalog_dir = podman, image, volume, catalog_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = ""

    def start(self) -> Container:
        self.name = f"marketmeter-test-{uuid.uuid4().hex[:12]}"
        self.podman.run(
            "run",
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--env",
            "MARKETMETER_HOST=127.0.0.1",
            "--env",
            f"MARKETMETER_PORT={self.port}",
            "--volume",
            f"{self.volume}:/data",
            "--volume",
            f"{self.catalog_dir}:/catalog:ro",
            self.image,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_marketmeter/health", timeout=1):
                    return self
            except OSError:
                if self.state()["Status"] == "exited":
                    break
                time.sleep(0.2)
        raise AssertionError(f"the container did not become healthy:\n{self.logs()}")

    def state(self) -> dict[str, Any]:
        return dict(
            json.loads(self.podman.run("inspect", "--format", "json", self.name))[0]["State"]
        )

    def logs(self) -> str:
        return self.podman.run("logs", self.name, check=False)

    def exec(self, *command: str) -> str:
        return self.podman.run("exec", self.name, *command)

    def remove(self) -> None:
        if self.name:
            self.podman.run("rm", "--force", "--volumes", "--time", "0", self.name, check=False)


@pytest.fixture
def containers(podman: Podman, image: str, volume: str, catalog_dir: Path) -> Iterator[Any]:
    made: list[Container] = []

    def start() -> Container:
        made.append(Container(podman, image, volume, catalog_dir))
        return made[-1].start()

    yield start
    for container in made:
        container.remove()


def test_the_image_is_configured_for_containers(podman: Podman, image: str) -> None:
    inspected = json.loads(podman.run("image", "inspect", image))[0]
    config = inspected["Config"]

    assert config["User"] == "marketmeter"
    assert config["ExposedPorts"] == {"8686/tcp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["WorkingDir"] == "/data"
    assert config["Entrypoint"] == ["marketmeter"]
    assert config["Cmd"] == ["serve"]
    assert config["StopSignal"] == "SIGTERM"
    assert {
        "MARKETMETER_HOST=0.0.0.0",
        "MARKETMETER_PORT=8686",
        "MARKETMETER_DB=/data/marketmeter.db",
        "MARKETMETER_CATALOG_DIR=/catalog",
    } <= set(config["Env"])
    assert inspected["Healthcheck"]["Test"] == ["CMD", "python", "-m", "marketmeter.healthcheck"]


def test_meters_drains_on_sigterm_and_keeps_the_ledger_on_its_volume(
    podman: Podman, containers: Any, catalog_dir: Path
) -> None:
    now = int(time.time()) - 60
    first = containers()
    podman.run("healthcheck", "run", first.name)  # the image's HEALTHCHECK, run once
    assert first.state()["Health"]["Status"] == "healthy"
    assert first.exec("id", "-un").strip() == "marketmeter"
    assert first.exec("cat", "/proc/1/cmdline").split("\0")[:3] == [
        "/opt/marketmeter/bin/python3",
        "/opt/marketmeter/bin/marketmeter",
        "serve",
    ]
    assert (
        "  catalog: /catalog (1 file): 2 seller(s), 6 product(s), 7 buyer(s), 16 agreement(s)"
        in first.logs().splitlines()
    )

    client = make_client(first.url)
    answer = client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record(now)])
    assert [r["Status"] for r in answer["Results"]] == ["Success"]

    # SIGTERM while a call is in its 1.5 s of injected latency: it is answered and committed,
    # and serve (PID 1) exits 0.
    admin = MarketmeterAdmin(first.url)
    admin.faults.latency(1500)
    admin.close()
    in_flight: list[Any] = []
    caller = threading.Thread(
        target=lambda: in_flight.append(
            client.batch_meter_usage(
                ProductCode="prod-legacy", UsageRecords=[record(now, "cust-bob", quantity=2)]
            )
        )
    )
    caller.start()
    time.sleep(0.5)
    stopping = time.monotonic()
    podman.run("kill", "--signal", "TERM", first.name)
    assert podman.run("wait", first.name) == "0\n"
    stopped_after = time.monotonic() - stopping
    caller.join(timeout=10)
    assert [r["Status"] for r in in_flight[0]["Results"]] == ["Success"]
    assert stopped_after < 5

    # A new container on the same volume finds both records.
    first.remove()
    second = containers()
    admin = MarketmeterAdmin(second.url)
    usage = admin.usage(product="prod-legacy")
    admin.close()
    assert sorted((r["customerIdentifier"], r["quantity"]) for r in usage) == [
        ("cust-alice", 1),
        ("cust-bob", 2),
    ]
    assert second.exec("stat", "--format", "%U %a", "/data/marketmeter.db") == (
        "marketmeter 600\n"
    )  # only its owner reads it
    podman.run("stop", "--time", "30", second.name)
    assert second.state()["ExitCode"] == 0


@pytest.fixture(scope="module")
def docker_socket(podman: Podman) -> Iterator[str]:
    """podman's Docker-compatible API (``podman system service``) on a socket of its own."""
    socket = podman.work / "podman.sock"
    command = [podman.podman, "--runtime", podman.runc, "system", "service", "--time=0"]
    service = subprocess.Popen(
        [*command, f"unix://{socket}"],
        env=podman.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not socket.exists():
            assert service.poll() is None, "podman system service exited"
            assert time.monotonic() < deadline, "podman system service made no socket"
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(timeout=15)


def test_the_guides_testcontainers_snippet_runs_against_podmans_docker_api(
    podman: Podman, image: str, docker_socket: str
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    snippet = next(block for block in blocks if "testcontainers" in block)
    podman.run("tag", image, "localhost/marketmeter:latest")  # the name the guide builds
    try:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", snippet],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "DOCKER_HOST": docker_socket,
                "TESTCONTAINERS_RYUK_DISABLED": "true",  # its image cannot be pulled here
                # this CI machine is a container itself (/.dockerenv): reach the published port
                # on the host's loopback, as outside a container
                "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
                "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
            },
            timeout=120,
            check=False,
        )
    finally:
        podman.run("untag", "localhost/marketmeter:latest", "localhost/marketmeter:latest")
    assert (result.returncode, result.stdout) == (0, "Success\n"), result.stderr


# The seller's app of the compose recipe, played by the marketmeter image itself (botocore is
# in it): it meters once through the endpoint compose gives it and prints the status. It
# retries while marketmeter starts: podman-compose 1.0.3 ignores depends_on's condition.
_APP = """
import time, botocore.session
client = botocore.session.get_session().create_client("meteringmarketplace")
for attempt in range(100):
    try:
        answer = client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[
            {"Timestamp": int(time.time()) - 60, "CustomerIdentifier": "cust-alice",
             "Dimension": "users", "Quantity": 1}])
        break
    except Exception:
        time.sleep(0.2)
print(answer["Results"][0]["Status"])
"""


def test_the_guides_compose_file_runs_the_app_beside_marketmeter(
    podman: Podman, image: str, tmp_path: Path, catalog_dir: Path
) -> None:
    try:
        compose_bin = find_tool("podman-compose")
    except PodmanMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    compose = yaml.safe_load(next(block for block in blocks if "service_healthy" in block))
    marketmeter, app = compose["services"]["marketmeter"], compose["services"]["app"]
    del marketmeter["ports"]  # 8686 on the host may be taken; the app uses compose's network
    marketmeter["image"] = app["image"] = image
    app["entrypoint"] = ["python", "-c", _APP]
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(compose))
    catalog_dir.rename(tmp_path / "catalog")  # the recipe's ./catalog
    project = f"mmtest{uuid.uuid4().hex[:10]}"
    command = [compose_bin, "--project-name", project, "--podman-path", podman.podman]
    command += ["--podman-args", f"--runtime {podman.runc}"]

    def compose_run(*args: str) -> None:
        result = subprocess.run(
            [*command, *args],
            cwd=tmp_path,
            env=podman.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"podman-compose {args}:\n{result.stdout}{result.stderr}"

    compose_run("up", "--detach")
    try:
        assert podman.run("wait", f"{project}_app_1", timeout=60) == "0\n"
        assert podman.run("logs", f"{project}_app_1") == "Success\n"
        logs = podman.run("logs", f"{project}_marketmeter_1").splitlines()
        assert (
            "  catalog: /catalog (1 file): 2 seller(s), 6 product(s), 7 buyer(s), "
            "16 agreement(s)" in logs
        )
    finally:
        names = podman.run(
            "ps",
            "--all",
            "--filter",
            f"label=io.podman.compose.project={project}",
            "--format",
            "{{.Names}}",
            check=False,
        ).split()
        volumes = (
            podman.run(
                "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", *names, check=False
            ).split()
            if names
            else []
        )
        compose_run("down", "--volumes")
        for volume_name in volumes:  # the app's anonymous /data too
            podman.run("volume", "rm", "--force", volume_name, check=False)
        podman.run("network", "rm", "--force", f"{project}_default", check=False)
