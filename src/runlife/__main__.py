"""``python -m runlife``: the ``runlife`` command."""

import sys

from runlife.cli import main

sys.exit(main())
