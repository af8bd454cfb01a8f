"""The Agreement API's rules (docs/agreement-api.md): an agreement of the catalog as AWS
Marketplace's Agreement API shows it to its seller — status, terms, entitlements, search.

No HTTP, no SQL: the rules read the catalog snapshot through ``store.base`` and answer the
model's members as JSON-ready values; ``protocol`` carries them on the wire.
"""
