"""Watching a running marketmeter: Prometheus metrics (``metrics``, kept in the one process
that records them: ``single_process``), one structured log line per call (``logs``), and the
fan-out that hands each answered call to the journal, the metrics and the log (``calls``)."""
