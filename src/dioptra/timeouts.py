"""Job timeout strings: ``<digits>[d|h|m|s]`` (RQ's format), e.g. ``24h``, ``90m``, ``30s``."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"(\d+)([dhms]?)", re.IGNORECASE | re.ASCII)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}


def parse_timeout(text: str) -> int:
    """Return the timeout in seconds; bare digits are seconds, the unit is case-insensitive.

    v0 stored any string and then ignored it (every job got 24 h); we validate and enforce.
    """
    match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"timeout {text!r} is not of the form <digits>[d|h|m|s], e.g. 24h, 90m, 30s"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
