"""Kairos: the application and, beneath it, the libraries it is built from.

The libraries are subpackages with one direction of dependency,
``kairos.dsl → kairos.plan ← kairos.engine`` (``kairos.adapters`` imports none of
them, and the engine does not import it): ``plan`` is the
compiled contract, ``dsl`` the language, ``engine`` the runtime and ``adapters``
the sources, channels and delivery (a channel plugin writes
``from kairos.adapters import Channel``). The modules of this package itself
are the application that wires them together for people: ``kairos check``,
``replay``, ``run``, ``demo``. Importing a library does not import the
application: ``main`` is loaded when it is first called.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kairos`` command line (``kairos._cli.main``), imported only when run."""
    from kairos._cli import main as cli_main

    return cli_main(argv)


__all__ = ["main"]
