"""``python -m kairos`` is the ``kairos`` command."""

import sys

from kairos._cli import main

sys.exit(main())
