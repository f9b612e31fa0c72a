"""The province mix: what a city's subscribers do in a day, vectorised over subscribers.

A day is built from itineraries (stays in cells: home, metro, office, mall,
university, hospital, stadium on the match evening, airport terminals) that
become location updates, plus independent feeds — DPI with Zipf-skewed
activity and the knowledge base's categories, calls, SMS, usage and balance
from billing, top-ups, logins, attaches and tag changes. On top, a few per cent
of subscribers act out each catalogue scenario (a traveller dwelling at the
terminal, a video binge, three dropped calls in an hour, a balance sliding
under 10 and 5 …) and more come close (a 12-minute airport drop-off, two
dropped calls, a balance stopping at 10.40) — so every scenario matches a few
and none floods. Times are seconds from local midnight of each day.
"""

from __future__ import annotations

import math

import numpy as np

from kairos.traffic._accounts import Accounts
from kairos.traffic._billing import Billing
from kairos.traffic._columns import EventBuilder
from kairos.traffic._places import DAY_S, HOUR, MIN, Cells, Movement
from kairos.traffic._population import MSISDN_BASE, Population
from kairos.traffic._texts import Texts

#: relative DPI / call activity per local hour
DIURNAL = np.array([
    0.25, 0.12, 0.06, 0.04, 0.04, 0.08, 0.3, 0.7, 1.0, 0.9, 0.85, 0.9,
    1.1, 1.0, 0.85, 0.85, 0.9, 1.0, 1.1, 1.3, 1.5, 1.5, 1.2, 0.6,
])
BASE_CATEGORIES = (
    "social", "short_video", "video", "news", "shopping", "search", "music", "game", "navigation",
    "sports", "travel", "handset_news", "operator",
)
BASE_SHARE = np.array([0.23, 0.20, 0.12, 0.08, 0.08, 0.07, 0.06, 0.05, 0.04, 0.02, 0.01, 0.01, 0.01])
#: median bytes and seconds of one DPI record, per category
RECORD = {
    "video": (4e6, 90), "short_video": (1.5e6, 30), "music": (3e6, 120), "game": (3e5, 120),
    "navigation": (8e4, 20),
}


