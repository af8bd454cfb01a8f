"""docs/running-in-ci.md and the README's options table: every YAML recipe parses, the
compose file puts the seller's app beside marketmeter, and the options table names each
``serve`` option's environment variable. (The testcontainers snippet is run for real by
tests/container; the image's behaviour the recipes rely on is checked there too.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.e2e.test_serve_environment import SERVE_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "running-in-ci.md").read_text()


def yaml_blocks() -> list[object]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", GUIDE, re.DOTALL)]


def test_the_recipes_are_compose_github_actions_and_gitlab_ci() -> None:
    compose, github, gitlab = yaml_blocks()

    assert isinstance(compose, dict)
    assert compose["services"]["marketmeter"]["volumes"][0] == "marketmeter-data:/data"
    assert compose["services"]["app"]["depends_on"] == {
        "marketmeter": {"condition": "service_healthy"}
    }
    assert compose["services"]["app"]["environment"]["AWS_ENDPOINT_URL_MARKETPLACE_METERING"] == (
        "http://marketmeter:8686"
    )
    assert isinstance(github, dict)
    service = github["jobs"]["test"]["services"]["marketmeter"]
    assert service["ports"] == ["8686:8686"]
    assert '--health-cmd "python -m marketmeter.healthcheck"' in service["options"]
    assert isinstance(gitlab, dict)
    assert gitlab["test"]["services"][0]["alias"] == "marketmeter"
    assert gitlab["test"]["variables"]["AWS_ENDPOINT_URL_MARKETPLACE_METERING"] == (
        "http://marketmeter:8686"
    )


def test_the_options_table_names_every_environment_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| option | environment |") :].split("\n\n")[0]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    named = {
        re.sub(r"`--([a-z-]+).*", r"\1", option.strip()): variable.strip().strip("`")
        for option, variable in rows
    }
    assert sorted(named.values()) == sorted(SERVE_ENVIRONMENT.values())
    assert all(v == "MARKETMETER_" + o.upper().replace("-", "_") for o, v in named.items())
