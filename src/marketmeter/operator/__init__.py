"""The operator service layer: every operator action (catalog, agreements and their
lifecycle, tokens, keys, clock, faults, quotas, journal, usage, snapshots, reset) in one place.

The admin API (``admin``), the command line (``cli``) and the pytest plugin are front ends of
this layer and decide nothing themselves; a refusal is a ``marketmeter.refusal.Refusal``.
"""
