"""The generated subscribers: tags, list memberships and daily habits, from a seed.

One ``Population`` (numpy arrays, one entry per subscriber) is shared by the
reference folder and the province traffic, so the two always agree: the
subscriber whose balance falls under 10 really is prepaid, a complaint-prone
subscriber without a data plan really uses data, and so on. Shares follow an
operator's typical base (about 40 % prepaid, a few per cent on each
do-not-market list).

The profile part — region, brand, the value-added services bought and how each
is used month by month, contract end, bill day, a personal data alert level,
the red list — is drawn from its own random stream after everything else, so
adding it left the tags, lists and traffic drawn before it as they were.
Dates are days from the traffic's first day (``start_ms``) and become date
text in the tags.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

MSISDN_BASE = 13_800_000_000
REFERENCE = Path(__file__).resolve().parents[2] / "scenarios" / "reference"

DATA_PLANS = ("5GB", "10GB", "20GB", "40GB")
QUOTA_MB = np.array([5120, 10240, 20480, 40960], dtype=np.int64)
OS_NAMES = ("android", "ios", "harmony")
LEVELS = ("low", "mid", "high")  # arpu_band, churn_risk
LISTS = ("dnd", "blacklist", "dual_sim", "complaint_prone", "low_spend_whitelist", "redlist")

#: 2026-11-23 00:00 in China Standard Time (UTC+8, no daylight saving)
DEFAULT_START_MS = int(dt.datetime(2026, 11, 22, 16, tzinfo=dt.UTC).timestamp() * 1000)
LOCAL = dt.timezone(dt.timedelta(hours=8))
#: the province's cities (the ``region`` tag) and the share of subscribers in each
REGIONS = {
    "guangzhou": 0.24, "shenzhen": 0.22, "dongguan": 0.13, "foshan": 0.12, "huizhou": 0.08,
    "zhuhai": 0.07, "shantou": 0.08, "zhanjiang": 0.06,
}
#: the operator's brands: gotone (postpaid, higher value), mzone (the young), easyown (prepaid)
BRANDS = ("gotone", "mzone", "easyown")
#: value-added services (the ``has_SERVICE`` tags) and the share of subscribers who bought each
SERVICES = {"fetion": 0.25, "mailbox": 0.30, "reading": 0.15, "video": 0.20, "games": 0.08}
#: how a subscriber uses a service bought: most often; once or twice a month; never; often until a
#: day, then never again (those become *newly silent*)
ACTIVE, LOW, SILENT, STOPS = 0, 1, 2, 3
USE_SHARE = (0.55, 0.15, 0.15, 0.15)
#: the days (from the first) a STOPS user's last use may fall on
STOP_WITHIN_DAYS = 100
ALERT_LEVELS = (50, 60, 70, 80)

#: what a subscriber does on a weekday: stays around home, works in the
#: business district, or studies at the university
HOMEBODY, OFFICE, STUDENT = 0, 1, 2


def msisdn(i: int) -> str:
    """The number of subscriber ``i``: 11 digits, ``13800000000`` + i."""
    return str(MSISDN_BASE + i)


def _cells(prefix: str) -> list[str]:
    """The cells of ``scenarios/reference/cells.csv`` that start with ``prefix``."""
    seen: dict[str, None] = {}
    with open(REFERENCE / "cells.csv", encoding="utf-8") as f:
        next(f)
        for line in f:
            cell = line.split(",", 1)[0].strip()
            if cell.startswith(prefix):
                seen[cell] = None
    return list(seen)


def check_subscribers(subscribers: int) -> None:
    """Refuse a subscriber count that does not fit 11-digit msisdns."""
    if subscribers < 1 or subscribers > 99_999_999:
        raise ValueError(f"subscribers must be 1 to 99 999 999, got {subscribers}")


class Population:
    """Per-subscriber arrays; index i is msisdn ``13800000000 + i``."""

    def __init__(self, subscribers: int, seed: int, start_ms: int = DEFAULT_START_MS) -> None:
        check_subscribers(subscribers)
        n = self.n = subscribers
        self.seed = seed
        self.start_ms = start_ms
        rng = np.random.default_rng([seed, 1])
        self.prepaid = rng.random(n) < 0.40
        self.arpu = rng.choice(3, n, p=[0.35, 0.45, 0.20])
        # prepaid cards churn more: about one in ten of them scores 0.7 or more
        self.churn_score = np.round(np.where(self.prepaid, rng.beta(2.2, 3.3, n), rng.beta(2.0, 5.0, n)), 2)
        self.churn_risk = np.where(self.churn_score >= 0.7, 2, np.where(self.churn_score >= 0.4, 1, 0))
        self.video_pack = rng.random(n) < 0.15
        self.music_pack = rng.random(n) < 0.10
        plan = rng.choice(4, n, p=[0.30, 0.35, 0.25, 0.10])
        self.data_plan = np.where(rng.random(n) < 0.08, -1, plan)  # -1: no data plan
        over = rng.random(n) < 0.18
        self.months_over_plan = np.where(over, rng.integers(1, 7, n), 0)
        self.has_app = rng.random(n) < 0.60
        self.os = rng.choice(3, n, p=[0.55, 0.25, 0.20])
        low = self.arpu == 0
        self.lists = {
            "dnd": rng.random(n) < 0.03,
            "blacklist": rng.random(n) < 0.005,
            "dual_sim": rng.random(n) < 0.04,
            "complaint_prone": rng.random(n) < 0.05,
            "low_spend_whitelist": rng.random(n) < np.where(low, 0.25, 0.02),
        }
        # habits
        self.role = rng.choice(3, n, p=[0.42, 0.46, 0.12])
        self.uses_metro = rng.random(n) < 0.25
        self.home_cell = rng.integers(0, max(1, n // 25) + 20, n)
        self.activity = np.minimum(rng.zipf(2.0, n), 200).astype(np.float64)
        self.activity /= self.activity.mean()
        self.imei = 860_000_000_000_000 + rng.integers(0, 10**13, n)
        self.model = rng.integers(0, 8, n)
        self._profile(np.random.default_rng([seed, 4]))

    def _profile(self, rng: np.random.Generator) -> None:
        """Region, brand, services and their use, contract, bill day, alert level, the red list."""
        n = self.n
        self.region = rng.choice(len(REGIONS), n, p=np.array(list(REGIONS.values())))
        young = self.role == STUDENT
        self.brand = np.where(
            self.prepaid, np.where(rng.random(n) < 0.8, 2, 1),
            np.where(young, 1, np.where(self.arpu == 2, 0, rng.choice(3, n, p=[0.6, 0.15, 0.25]))),
        )
        #: per service: bought (bool), how it is used (ACTIVE…STOPS), uses per day when used,
        #: the day (from the first) after which a STOPS user stops
        self.bought: dict[str, np.ndarray] = {}
        self.use: dict[str, np.ndarray] = {}
        self.rate: dict[str, np.ndarray] = {}
        self.stop_day: dict[str, np.ndarray] = {}
        for name, share in SERVICES.items():
            self.bought[name] = rng.random(n) < share
            self.use[name] = rng.choice(4, n, p=USE_SHARE)
            self.rate[name] = rng.lognormal(np.log(0.8), 0.7, n)
            self.stop_day[name] = rng.integers(0, STOP_WITHIN_DAYS, n)
        # a contract for about a third of postpaid subscribers, ending from two months ago to 18 months on
        self.contract_end = np.where(~self.prepaid & (rng.random(n) < 0.35), rng.integers(-60, 540, n), NO_DAY)
        self.bill_day = np.where(self.prepaid, 0, rng.integers(1, 29, n))  # 0: prepaid, no bill
        self.alert_pct = np.where((self.data_plan >= 0) & (rng.random(n) < 0.15),
                                  np.array(ALERT_LEVELS)[rng.integers(0, len(ALERT_LEVELS), n)], 0)
        self.lists["redlist"] = rng.random(n) < 0.005

    def date(self, day: int) -> dt.date:
        """The local date ``day`` days after the traffic's first day."""
        return (dt.datetime.fromtimestamp(self.start_ms / 1000, LOCAL) + dt.timedelta(days=int(day))).date()

    def bill_due(self, i: int, on_or_after: dt.date) -> str:
        """Subscriber ``i``'s next bill due date (its bill day) on or after a date, as text."""
        return next_bill_due(int(self.bill_day[i]), on_or_after).isoformat()

    def tags(self, i: int) -> dict[str, object]:
        """The tag library's row for subscriber ``i`` (tags.jsonl)."""
        out: dict[str, object] = {
            "plan_type": "prepaid" if self.prepaid[i] else "postpaid",
            "arpu_band": LEVELS[self.arpu[i]],
            "churn_score": float(self.churn_score[i]),
            "churn_risk": LEVELS[self.churn_risk[i]],
            "video_pack": bool(self.video_pack[i]),
            "music_pack": bool(self.music_pack[i]),
            "months_over_plan": int(self.months_over_plan[i]),
            "has_app": bool(self.has_app[i]),
            "handset_os": OS_NAMES[self.os[i]],
        }
        if self.data_plan[i] >= 0:
            out["data_plan"] = DATA_PLANS[self.data_plan[i]]
        out["region"] = list(REGIONS)[self.region[i]]
        out["brand"] = BRANDS[self.brand[i]]
        for name in SERVICES:
            if self.bought[name][i]:
                out[f"has_{name}"] = True
        if self.contract_end[i] != NO_DAY:
            out["contract_end"] = self.date(int(self.contract_end[i])).isoformat()
        if self.bill_day[i]:
            out["bill_day"] = int(self.bill_day[i])
            out["bill_due"] = self.bill_due(i, self.date(0))
        if self.alert_pct[i]:
            out["alert_pct"] = int(self.alert_pct[i])
        return out


NO_DAY = -(10**6)  # no contract


def next_bill_due(bill_day: int, on_or_after: dt.date) -> dt.date:
    """The first date on or after ``on_or_after`` whose day of the month is ``bill_day`` (1–28)."""
    due = on_or_after.replace(day=bill_day)
    if due < on_or_after:
        due = (due.replace(day=28) + dt.timedelta(days=4)).replace(day=bill_day)
    return due
