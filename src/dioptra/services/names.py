"""Name and text rules shared by experiments, queues, plugins and the API's inputs."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dioptra.services.errors import BadRequest

MAX_NAME_LENGTH = 255
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")
# A code point in the surrogate range is always a lone surrogate in a Python str: it
# cannot be encoded as UTF-8, so no database (nor a JSON answer) can hold it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
PLUGIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on every database, or None if it can.

    PostgreSQL refuses NUL in text; nothing can encode a lone surrogate (JSON lets a
    client send one as an escape, ``"\\ud800"``).
    """
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return "contains a lone surrogate (not valid Unicode)"


def check_text(field: str, value: str) -> str:
    """A 400 naming ``field`` when ``value`` cannot be stored (see text_problem)."""
    problem = text_problem(value)
    if problem:
        raise BadRequest(f"The field '{field}' {problem}.")
    return value


def nested_text_problem(value: object) -> str | None:
    """``text_problem`` of the first string in a JSON-like value (keys included)."""
    if isinstance(value, str):
        return text_problem(value)
    items: list = []
    if isinstance(value, dict):
        items = [part for pair in value.items() for part in pair]
    elif isinstance(value, list | tuple):
        items = list(value)
    for item in items:
        problem = nested_text_problem(item)
        if problem:
            return problem
    return None


def printable_nested(value: object) -> object:
    """``printable`` applied to every string of a JSON-like value (keys included)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_nested(k): printable_nested(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_nested(item) for item in value]
    return value


def printable(text: str) -> str:
    """Free text (a job's output, a failure reason) kept as it came, except what no
    database can store: NUL and lone surrogates become U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def flush_named(session: Session, kind: str) -> None:
    """Write a new or renamed row whose name must be unique among live rows.

    The check before the write cannot see a concurrent request's row that is not yet
    committed; the unique index can, and its refusal is the same 400.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        raise BadRequest(name_taken(kind)) from exc


def name_taken(kind: str) -> str:
    return (f"The {kind} name on the registration form already exists. "
            "Please select another and resubmit.")


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
    problem = text_problem(slug)
    if problem:  # a lone surrogate: NUL was refused above
        raise BadRequest(f"The {kind} name {problem}.")
    return slug


def check_plugin_name(name: str) -> str:
    if not PLUGIN_NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise BadRequest(
            f"The task plugin name {shown!r} is not valid: it must be a Python identifier "
            "(letters, digits and underscores, not starting with a digit, at most 100 "
            "characters), because jobs import it as dioptra_custom.<name>."
        )
    return name
