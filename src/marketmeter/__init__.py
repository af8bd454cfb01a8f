"""marketmeter: the AWS Marketplace Metering Service, self-hosted.

Wire-compatible with the AWS SDKs (JSON 1.1, same shapes, errors and statuses), faithful to the
service's rules, durable (acknowledged only after commit). Start it with ``marketmeter serve``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
