"""GetAgreementEntitlements: the entitlement an agreement grants, one per agreement.

The one place the Agreement API learns what a buyer is entitled to: the agreement's product
(its entity id and type), its License Manager license (the LicenseArn the Metering and
Entitlement Services name) and whether it is provisioned now (``status.entitlement_status``,
metering's rule). The dimension values of the entitlement are GetEntitlements' (the
Entitlement Service); this list carries none, as AWS's does not. No registration token: AWS
gives one to the acceptor only (docs/agreement-api.md).
"""

from __future__ import annotations

from typing import Any

from marketmeter.agreements.status import entitlement_status
from marketmeter.catalog.model import Agreement, Product, ProductKind, product_id_for

__all__ = ["RESOURCE_TYPES", "agreement_entitlements", "resource_of"]

# The model's AgreementResourceType for each kind of product.
RESOURCE_TYPES = {
    ProductKind.SAAS: "SaaSProduct",
    ProductKind.AMI: "AmiProduct",
    ProductKind.CONTAINER: "ContainerProduct",
}
# EntitlementType: the kind of entitlement (a License Manager license).
ENTITLEMENT_TYPE = "License"


def resource_of(product: Product) -> dict[str, str]:
    return {"id": product_id_for(product.product_code), "type": RESOURCE_TYPES[product.kind]}


def agreement_entitlements(
    product: Product, agreement: Agreement, now: float
) -> list[dict[str, Any]]:
    """The agreement's entitlements at ``now`` (``AgreementEntitlement`` members)."""
    status, reason = entitlement_status(agreement, now)
    return [
        {
            "resource": resource_of(product),
            "type": ENTITLEMENT_TYPE,
            "status": status,
            "statusReasonCode": reason,
            "licenseArn": agreement.license_arn,
        }
    ]
