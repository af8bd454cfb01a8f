"""RegisterUsage end to end: boto3 buyer clients (one session token per task) against a real
``marketmeter serve``; signatures verified with PyJWT against the published public keys.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.e2e.buyers import (
    ALICE_KEY,
    CAROL_KEY,
    DAVE_KEY,
    SELLER_KEY,
    ClockControl,
    admin,
    buyer_client,
)
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

ALICE_CONTAINER = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000005"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def frozen(server: ServerProcess) -> int:
    """The service clock frozen at a whole second a day ago; returns that epoch."""
    moment = int(time.time()) - 86400
    ClockControl(server.url).set(moment)
    return moment


def public_key(server: ServerProcess, version: int) -> str:
    status, pem = admin(server.url, "GET", f"/_marketmeter/keys/{version}")
    assert status == 200, pem
    assert isinstance(pem, str)
    return pem


def register(client: Any, version: int = 1, **params: Any) -> dict[str, Any]:
    response = dict(
        client.register_usage(ProductCode="prod-container", PublicKeyVersion=version, **params)
    )
    assert response.pop("ResponseMetadata")["HTTPStatusCode"] == 200
    return response


def refused(client: Any, product: str = "prod-container", version: int = 1) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        client.register_usage(ProductCode=product, PublicKeyVersion=version)
    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (
        response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
        == (response["Error"]["Code"])
    )
    return response["Error"]["Code"], response["Error"]["Message"]


def claims(signature: str, pem: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(signature, pem, algorithms=["PS256"])
    return decoded


def test_signature_verifies_with_the_published_key(server: ServerProcess, frozen: int) -> None:
    task = buyer_client(server.url, ALICE_KEY, session="task-1")

    response = register(task, Nonce="nonce-0001")
    pem = public_key(server, 1)
    shown = mm("keys", "show", "--db", server.db_url, cwd=server.db.parent)

    assert list(response) == ["Signature"]  # no PublicKeyRotationTimestamp: version 1 is current
    signature = response["Signature"]
    assert jwt.get_unverified_header(signature) == {"alg": "PS256", "typ": "JWT"}
    header = signature.split(".")[0]
    assert base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)) == (
        b'{"alg":"PS256","typ":"JWT"}'
    )
    assert claims(signature, pem) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "nonce-0001",
        "iat": frozen,
    }
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, pem, "")
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.endswith("-----END PUBLIC KEY-----\n")
    # Another key does not verify it.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(signature, public_key_of_a_rotation(server), algorithms=["PS256"])


def public_key_of_a_rotation(server: ServerProcess) -> str:
    status, rotated = admin(server.url, "POST", "/_marketmeter/keys/rotate")
    assert status == 201, rotated
    pem: str = rotated["publicKey"]
    return pem


def test_nonce_is_optional_and_iat_is_the_service_clock(server: ServerProcess, frozen: int) -> None:
    task = buyer_client(server.url, ALICE_KEY, session="task-1")
    clock = ClockControl(server.url)

    first = register(task)
    clock.advance(90)
    second = register(task, Nonce="")

    pem = public_key(server, 1)
    assert claims(first["Signature"], pem) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "iat": frozen,
    }
    assert claims(second["Signature"], pem) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "",
        "iat": frozen + 90,
    }


def test_key_versions_and_rotation(server: ServerProcess, frozen: int) -> None:
    task = buyer_client(server.url, ALICE_KEY, session="task-1")
    clock = ClockControl(server.url)
    register(task)  # version 1 exists from the first need on

    assert refused(task, version=2) == (
        "InvalidPublicKeyVersionException",
        "Public key version 2 is invalid.",
    )
    clock.advance(600)
    status, rotated = admin(server.url, "POST", "/_marketmeter/keys/rotate")
    assert status == 201
    assert rotated == {
        "version": 2,
        "createdAt": iso(frozen + 600),
        "retiredAt": None,
        "publicKey": public_key(server, 2),
    }
    clock.advance(60)

    current = register(task, 2, Nonce="n2")
    retired = register(task, 1, Nonce="n1")

    assert list(current) == ["Signature"]
    assert claims(current["Signature"], public_key(server, 2)) == {
        "productCode": "prod-container",
        "publicKeyVersion": 2,
        "nonce": "n2",
        "iat": frozen + 660,
    }
    assert claims(retired["Signature"], public_key(server, 1)) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "n1",
        "iat": frozen + 660,
    }
    rotation = retired["PublicKeyRotationTimestamp"]
    assert isinstance(rotation, datetime)
    assert rotation.timestamp() == frozen + 600
    assert refused(task, version=3) == (
        "InvalidPublicKeyVersionException",
        "Public key version 3 is invalid.",
    )
    status, listed = admin(server.url, "GET", "/_marketmeter/keys")
    assert status == 200
    assert [(k["version"], k["createdAt"], k["retiredAt"]) for k in listed["keys"]] == [
        (1, iso(frozen), iso(frozen + 600)),
        (2, iso(frozen + 600), None),
    ]
    assert admin(server.url, "GET", "/_marketmeter/keys/3") == (
        404,
        {"error": "no public key version 3", "field": "version"},
    )


SUSPEND_ALICE = f"""\
agreements:
  - buyer: "444455556666"
    product: prod-container
    state: suspended
    license_arn: {ALICE_CONTAINER}
    start: 2020-01-01T00:00:00Z
