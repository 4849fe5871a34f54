"""Errors of the artifact plugins."""


class UnsupportedDataFrameFileFormatError(ValueError):
    """The requested data-frame file format is not one of the supported ones."""
