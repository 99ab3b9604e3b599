"""Entry point of ``python3 -m walsim`` (what ``tools/walsim-cli`` runs)."""

import sys

from walsim.cli import main

sys.exit(main())
