"""``python -m kairos`` is the ``kairos`` command."""

from kairos._cli import run

run()
