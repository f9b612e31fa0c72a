"""Billing feeds of the province mix: data allowance used and prepaid balance, day after day.

Usage climbs through the day per subscriber; about 3 % come near 90 % and
most of them cross it, some go past 100 %. Prepaid balances fall with each
charge; some slide under 10 and 5 yuan (more often those likely to churn),
a few stop just above 10, and a third of those under 10 top up.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Protocol

import numpy as np

from kairos.traffic._columns import EventBuilder
from kairos.traffic._places import HOUR, MIN
from kairos.traffic._population import QUOTA_MB, Population
from kairos.traffic._texts import Texts


class Day(Protocol):
    """What billing reads of the province's day (``kairos.traffic._province.Day``), which calls it."""

    rng: np.random.Generator
    n: int
    day0: int
    kb: Texts
    b: EventBuilder
    pop: Population

    def ms(self, seconds: np.ndarray) -> np.ndarray: ...

    def some(self, share: float | np.ndarray, among: np.ndarray | None = None) -> np.ndarray: ...


class Billing:
    """Data allowance used and prepaid balance, carried from day to day."""

    def __init__(self, pop: Population, rng: np.random.Generator) -> None:
        n = pop.n
        over = pop.months_over_plan > 0
        self.has_plan = np.flatnonzero(pop.data_plan >= 0)
        self.quota = QUOTA_MB[np.maximum(pop.data_plan, 0)]
        self.pct = np.clip(rng.normal(50, 17, n) + 12 * over, 0.5, 150)
        self.rate = rng.lognormal(math.log(3.5), 0.6, n) * pop.activity ** 0.4 * np.where(over, 1.5, 1.0)
        self.prepaid = np.flatnonzero(pop.prepaid)
        self.balance = np.round(rng.lognormal(math.log(45), 0.55, n), 2)
        self.cycle = ""

    def day(self, d: Day) -> None:
        rng, n = d.rng, d.n
        local = dt.datetime.fromtimestamp(d.day0 / 1000 + 8 * 3600, dt.UTC)
        cycle = f"{local.year}-{local.month:02d}"
        if self.cycle and cycle != self.cycle:
            self.pct = rng.uniform(0, 3, n)
        self.cycle = cycle
        # usage: a few updates a day; some come near 90 % today and cross it, most stop short
        subs = self.has_plan
        near = d.some(0.2, subs[self.pct[subs] >= 70])  # late in the cycle only
        self.pct[near] = rng.uniform(84, 89.5, len(near))
        start, rate = self.pct[subs], self.rate[subs] * np.where(np.isin(subs, near), 1.6, 1.0)
        count = rng.integers(3, 8, len(subs))
        rep = np.repeat(np.arange(len(subs)), count)
        t = rng.uniform(7, 23.5, len(rep)) * HOUR
        pct = start[rep] + rate[rep] * (t - 7 * HOUR) / (16.5 * HOUR)
        order = np.lexsort((t, rep))
        t, pct, who = t[order], pct[order], subs[rep[order]]
        tenths = np.round(pct * 10).astype(np.int64)
        used = (pct * self.quota[who] / 100).astype(np.int64)
        x = d.kb
        d.b.add("usage", d.ms(t), who,
                [x.pct, x.tenths[tenths % 10], x.quota, f',"cycle":"{cycle}"}}\n'],
                [tenths // 10, used, self.quota[who]])
        self.pct[subs] = start + rate
        # prepaid balance: charges through the day; some slide under 10 and 5, a few stop just above
        subs = self.prepaid
        # those sliding are more often the ones likely to churn
        slide = d.some(np.where(d.pop.churn_score[subs] >= 0.65, 0.35, 0.04), subs)
        close = d.some(0.03, subs)
        self.balance[slide] = np.round(rng.uniform(10.5, 16, len(slide)), 2)
        self.balance[close] = np.round(rng.uniform(10.6, 13, len(close)), 2)
        spend = rng.lognormal(math.log(2.0), 0.6, n)
        spend[slide] = rng.uniform(4, 16, len(slide))
        spend[close] = rng.uniform(0.1, 0.5, len(close))
        count = rng.integers(2, 6, len(subs))
        rep = np.repeat(np.arange(len(subs)), count)  # grouped by subscriber, so sorting
        t = rng.uniform(8, 23, len(rep)) * HOUR        # by (rep, x) keeps every group in place
        t = t[np.lexsort((t, rep))]
        frac = rng.random(len(rep))
        frac = frac[np.lexsort((frac, rep))]
        last = np.cumsum(count) - 1
        frac[last] = 1.0  # the day's spending is all in by its last charge
        who = subs[rep]
        self.emit_balance(d, t, who, np.maximum(self.balance[who] - spend[who] * frac, 0))
        end = np.maximum(self.balance[subs] - spend[subs], 0)
        self.balance[subs] = end
        last_t = t[last]
        # a third of those who fell under 10 top up
        low = (end < 10) & (rng.random(len(subs)) < 0.35)
        who, at = subs[low], last_t[low] + rng.uniform(10, 120, low.sum()) * MIN
        paid = np.array([30, 50, 100])[rng.integers(0, 3, len(who))]
        d.b.add("topup", d.ms(at), who, [x.amount, x.topup_channel[rng.integers(0, 5, len(who))]], [paid])
        self.balance[who] += paid
        self.emit_balance(d, at + 30, who, self.balance[who])

    def emit_balance(self, d: Day, t: np.ndarray, who: np.ndarray, amount: np.ndarray) -> None:
        cents = np.round(amount * 100).astype(np.int64)
        d.b.add("balance", d.ms(t), who, [d.kb.amount, d.kb.cents[cents % 100]], [cents // 100])
