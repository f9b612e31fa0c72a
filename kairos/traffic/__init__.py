"""The traffic generator: synthetic operator events as JSON lines, deterministic from a seed.

``kairos demo`` replays generated days of it and ``python -m kairos.traffic``
writes them (province days of mixed traffic — over months, the value-added
services' use and the bills change — or the benchmark workload W1) with
their reference folder; the benchmarks in ``bench/`` use it for their inputs.
Events are numpy columns written by a vectorised JSON-lines formatter. It is
part of the application: the application may use it, the libraries
(``dsl``, ``plan``, ``engine``, ``adapters``) never do, and it imports nothing
else of Kairos.
"""

from kairos.traffic._generator import DEFAULT_START_MS, MIXES, main, make_reference, write

__all__ = ["DEFAULT_START_MS", "MIXES", "main", "make_reference", "write"]
