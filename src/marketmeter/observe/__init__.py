"""Watching a running marketmeter: Prometheus metrics (``metrics``, shared across worker
processes through ``multiprocess``), one structured log line per call (``logs``), and the
fan-out that hands each answered call to the journal, the metrics and the log (``calls``)."""
