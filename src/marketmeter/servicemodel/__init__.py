"""botocore's service models, the single source of truth of every shape, constraint and error
name: loaded once (``spec``) and compiled into validators (``validation``). Read by the wire
layer (``protocol``) and by the catalog loader (entries checked against the same constraints);
imports nothing of ours but ``errors``."""
