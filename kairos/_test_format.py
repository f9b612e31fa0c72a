"""The ``kairos test`` file format, as ``kairos test --help`` teaches it: kept apart from the runner
(``kairos._scenario_tests``) so that building the command line imports nothing heavy."""

SUFFIX = ".test.toml"
EVENTS_SUFFIX = ".events.jsonl"
#: why a completed pattern was not sent: the scenario's own gates, then the contact policy's verdicts
#: (``held``: still waiting for an arbitration window or a capacity queue when the input ended)
REASONS = ("cooldown", "once", "audience", "during", "exclude", "arbitration", "no_repeat", "exclusive",
           "quiet", "cap", "control", "held")

FORMAT = """\
A test is a file NAME.test.toml; its recorded input is NAME.events.jsonl beside
it (JSON lines sorted by ts, as kairos replay reads them). Paths in the file are
relative to it. Times are local (tz, default Asia/Shanghai): "YYYY-MM-DD HH:MM",
seconds optional, a weekday after the date allowed ("2026-11-23 Mon 12:00").

  # scenarios/tests/low_balance.test.toml
  description = "Li, prepaid and likely to churn, runs low"
  scenarios = [".."]              # files or folders (every *.kairos below); required
  reference = "../reference"      # optional: the reference data folder
  policy = false                  # optional: a policy file, or false to leave out
                                  # a policy among the scenario files
  only = ["low_balance_10"]       # optional: check only these scenarios' sends
  # events = "other.jsonl"        # optional: another recorded input
  # templates = "..."  tz = "..." # optional, as kairos replay's options

  [[send]]                        # every send expected: any other send (of the
  scenario = "low_balance_10"     # `only` scenarios, if given) fails the test
  msisdn = "13800000002"
  time = "2026-11-23 12:30"       # the trigger time (replay's ts)
  channel = "sms"
  template = "offer.topup_bonus"
  params = { balance = 8.2, bonus = 10 }   # optional: checked when given
  # send_at = "2026-11-23 12:31"  # optional: when it goes out, if later

  [[suppressed]]                  # a trigger expected not to be sent, and why
  scenario = "low_balance_10"
  msisdn = "13800000002"
  reason = "cooldown"             # cooldown once audience during exclude arbitration
  time = "2026-11-24 20:00"       # no_repeat exclusive quiet cap control held; time optional

No [[send]] at all: the story must send nothing. A suppression not listed does
not fail a test. Exit status: 0 every test passed, 1 a test failed (or could not
run: its file, line and column are shown), 2 a usage error.
"""
