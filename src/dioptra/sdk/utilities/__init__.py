"""Helpers v0 entry points use: ``contexts``, ``logging``, ``decorators``, ``paths``."""
