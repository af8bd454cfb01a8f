"""The catalog the service meters against: sellers, products, buyers, agreements (spec §2)."""
