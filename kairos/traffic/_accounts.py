"""What a subscriber's account does over months: value-added services used (or not), the bill moving on.

The province's days (``kairos.traffic._province``) are the same kind of day
over and over; the silent / low-use model (DOMAIN.md 14) and the periodic
pushes (15) need what changes from month to month. Each subscriber who bought
a service uses it as their profile says (``Population.use``): often, once or
twice a calendar month, never, or often until a day and then never again —
so silent, low-use and newly silent subscribers appear at each month's turn.
A postpaid bill's due date moves to the next month at the end of its day, as
a ``profile`` event the billing system publishes. Everything is drawn from its
own random stream, so the province's other events stay what they were.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from kairos.traffic._columns import EventBuilder
from kairos.traffic._places import DAY_S, HOUR
from kairos.traffic._population import ACTIVE, LOCAL, LOW, SERVICES, STOPS, Population, next_bill_due
from kairos.traffic._texts import HOST_PREFIXES, service_hosts

#: median bytes and seconds of one use of each service
USE = {"fetion": (6e3, 40), "mailbox": (4e4, 60), "reading": (3e5, 400), "video": (2.5e7, 600),
       "games": (2e6, 500)}


class Accounts:
    """Service uses and bill due dates, day after day, for one population."""

    def __init__(self, b: EventBuilder, pop: Population, rhythm: np.ndarray) -> None:
        self.b = b
        self.pop = pop
        self.rng = np.random.default_rng([pop.seed, 5])
        self.hours = rhythm / rhythm.sum()
        hosts = service_hosts()
        self.host = {name: b.table.codes([f'","host":"{pre}{hosts[name]}","bytes":' for pre in HOST_PREFIXES])
                     for name in SERVICES}
        self.secs = b.table.code(',"duration_s":')
        self.end = b.table.code("}\n")
        self.month: tuple[int, int] | None = None
        #: per service, the days of this month a LOW user uses it (0: no use), two columns
        self.low_days: dict[str, np.ndarray] = {}

    def day(self, index: int, day0_ms: int) -> None:
        """Add the day ``index`` (from the first) starting at local midnight ``day0_ms``."""
        date = dt.datetime.fromtimestamp(day0_ms / 1000, LOCAL).date()
        if self.month != (date.year, date.month):
            self.month = (date.year, date.month)
            self._plan_low_use(date)
        self._uses(index, date, day0_ms)
        self._bills(date, day0_ms)

    def _plan_low_use(self, date: dt.date) -> None:
        """A LOW user uses a service once or twice a month, on days drawn when the month begins."""
        rng, n = self.rng, self.pop.n
        length = ((date.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)).day
        for name in SERVICES:
            days = rng.integers(1, length + 1, (n, 2))
            days[:, 1] = np.where(rng.random(n) < 0.5, days[:, 1], 0)
            self.low_days[name] = days

    def _uses(self, index: int, date: dt.date, day0_ms: int) -> None:
        rng, pop = self.rng, self.pop
        for name in SERVICES:
            use = pop.use[name]
            often = pop.bought[name] & ((use == ACTIVE) | ((use == STOPS) & (index < pop.stop_day[name])))
            subs = np.flatnonzero(often)
            who = np.repeat(subs, rng.poisson(pop.rate[name][subs]))
            low = np.flatnonzero(pop.bought[name] & (use == LOW))
            who = np.concatenate([who, np.repeat(low, (self.low_days[name][low] == date.day).sum(axis=1))])
            k = len(who)
            if not k:
                continue
            at = (rng.choice(24, k, p=self.hours) + rng.random(k)) * HOUR
            size_med, secs_med = USE[name]
            size = rng.lognormal(np.log(size_med), 0.8, k).astype(np.int64) + 200
            secs = np.maximum(rng.lognormal(np.log(secs_med), 0.6, k).astype(np.int64), 1)
            host = self.host[name][rng.integers(0, len(HOST_PREFIXES), k)]
            ts = day0_ms + (np.clip(at, 0, DAY_S - 0.001) * 1000).astype(np.int64)
            self.b.add("dpi", ts, who, [host, self.secs, self.end], [size, secs])

    def _bills(self, date: dt.date, day0_ms: int) -> None:
        """At the end of its due day, a bill's next due date (next month's bill day) is published."""
        due = np.flatnonzero(self.pop.bill_day == date.day)
        if not len(due):
            return
        following = next_bill_due(date.day, date + dt.timedelta(days=1)).isoformat()
        ts = day0_ms + (23 * 3600 + 50 * 60 + due % 590) * 1000
        self.b.add("profile", ts, due, [f'","tags":{{"bill_due":"{following}"}}}}\n'])
