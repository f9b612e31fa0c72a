"""The generated subscribers: tags, list memberships and daily habits, from a seed.

One ``Population`` (numpy arrays, one entry per subscriber) is shared by the
reference folder and the province traffic, so the two always agree: the
subscriber whose balance falls under 10 really is prepaid, a complaint-prone
subscriber without a data plan really uses data, and so on. Shares follow an
operator's typical base (about 40 % prepaid, a few per cent on each
do-not-market list).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MSISDN_BASE = 13_800_000_000
REFERENCE = Path(__file__).resolve().parents[2] / "scenarios" / "reference"

DATA_PLANS = ("5GB", "10GB", "20GB", "40GB")
QUOTA_MB = np.array([5120, 10240, 20480, 40960], dtype=np.int64)
OS_NAMES = ("android", "ios", "harmony")
LEVELS = ("low", "mid", "high")  # arpu_band, churn_risk
LISTS = ("dnd", "blacklist", "dual_sim", "complaint_prone", "low_spend_whitelist")

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

    def __init__(self, subscribers: int, seed: int) -> None:
        check_subscribers(subscribers)
        n = self.n = subscribers
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
        return out
