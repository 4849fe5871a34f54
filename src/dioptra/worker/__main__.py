"""``python -m dioptra.worker``: see ``dioptra.worker.main``."""

from dioptra.processes import exit_now
from dioptra.worker.main import main

exit_now(main())  # its jobs reported, its interpreters closed: nothing left to tear down
