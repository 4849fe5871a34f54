"""Name rules shared by experiments, queues and plugins."""

from __future__ import annotations

import re

from dioptra.services.errors import BadRequest

MAX_NAME_LENGTH = 255
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")
PLUGIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def slugify(text: str) -> str:
    """The original's normalisation: lower case, trimmed, spaces to dashes."""
    return text.lower().strip().replace(" ", "-")


def check_name(kind: str, name: str) -> str:
    """Slugify and validate an experiment or queue name."""
    slug = slugify(name)
    if not slug:
        raise BadRequest(f"The {kind} name must not be empty.")
    if len(slug) > MAX_NAME_LENGTH:
        raise BadRequest(f"The {kind} name is longer than {MAX_NAME_LENGTH} characters.")
    if _FORBIDDEN.search(slug):
        raise BadRequest(
            f"The {kind} name {name!r} contains a slash, backslash or control character."
        )
    return slug


def check_plugin_name(name: str) -> str:
    if not PLUGIN_NAME.match(name):
        raise BadRequest(
            f"The task plugin name {name!r} is not valid: it must be a Python identifier "
            "(letters, digits and underscores, not starting with a digit, at most 100 "
            "characters), because jobs import it as dioptra_custom.<name>."
        )
    return name
