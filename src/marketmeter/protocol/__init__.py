"""The wire edge: AWS JSON 1.1 in and out. Knows the format, knows no metering rule."""
