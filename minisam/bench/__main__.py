"""``python -m minisam.bench``: the same report as ``python -m minisam bench``."""

import sys

from .report import main

sys.exit(main())
