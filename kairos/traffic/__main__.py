"""``python -m kairos.traffic``: write generated traffic (and its reference folder)."""

import sys

from kairos.traffic import main

sys.exit(main())
