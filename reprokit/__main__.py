"""``python -m reprokit`` is the ``reprokit`` command."""

import sys

from reprokit.cli.app import main

sys.exit(main())
