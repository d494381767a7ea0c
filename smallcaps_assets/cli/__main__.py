"""``python -m smallcaps_assets.cli``: the same as the ``smallcaps`` command."""

import sys

from smallcaps_assets.cli import main

sys.exit(main())
