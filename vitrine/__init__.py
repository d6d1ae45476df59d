"""The composition root: the CLI and the wiring that builds the parts from settings."""
