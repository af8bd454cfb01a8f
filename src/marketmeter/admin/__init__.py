"""The operator's surface: health and usage inspection over HTTP and the CLI."""
