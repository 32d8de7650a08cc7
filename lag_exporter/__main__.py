"""`python -m lag_exporter` is the `lag-exporter` command."""

import sys

from .cli import main

sys.exit(main())
