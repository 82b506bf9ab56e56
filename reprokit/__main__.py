"""``python -m reprokit`` is the ``reprokit`` command."""

import sys

from reprokit.cli import main

sys.exit(main())
