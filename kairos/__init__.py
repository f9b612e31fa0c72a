"""The application: the ``kairos`` command line and the demo.

Libraries live in ``plan`` (the compiled contract), ``dsl`` (the language),
``engine`` (the runtime) and ``adapters`` (sources and channels); this package
wires them together for people: ``kairos check``, ``replay``, ``run``, ``demo``.
"""

from kairos._cli import main

__all__ = ["main"]
