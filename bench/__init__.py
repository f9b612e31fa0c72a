"""Benchmarks: Kairos measured side by side with what a team would write instead.

``python -m bench`` runs W1 (one scenario, Kairos against the hand-written
loops of ``baseline``) and W2 (the whole catalogue over province traffic, one
and two workers, state per subscriber, live latency), prints a table and
writes JSON to ``bench/results/``. ``kairos.traffic`` generates the inputs.
"""
