"""``python -m kkp_readiness`` is the ``kkp-readiness`` command."""

import sys

from kkp_readiness.cli import main

sys.exit(main())
