"""What the services need from the outside world, built once per server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dioptra.config import Settings
from dioptra.db import Database
from dioptra.services.tracking import Tracking
from dioptra.storage import ObjectStore

if TYPE_CHECKING:
    from dioptra.dispatch.base import Dispatcher


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    store: ObjectStore
    tracking: Tracking
    dispatcher: Dispatcher
    # The id of this server start given to its embedded workers (dispatch/embedded.py);
    # None when it runs none.
    embedded_instance: str | None = None