class Day(Movement):
    """One day of the province mix; ``run`` adds its events to the builder."""

    def __init__(
        self, b: EventBuilder, pop: Population, rng: np.random.Generator, day0_ms: int, cells: Cells,
        billing: Billing, texts: Texts,
    ) -> None:
        self.kb = texts
        self.b = b
        #: the part of this day the builder keeps, in seconds from its midnight
        self.window = (max(0.0, (b.lo - day0_ms) / 1000), min(float(DAY_S), (b.hi - day0_ms) / 1000))
        self.pop = pop
        self.rng = rng
        self.day0 = day0_ms
        self.cells = cells
        self.billing = billing
        self.n = pop.n
        self.t = b.table

    # --- helpers -------------------------------------------------------------

    def ms(self, seconds: np.ndarray) -> np.ndarray:
        """Event times in epoch ms: the day's start plus ``seconds``."""
        s = np.clip(np.asarray(seconds, float), 0, DAY_S - 0.001)
        return self.day0 + (s * 1000).astype(np.int64)

    def some(self, share: float | np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """A random ``share`` of the subscribers (or of ``among``), as indices."""
        pool = np.arange(self.n) if among is None else among
        return pool[self.rng.random(len(pool)) < share]

    def diurnal_times(self, count: int) -> np.ndarray:
        """``count`` times of day drawn from the daily rhythm."""
        hours = self.rng.choice(24, count, p=DIURNAL / DIURNAL.sum())
        return (hours + self.rng.random(count)) * HOUR

    def per_sub(self, mean: np.ndarray | float, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Poisson(mean per day) events per subscriber (of ``among``) in the generated window:
        (subscriber per event, time of day from the daily rhythm).

        Only the window is drawn, so an hour of a million subscribers costs an
        hour's events, not a day's.
        """
        pool = np.arange(self.n) if among is None else among
        lo, hi = self.window
        hour = np.arange(24) * HOUR
        overlap = np.clip(np.minimum(hour + HOUR, hi) - np.maximum(hour, lo), 0, HOUR) / HOUR
        mass = DIURNAL * overlap
        counts = self.rng.poisson(np.broadcast_to(mean, (len(pool),)) * (mass.sum() / DIURNAL.sum()))
        sub = np.repeat(pool, counts)
        if mass.sum() == 0:
            return sub, np.zeros(0)
        h = self.rng.choice(24, len(sub), p=mass / mass.sum())
        start = np.maximum(h * HOUR, lo)
        return sub, start + self.rng.random(len(sub)) * overlap[h] * HOUR

    def mask(self, subs: np.ndarray) -> np.ndarray:
        m = np.zeros(self.n, bool)
        m[subs] = True
        return m

    # --- the day -------------------------------------------------------------

    def run(self) -> None:
        rng, n = self.rng, self.n
        self.away = self.some(0.01)  # in another province all day
        self.roam = np.where(self.mask(self.away), 1, 0)
        here = np.flatnonzero(self.roam == 0)
        self.travel_at = np.full(n, np.inf)  # when the airport part of the day begins
        self.flyers = self.some(0.008, here)
        self.dropoffs = self.some(0.012, here[~self.mask(self.flyers)[here]])
        self.travel_at[self.flyers] = rng.uniform(6.5, 19.5, len(self.flyers)) * HOUR
        self.travel_at[self.dropoffs] = rng.uniform(7.0, 22.0, len(self.dropoffs)) * HOUR
        self.at_match = np.zeros(0, np.int64)
        self.match_arrive = np.zeros(0)
        self.location()
        self.dpi()
        self.calls()
        self.sms()
        self.billing.day(self)
        self.logins()
        self.devices()
        self.profiles()

    # --- DPI -----------------------------------------------------------------

    def dpi_event(self, ts_s: np.ndarray, sub: np.ndarray, category: str | np.ndarray, labelled: float = 0.3,
                  rows: np.ndarray | None = None) -> None:
        """DPI records of ``category`` (one name, or a code per record into BASE_CATEGORIES).

        Most carry only the host, as a DPI probe reports it, and get their app
        and category from the knowledge base; ``labelled`` of them carry both.
        """
        kb = self.kb
        k = len(sub)
        if isinstance(category, str):
            plain, tagged = kb.hosts[category]
            pick = rows if rows is not None else self.rng.integers(0, len(plain), k)
            text = np.where(self.rng.random(k) < labelled, tagged[pick % len(tagged)], plain[pick % len(plain)])
            size_med, secs_med = RECORD.get(category, (6e4, 15))
            size = self.rng.lognormal(math.log(size_med), 0.9, k)
            secs = self.rng.lognormal(math.log(secs_med), 0.7, k)
        else:
            text = np.empty(k, np.int32)
            size = np.empty(k)
            secs = np.empty(k)
            for c, name in enumerate(BASE_CATEGORIES):
                at = np.flatnonzero(category == c)
                plain, tagged = kb.hosts[name]
                pick = self.rng.integers(0, len(plain), len(at))
                text[at] = np.where(self.rng.random(len(at)) < labelled, tagged[pick], plain[pick])
                size_med, secs_med = RECORD.get(name, (6e4, 15))
                size[at] = self.rng.lognormal(math.log(size_med), 0.9, len(at))
                secs[at] = self.rng.lognormal(math.log(secs_med), 0.7, len(at))
        self.b.add("dpi", self.ms(ts_s), sub, [text, kb.secs, kb.end],
                   [size.astype(np.int64) + 200, np.maximum(secs.astype(np.int64), 1)])

    def sessions(self, who: np.ndarray, start: np.ndarray, minutes: np.ndarray, every_s: np.ndarray,
                 category: str) -> None:
        """Sessions of records every ``every_s`` seconds for ``minutes``, each on one app of ``category``."""
        count = np.maximum((minutes * MIN / every_s).astype(np.int64), 1)
        rep = np.repeat(np.arange(len(who)), count)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count)
        jitter = self.rng.uniform(-0.3, 0.3, len(rep))
        ts = start[rep] + (k + jitter) * every_s[rep]
        app = self.rng.integers(0, 1000, len(who))[rep]
        self.dpi_event(ts, who[rep], category, rows=app)

    def dpi(self) -> None:
        rng, pop, n = self.rng, self.pop, self.n
        # everyday browsing: Zipf-skewed activity, a taste per subscriber
        sub, ts = self.per_sub(75.0 * pop.activity)
        p = BASE_SHARE / BASE_SHARE.sum()
        taste = rng.choice(len(p), n, p=p)
        cat = np.where(rng.random(len(sub)) < 0.35, taste[sub], rng.choice(len(p), len(sub), p=p))
        unknown = rng.random(len(sub)) < 0.06
        self.dpi_event(ts[~unknown], sub[~unknown], cat[~unknown])
        self.b.add("dpi", self.ms(ts[unknown]), sub[unknown],
                   [self.kb.unknown[rng.integers(0, len(self.kb.unknown), unknown.sum())], self.kb.secs, self.kb.end],
                   [rng.integers(200, 20000, unknown.sum()), rng.integers(1, 10, unknown.sum())])
        video = BASE_CATEGORIES.index("video")
        # a video binge (records every 12–28 s) for a few, casual watching for more
        binge = self.some(np.where(taste == video, 0.12, 0.02))
        k = len(binge)
        start = np.where(rng.random(k) < 0.7, rng.uniform(19.5, 23, k), rng.uniform(12, 13.5, k)) * HOUR
        self.sessions(binge, start, rng.uniform(20, 80, k), rng.uniform(12, 28, k), "video")
        casual = self.some(0.10)
        k = len(casual)
        self.sessions(casual, self.diurnal_times(k), rng.uniform(10, 25, k), rng.uniform(40, 90, k), "video")
        # music on the way to work
        fans = self.some(0.08)
        k = len(fans)
        self.sessions(fans, rng.uniform(7.3, 8.5, k) * HOUR, rng.uniform(25, 60, k), rng.uniform(50, 150, k), "music")
        # handset reviews: a few pages on one model, then (often) a shop within minutes
        readers = self.some(0.02)
        k = len(readers)
        t0 = self.diurnal_times(k)
        pages = rng.integers(1, 5, k)
        rep = np.repeat(np.arange(k), pages)
        step = np.arange(len(rep)) - np.repeat(np.cumsum(pages) - pages, pages)
        model = rng.integers(0, 4, k)
        ts = t0[rep] + step * rng.uniform(20, 90, len(rep))
        self.dpi_event(ts, readers[rep], "handset_review", rows=model[rep])
        last = t0 + (pages - 1) * 90
        r = rng.random(k)
        soon, late = r < 0.45, (r >= 0.45) & (r < 0.70)
        then = last + np.where(soon, rng.uniform(40, 240, k), rng.uniform(360, 1200, k))
        shop = soon | late
        self.dpi_event(then[shop], readers[shop], "shopping", labelled=0.5)
        # competitors' sites (churn signs): a visit is a few pages, some come back later
        rivals = self.some(0.012)
        k = len(rivals)
        site = rng.integers(0, 2, k)
        for visit in range(2):
            who = np.arange(k) if visit == 0 else np.flatnonzero(rng.random(k) < 0.35)
            pages = rng.integers(1, 3, len(who))
            rep = np.repeat(who, pages)
            t0 = self.diurnal_times(len(who))
            step = np.arange(len(rep)) - np.repeat(np.cumsum(pages) - pages, pages)
            self.dpi_event(np.repeat(t0, pages) + step * rng.uniform(15, 120, len(rep)), rivals[rep], "competitor",
                           rows=site[rep])
        # sports news at the match, travel sites before a trip
        k = len(self.at_match)
        if k:
            self.sessions(self.at_match, self.match_arrive + 15 * MIN, rng.uniform(20, 90, k),
                          rng.uniform(300, 900, k), "sports")
        f = self.flyers
        self.dpi_event(self.travel_at[f] - rng.uniform(600, 7200, len(f)), f, "travel")
        self.dpi_event(self.travel_at[f] + rng.uniform(1800, 3600, len(f)), f, "travel")

    # --- calls and SMS -------------------------------------------------------

    def call(self, ts_s: np.ndarray, sub: np.ndarray, mo: np.ndarray | bool, peer: np.ndarray,
             seconds: np.ndarray, dropped: np.ndarray | bool) -> None:
        k = len(sub)
        mo = np.broadcast_to(mo, (k,))
        dropped = np.broadcast_to(dropped, (k,))
        roam = self.roaming_at(sub, ts_s)
        flying = roam < 0
        first = np.where(mo, self.kb.call_mo, self.kb.call_mt)
        last = self.kb.call_end[dropped.astype(int), np.maximum(roam, 0)]
        ok = ~flying
        self.b.add("call", self.ms(ts_s[ok]), sub[ok], [first[ok], self.kb.call_mid, last[ok]],
                   [np.asarray(peer)[ok], np.maximum(np.asarray(seconds, np.int64), 0)[ok]])

    def roaming_at(self, sub: np.ndarray, ts_s: np.ndarray) -> np.ndarray:
        """Roaming state per event (0 none, 1 domestic, 2 international; -1 in the air)."""
        roam = self.roam[sub].copy()
        fs, land, abroad = self.landed
        if len(fs):
            idx = np.full(self.n, -1)
            idx[fs] = np.arange(len(fs))
            j = idx[sub]
            f = j >= 0
            jj = j[f]
            t = ts_s[f]
            took_off = self.travel_at[fs][jj] + 3 * HOUR  # upper bound of leaving the terminal
            state = np.where(t >= land[jj], np.where(abroad[jj], 2, 1), np.where(t > took_off, -1, 0))
            roam[f] = state
        return roam

    def people(self, k: int) -> np.ndarray:
        """Peer numbers: other subscribers, other operators' mobiles, landlines."""
        r = self.rng.random(k)
        own = MSISDN_BASE + self.rng.integers(0, self.n, k)
        other = 13_900_000_000 + self.rng.integers(0, 99_999_999, k)
        land = 2_180_000_000 + self.rng.integers(0, 9_999_999, k)
        return np.where(r < 0.5, own, np.where(r < 0.9, other, land))

    def calls(self) -> None:
        rng, pop = self.rng, self.pop
        sub, ts = self.per_sub(3.0 * pop.activity ** 0.3)
        k = len(sub)
        seconds = rng.lognormal(math.log(60), 1.0, k).astype(np.int64) + 1
        self.call(ts, sub, rng.random(k) < 0.5, self.people(k), seconds, rng.random(k) < 0.008)
        # the operator's customer service (and calls from it), competitors' hotlines
        for share, mo, numbers in ((0.025, True, (10086, 10086, 10086, 1008611)), (0.008, False, (10086,)),
                                   (0.004, True, (10010, 10000))):
            who = self.some(share)
            k = len(who)
            peer = np.array(numbers)[rng.integers(0, len(numbers), k)]
            self.call(rng.uniform(8.5, 20.5, k) * HOUR, who, mo, peer, rng.integers(40, 600, k), False)
        # bad coverage: 3–5 calls within 50 min, mostly dropped; near misses: two, or three spread out
        for share, calls, spread, p_drop in ((0.012, (3, 6), 50, 0.9), (0.02, (2, 3), 30, 1.0),
                                             (0.008, (3, 4), 200, 1.0)):
            who = self.some(share)
            count = rng.integers(*calls, len(who))
            rep = np.repeat(np.arange(len(who)), count)
            t0 = rng.uniform(8, 20, len(who)) * HOUR
            ts = t0[rep] + rng.uniform(0, spread, len(rep)) * MIN
            self.call(ts, who[rep], True, self.people(len(rep)), rng.integers(5, 200, len(rep)),
                      rng.random(len(rep)) < p_drop)
        # the first calls after landing (roaming)
        fs, land, _ = self.landed
        back = land < DAY_S - HOUR
        who = fs[back]
        self.call(land[back] + rng.uniform(5, 50, len(who)) * MIN, who, True, self.people(len(who)),
                  rng.integers(30, 300, len(who)), False)

    def sms(self) -> None:
        rng = self.rng
        sub, ts = self.per_sub(2.5)
        k = len(sub)
        mo = rng.random(k) < 0.4
        service = 1_069_000_000 + rng.integers(0, 999_999, k)
        peer = np.where(mo | (rng.random(k) < 0.4), self.people(k), service)
        first = np.where(mo, self.kb.sms_mo, self.kb.sms_mt)
        self.b.add("sms", self.ms(ts), sub, [first, self.kb.sms_end], [peer])

    # --- the app, devices, tags ------------------------------------------------

    def logins(self) -> None:
        pop = self.pop
        app = np.flatnonzero(pop.has_app)
        sub, ts = self.per_sub(1.2, app)
        self.b.add("login", self.ms(ts), sub, ['","channel":"app"}\n'])
        sub, ts = self.per_sub(0.06)
        web = self.rng.random(len(sub)) < 0.7
        text = np.where(web, self.t.code('","channel":"web"}\n'), self.t.code('","channel":"sms_hall"}\n'))
        self.b.add("login", self.ms(ts), sub, [text])

    def attach(self, ts_s: np.ndarray, sub: np.ndarray) -> None:
        pop = self.pop
        self.b.add("attach", self.ms(ts_s), sub, ['","imei":"', self.kb.model_text[pop.os[sub], pop.model[sub] % 8]],
                   [pop.imei[sub]])

    def devices(self) -> None:
        rng, pop = self.rng, self.pop
        # handsets off at night, on in the morning: an attach with the same IMEI
        night = self.some(0.08)
        k = len(night)
        self.b.add("power", self.ms(rng.uniform(0.2, 1.5, k) * HOUR), night, ['","state":"off","roaming":"none"}\n'])
        on = rng.uniform(6, 8, k) * HOUR
        self.b.add("power", self.ms(on), night, ['","state":"on","roaming":"none"}\n'])
        self.attach(on + 2, night)
        # a new handset: the old one attached in the morning, the new one later
        new = self.some(0.004)
        k = len(new)
        self.attach(rng.uniform(6.5, 9, k) * HOUR, new)
        pop.imei[new] = 860_000_000_000_000 + rng.integers(0, 10**13, k)
        pop.os[new] = rng.choice(3, k, p=[0.5, 0.3, 0.2])
        pop.model[new] = rng.integers(0, 8, k)
        self.attach(rng.uniform(9.5, 21, k) * HOUR, new)

    def profiles(self) -> None:
        who = self.some(0.004)
        self.b.add("profile", self.ms(self.diurnal_times(len(who))), who,
                   [self.kb.profile[self.rng.integers(0, len(self.kb.profile), len(who))]])


def generate(b: EventBuilder, pop: Population, rng: np.random.Generator, start_ms: int, hours: float) -> None:
    """Add ``hours`` of the province mix for ``pop`` from ``start_ms`` (local midnight) to ``b``."""
    cells = Cells(b, homes=int(pop.home_cell.max()) + 1)
    billing = Billing(pop, rng)
    texts = Texts(b.table)
    accounts = Accounts(b, pop, DIURNAL)
    for day in range(max(1, math.ceil(hours / 24))):
        day0 = start_ms + day * DAY_S * 1000
        Day(b, pop, rng, day0, cells, billing, texts).run()
        accounts.day(day, day0)
