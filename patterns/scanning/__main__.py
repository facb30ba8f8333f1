"""``python -m patterns.scanning``: the scanner without the rest of the package's commands."""

import sys

from patterns.scanning.cli import main

sys.exit(main())
