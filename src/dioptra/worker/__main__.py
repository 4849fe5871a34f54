"""``python -m dioptra.worker``: see ``dioptra.worker.main``."""

import sys

from dioptra.worker.main import main

sys.exit(main())
