"""The catalog the service meters against: sellers, products, buyers, agreements
(docs/catalog.md)."""
