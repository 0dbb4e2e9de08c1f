"""``python -m tfpvae``: the same as the ``tfpvae`` command."""

import sys

from tfpvae.cli import main

sys.exit(main())
