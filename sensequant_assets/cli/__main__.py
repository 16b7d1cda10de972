"""``python -m sensequant_assets.cli``: the ``sensequant`` command where its script is not on
``PATH`` (a fresh interpreter in a test or a benchmark)."""

import sys

from sensequant_assets.cli import main

sys.exit(main())
