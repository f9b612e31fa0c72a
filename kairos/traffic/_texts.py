"""The JSON texts of the province mix — field names, enumerations, hosts — interned once.

Every event line is texts and numbers (``kairos.traffic._columns``); this module holds
the texts: DPI hosts per knowledge-base category, with and without app and
category, call/SMS/attach/usage/balance fragments, tag changes.
"""

from __future__ import annotations

import csv

import numpy as np

from kairos.traffic._jsonl import Table
from kairos.traffic._places import ROAMING
from kairos.traffic._population import OS_NAMES, REFERENCE

#: host prefixes a DPI probe reports in front of the knowledge base's suffixes
HOST_PREFIXES = ("", "www.", "m.", "api.", "cdn.")
UNKNOWN_HOSTS = ("cdn.akamai-edge.net", "api.push-service.cn", "img.static-cdn.com", "t.adserver.cn")
MODELS = {
    "android": ("Xiaomi 15", "vivo X200", "OPPO Find X8", "Honor Magic7"),
    "ios": ("iPhone 16", "iPhone 17"),
    "harmony": ("Mate 70", "Pura 70"),
}


#: the app of each value-added service (``kairos.traffic._population.SERVICES``) in kb.csv
SERVICE_APPS = {"fetion": "fetion", "mailbox": "mail139", "reading": "migu_reading", "video": "migu_video",
                "games": "migu_games"}


def _all_kb_rows() -> list[tuple[str, str, str]]:
    with open(REFERENCE / "kb.csv", newline="", encoding="utf-8") as f:
        return [(r["pattern"], r["app"], r["category"]) for r in csv.DictReader(f)]


def kb_rows() -> list[tuple[str, str, str]]:
    """(pattern, app, category) of ``scenarios/reference/kb.csv``: the everyday internet.

    The value-added services' rows are left out: their use follows each
    subscriber's own profile (``kairos.traffic._services``), not the browsing
    mix, and leaving them out keeps the browsing mix (and W1) what it was.
    """
    apps = set(SERVICE_APPS.values())
    return [r for r in _all_kb_rows() if r[1] not in apps]


def service_hosts() -> dict[str, str]:
    """Service → the host suffix kb.csv labels with its app."""
    rows = {app: pattern for pattern, app, _ in _all_kb_rows()}
    return {name: rows[app] for name, app in SERVICE_APPS.items()}


class Texts:
    """The JSON texts the province mix writes, interned once."""

    def __init__(self, table: Table) -> None:
        code = table.code
        self.hosts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        rows = kb_rows()
        for category in {c for _, _, c in rows}:
            mine = [r for r in rows if r[2] == category]
            # prefix-major: index r (< len(mine)) is row r with no prefix
            plain = [f'","host":"{pre}{p}","bytes":' for pre in HOST_PREFIXES for p, _, _ in mine]
            tagged = [f'","host":"{pre}{p}","app":"{a}","category":"{c}","bytes":'
                      for pre in HOST_PREFIXES for p, a, c in mine]
            self.hosts[category] = (table.codes(plain), table.codes(tagged))
        self.unknown = table.codes([f'","host":"{h}","bytes":' for h in UNKNOWN_HOSTS])
        self.secs = code(',"duration_s":')
        self.end = code("}\n")
        self.call_mo = code('","direction":"mo","peer":"')
        self.call_mt = code('","direction":"mt","peer":"')
        self.call_mid = code('","duration_s":')
        self.call_end = np.array([[code(f',"dropped":{d},"roaming":"{r}"}}\n') for r in ROAMING]
                                  for d in ("false", "true")], dtype=np.int32)
        self.sms_mo, self.sms_mt = self.call_mo, self.call_mt
        self.sms_end = code('"}\n')
        self.model_text = np.array([[code(f'","model":"{models[m % len(models)]}","os":"{os}"}}\n') for m in range(8)]
                                    for os, models in ((o, MODELS[o]) for o in OS_NAMES)], dtype=np.int32)
        self.profile = table.codes([
            '","tags":{"video_pack":true}}\n', '","tags":{"music_pack":true}}\n',
            '","tags":{"churn_score":0.82,"churn_risk":"high"}}\n', '","tags":{"churn_score":0.2,"churn_risk":"low"}}\n',
            '","tags":{"data_plan":"10GB"}}\n', '","tags":{"has_app":true}}\n',
        ])
        self.amount = code('","amount":')
        self.cents = table.codes([f".{c:02d}}}\n" for c in range(100)])
        self.pct = code('","pct":')
        self.tenths = table.codes([f'.{t},"used_mb":' for t in range(10)])
        self.quota = code(',"quota_mb":')
        self.topup_channel = table.codes([f',"channel":"{c}"}}\n' for c in ("app", "app", "web", "sms_hall", "counter")])
