"""Job timeout strings: ``<digits>[d|h|m|s]`` (RQ's format), e.g. ``24h``, ``90m``, ``30s``."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"(\d+)([dhms]?)", re.IGNORECASE | re.ASCII)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}
# The longest timeout a job may ask for (documented in the README). Far beyond any real
# job; it keeps deadlines inside the calendar and the seconds inside a 32-bit column.
MAX_TIMEOUT_S = 365 * 86400


def parse_timeout(text: str) -> int:
    """Return the timeout in seconds; bare digits are seconds, the unit is case-insensitive.

    v0 stored any string and then ignored it (every job got 24 h); we validate and enforce.
    """
    match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
    digits = match.group(1).lstrip("0") if match else ""
    if not digits:
        raise ValueError(
            f"timeout {text!r} is not of the form <digits>[d|h|m|s], e.g. 24h, 90m, 30s"
        )
    # Compared before converting: a number of thousands of digits is refused cheaply.
    seconds = int(digits) * _UNIT_SECONDS[match.group(2).lower()] if len(digits) <= 12 else None
    if seconds is None or seconds > MAX_TIMEOUT_S:
        raise ValueError(f"timeout {text!r} is longer than the maximum, 365d")
    return seconds
