"""The seller's test bench: fault injection, AWS quotas and the request journal."""
