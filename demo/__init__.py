"""The synthetic demo catalogue. Only the demo command (and tests) import it."""
