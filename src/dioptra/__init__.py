"""Dioptra-compatible testbed for the security of machine-learning models."""

__version__ = "0.1.0"
