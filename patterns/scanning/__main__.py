"""``python -m patterns.scanning``: the scanner without the rest of the package's commands."""

import sys

from patterns.scanning.cli import main

if __name__ == "__main__":  # importing this module (an import probe) runs nothing
    sys.exit(main())
