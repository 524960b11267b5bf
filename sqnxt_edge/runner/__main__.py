"""`python -m sqnxt_edge.runner ARGS`: the runner's command line from the package (boards run the .pyz)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
