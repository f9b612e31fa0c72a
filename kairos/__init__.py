"""The application: the ``kairos`` command line, the daemon and the demo.

Libraries live in ``plan`` (the compiled contract), ``dsl`` (the language),
``engine`` (the runtime) and ``adapters`` (sources and channels); this package
wires them together for people: ``kairos check``, ``replay``, ``run``, ``demo``.
The daemon (``kairos run``) is here too because it recompiles scenarios while
it runs: configuration, units of state, snapshot files, hot reload with its
audit log, the HTTP endpoints and metrics, and the Kafka consumer group.
"""

from kairos._cli import main

__all__ = ["main"]
