"""``python -m marketmeter``: the same as the ``marketmeter`` command."""

from marketmeter.cli import main

main(prog_name="marketmeter")
