"""The time-jump screen's defaults (``_screen``), apart from it: ``kairos --help`` shows them without loading
the engine the screen imports."""

#: ``--max-jump`` by default: an hour, beyond any feed's jitter and within a time-zone error
DEFAULT_MAX_JUMP_MS = 3_600_000
#: events after a jump that confirm it (a run of wild lines longer than this passes as a gap)
JUMP_CONFIRM = 4
