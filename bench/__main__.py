"""``python -m bench`` (and ``make bench``): the benchmark runner."""

from bench._runner import main

raise SystemExit(main())
