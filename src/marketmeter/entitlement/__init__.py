"""The rules of the Marketplace Entitlement Service (GetEntitlements,
docs/entitlement-service.md): which agreements entitle which buyer to what, filtered and
paged; no HTTP, no SQL."""
