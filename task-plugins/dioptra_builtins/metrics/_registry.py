"""What the ``get_*_metric_list`` plugins share: a v0 request turned into named functions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def named_metrics(request: list[dict[str, str]], registry: Mapping[str, Callable],
                  kind: str) -> list[tuple[str, Callable]]:
    """``[{"name": ..., "func": ...}, ...]`` to ``[(name, function), ...]``.

    As in v0, a ``func`` the registry does not know is skipped with a warning (so a v0
    request naming a metric this testbed lacks still runs).
    """
    pairs = []
    for item in request:
        if item["func"] not in registry:
            log.warning("skipping the unknown %s metric %r (%s)", kind, item["func"],
                        item.get("name"))
            continue
        pairs.append((item["name"], registry[item["func"]]))
    return pairs
