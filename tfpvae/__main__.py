"""``python -m tfpvae``: the same as the ``tfpvae`` command."""

import sys

from tfpvae.interfaces.cli import main

if __name__ == "__main__":
    sys.exit(main())