"""


def test_entitlement_is_checked_on_a_tasks_first_call_only(
    server: ServerProcess, frozen: int
) -> None:
    task_1 = buyer_client(server.url, ALICE_KEY, session="task-1")
    task_2 = buyer_client(server.url, ALICE_KEY, session="task-2")
    register(task_1)

    update = server.db.parent / "suspend.yaml"
    update.write_text(SUSPEND_ALICE, encoding="utf-8")
    applied = mm("catalog", "apply", str(update), "--db", server.db_url, cwd=server.db.parent)
    assert applied.returncode == 0, applied.stderr

    assert claims(register(task_1, Nonce="again")["Signature"], public_key(server, 1)) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "again",
        "iat": frozen,
    }
    not_entitled = (
        "CustomerNotEntitledException",
        "Customer 444455556666 is not entitled to product 'prod-container'.",
    )
    assert refused(task_2) == not_entitled
    assert refused(task_2) == not_entitled  # and again: a refused call registers nothing


def test_who_may_register(server: ServerProcess, frozen: int) -> None:
    carol = buyer_client(server.url, CAROL_KEY, session="task-1")  # suspended
    dave = buyer_client(server.url, DAVE_KEY, session="task-1")  # no agreement
    seller = buyer_client(server.url, SELLER_KEY, session="task-1")
    alice = buyer_client(server.url, ALICE_KEY, session="task-1")

    assert refused(carol) == (
        "CustomerNotEntitledException",
        "Customer 222233334444 is not entitled to product 'prod-container'.",
    )
    assert refused(dave) == (
        "CustomerNotEntitledException",
        "Customer 555566667777 is not entitled to product 'prod-container'.",
    )
    assert refused(seller) == (
        "CustomerNotEntitledException",
        "RegisterUsage must be signed with a buyer's credentials; access key "
        "AKIATESTSELLER000001 belongs to no buyer of the catalog (list the key under the "
        "buyer's access_keys).",
    )
    for product in ("prod-ami", "prod-legacy", "no-such-product"):
        assert refused(alice, product) == (
            "InvalidProductCodeException",
            f"Product code '{product}' is not a valid paid container product.",
        )


def test_keys_survive_a_restart(server: ServerProcess, frozen: int) -> None:
    task = buyer_client(server.url, ALICE_KEY, session="task-1")
    old = register(task, Nonce="before")["Signature"]
    pem = public_key(server, 1)

    server.restart()
    ClockControl(server.url).set(frozen + 5)
    task = buyer_client(server.url, ALICE_KEY, session="task-1")

    assert public_key(server, 1) == pem
    assert claims(old, public_key(server, 1))["nonce"] == "before"
    assert claims(register(task, Nonce="after")["Signature"], pem) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "after",
        "iat": frozen + 5,
    }
    assert refused(task, version=2)[0] == "InvalidPublicKeyVersionException"
