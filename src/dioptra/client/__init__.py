"""The Python client of the testbed: ``from dioptra.client import DioptraClient``."""

from dioptra.client._client import DioptraClient

__all__ = ["DioptraClient"]
