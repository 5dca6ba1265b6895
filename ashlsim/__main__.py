"""``python -m ashlsim``: the command line (``ashlsim.cli``)."""

import sys

from .cli import main

sys.exit(main())
