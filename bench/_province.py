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

import datetime as dt
import math

import numpy as np

from bench._columns import EventBuilder
from bench._jsonl import Table
from bench._population import MSISDN_BASE, OFFICE, OS_NAMES, QUOTA_MB, STUDENT, Population, _cells

DAY_S = 86_400
MIN = 60.0
HOUR = 3600.0

ROAMING = ("none", "domestic", "international")
#: relative DPI / call activity per local hour
DIURNAL = np.array([
    0.25, 0.12, 0.06, 0.04, 0.04, 0.08, 0.3, 0.7, 1.0, 0.9, 0.85, 0.9,
    1.1, 1.0, 0.85, 0.85, 0.9, 1.0, 1.1, 1.3, 1.5, 1.5, 1.2, 0.6,
])
MODELS = {
    "android": ("Xiaomi 15", "vivo X200", "OPPO Find X8", "Honor Magic7"),
    "ios": ("iPhone 16", "iPhone 17"),
    "harmony": ("Mate 70", "Pura 70"),
}
REVIEW_HOSTS = ("mate70.zol.com.cn", "iphone17.zol.com.cn", "xiaomi15.zol.com.cn", "vivox200.zol.com.cn")
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
UNKNOWN_HOSTS = ("cdn.akamai-edge.net", "api.push-service.cn", "img.static-cdn.com", "t.adserver.cn")


class Cells:
    """Every cell the day uses, and the JSON text of a location in it per roaming state."""

    def __init__(self, builder: EventBuilder, homes: int) -> None:
        names: list[str] = []
        self.groups: dict[str, np.ndarray] = {}
        for prefix in ("AP1", "AP2", "STD", "CBD", "UNI", "HSP", "MET", "MAL", "SHP"):
            found = _cells(prefix + "-")
            self.groups[prefix] = np.arange(len(names), len(names) + len(found))
            names += found
        for prefix, count in (("RES", homes), ("OTH", 200), ("DOM", 40), ("INT", 30)):
            self.groups[prefix] = np.arange(len(names), len(names) + count)
            names += [f"{prefix}-{k:04d}" for k in range(count)]
        self.names = names
        self.text = {
            r: builder.table.codes([f'","cell":"{c}","roaming":"{r}"}}\n' for c in names]) for r in ROAMING
        }

    def pick(self, group: str, index: np.ndarray) -> np.ndarray:
        """Cells of ``group`` chosen by ``index`` (any non-negative ints, wrapped)."""
        g = self.groups[group]
        return g[np.asarray(index) % len(g)]


class Stays:
    """Where subscribers are: (subscriber, from, to, cell, roaming, travel) rows, added per leg.

    ``travel`` marks the airport part of a traveller's day, which replaces
    whatever the ordinary itinerary had from then on.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(
        self, sub: np.ndarray, t_in: np.ndarray, t_out: np.ndarray, cell: np.ndarray | int, roaming: int = 0,
        travel: bool = False,
    ) -> None:
        n = len(sub)
        if n:
            self.parts.append((
                np.asarray(sub), np.broadcast_to(np.asarray(t_in, float), (n,)),
                np.broadcast_to(np.asarray(t_out, float), (n,)), np.broadcast_to(cell, (n,)),
                np.full(n, roaming), np.full(n, travel),
            ))

    def leg(self, sub: np.ndarray, t: np.ndarray, minutes: np.ndarray, cell: np.ndarray, travel: bool = False) -> np.ndarray:
        """A stay from ``t`` lasting ``minutes``; returns when it ends."""
        end = t + minutes * MIN
        self.add(sub, t, end, cell, travel=travel)
        return end

    def columns(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(c) for c in zip(*self.parts))
class Day:
    """One day of the province mix; ``run`` adds its events to the builder."""

    def __init__(
        self, b: EventBuilder, pop: Population, rng: np.random.Generator, day0_ms: int, cells: Cells,
        billing: "Billing", texts: "Texts",
    ) -> None:
        self.kb = texts
        self.b = b
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
        """Poisson(mean) events per subscriber (of ``among``): (subscriber per event, diurnal time)."""
        pool = np.arange(self.n) if among is None else among
        counts = self.rng.poisson(np.broadcast_to(mean, (len(pool),)))
        sub = np.repeat(pool, counts)
        return sub, self.diurnal_times(len(sub))

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

    # --- location ------------------------------------------------------------

    def location(self) -> None:
        rng, pop, cells, n = self.rng, self.pop, self.cells, self.n
        st = Stays()
        home = cells.pick("RES", pop.home_cell)
        local = np.flatnonzero(self.roam == 0)
        start = rng.uniform(0, 40 * MIN, n)  # a periodic update soon after midnight
        role = pop.role[local]
        commuters = local[(role == OFFICE) | (role == STUDENT)]
        homebodies = local[(role != OFFICE) & (role != STUDENT)]
        student = pop.role == STUDENT
        depart = np.clip(np.where(student, rng.normal(8.3, 0.5, n), rng.normal(7.8, 0.6, n)), 6, 10.5) * HOUR
        back = np.clip(np.where(student, rng.normal(17.0, 1.0, n), rng.normal(18.2, 0.8, n)), 15, 21) * HOUR

        # commuters: home, (metro,) road, (metro,) work with handovers and lunch, and back
        sub = commuters
        k = len(sub)
        hc = pop.home_cell[sub]
        stu = student[sub]
        work = np.where(stu, cells.pick("UNI", hc * 7 + 3), cells.pick("CBD", hc * 13 + 5))
        nearby = np.where(stu, cells.pick("UNI", rng.integers(0, 50, k)), cells.pick("CBD", rng.integers(0, 50, k)))
        metro = pop.uses_metro[sub]
        m_home = cells.pick("MET", 5 + hc % 25)
        m_work = np.where(stu, cells.pick("MET", 10 + hc % 7), cells.pick("MET", hc % 5))
        road = cells.pick("OTH", rng.integers(0, 200, k))
        st.add(sub, start[sub], depart[sub], home[sub])

        def journey(t: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
            t = t.copy()
            t[metro] = st.leg(sub[metro], t[metro], rng.uniform(3, 9, metro.sum()), first[metro])
            t = st.leg(sub, t, rng.uniform(15, 35, k), road)
            t[metro] = st.leg(sub[metro], t[metro], rng.uniform(2, 6, metro.sum()), last[metro])
            return t

        at_work = journey(depart[sub], m_home, m_work)
        leave = back[sub]
        lunch = rng.normal(12.1, 0.25, k) * HOUR
        out = (rng.random(k) < 0.35) & (lunch > at_work)
        lunch_end = lunch + rng.uniform(35, 75, k) * MIN
        move = (rng.random(k) < 0.5) & (at_work + 2 * HOUR < lunch)
        first_end = np.where(out, lunch, leave)
        st.add(sub, at_work, first_end, work)
        st.add(sub[move], (at_work + 2 * HOUR)[move], first_end[move], nearby[move])  # a handover in the district
        lunch_place = np.where(rng.random(k) < 0.5, cells.pick("MAL", rng.integers(0, 2, k)), nearby)
        st.add(sub[out], lunch[out], lunch_end[out], lunch_place[out])
        st.add(sub[out], lunch_end[out], leave[out], work[out])
        home_again = journey(leave, m_work, m_home)
        self.evening(st, sub, home_again, home[sub])

        # those around home: errands, the mall, the hospital, the operator's shop
        sub = homebodies
        st.add(sub, start[sub], DAY_S, home[sub])
        for share, lo, hi, minutes, group, count in (
            (0.30, 9.5, 11.5, (30, 90), "OTH", 200),
            (0.15, 14.0, 16.5, (60, 180), "MAL", 8),
            (0.02, 8.5, 11.0, (90, 240), "HSP", 5),
            (0.02, 10.0, 18.0, (15, 40), "SHP", 6),
        ):
            who = self.some(share, sub)
            t = rng.uniform(lo, hi, len(who)) * HOUR
            end = st.leg(who, t, rng.uniform(*minutes, len(who)), cells.pick(group, rng.integers(0, count, len(who))))
            st.add(who, end, DAY_S, home[who])  # home again

        # in another province all day
        a = self.away
        st.add(a, start[a], DAY_S, cells.pick("DOM", rng.integers(0, 40, len(a))), roaming=1)
        self.airport(st, home)
        self.emit(st)

    def evening(self, st: Stays, sub: np.ndarray, t: np.ndarray, home: np.ndarray) -> None:
        """After work: home, or the mall, or the match at the stadium (kick-off 19:30)."""
        rng, cells = self.rng, self.cells
        k = len(sub)
        r = rng.random(k)
        match = r < 0.03
        passing = (r >= 0.03) & (r < 0.06)  # near the stadium for a few minutes, not staying
        mall = (r >= 0.06) & (r < 0.18)
        going = match | passing | mall
        kick_off = 19.5 * HOUR
        arrive = np.maximum(np.where(match, kick_off - rng.uniform(10, 50, k) * MIN, t + rng.uniform(5, 60, k) * MIN), t)
        leave = np.where(match, kick_off + rng.uniform(100, 140, k) * MIN,
                         arrive + np.where(passing, rng.uniform(4, 14, k), rng.uniform(60, 150, k)) * MIN)
        place = np.where(mall, cells.pick("MAL", rng.integers(0, 8, k)), cells.pick("STD", rng.integers(0, 8, k)))
        st.add(sub, t, np.where(going, arrive, DAY_S), home)
        g = going
        st.add(sub[g], arrive[g], leave[g], place[g])
        hand = match & (rng.random(k) < 0.5)  # moving between stands: a handover inside the stadium
        st.add(sub[hand], (arrive[hand] + leave[hand]) / 2, leave[hand], cells.pick("STD", rng.integers(0, 8, hand.sum())))
        home_at = leave + rng.uniform(20, 50, k) * MIN
        st.add(sub[g], leave[g], home_at[g], cells.pick("OTH", rng.integers(0, 200, g.sum())))
        st.add(sub[g], home_at[g], DAY_S, home[g])
        self.at_match = sub[match]
        self.match_arrive = arrive[match]

    def airport(self, st: Stays, home: np.ndarray) -> None:
        """Travellers dwell 20–90 min at a terminal and fly; drop-offs stay 5–18 min and go home."""
        rng, cells = self.rng, self.cells
        for sub, flying in ((self.flyers, True), (self.dropoffs, False)):
            k = len(sub)
            t = self.travel_at[sub]
            road = cells.pick("OTH", rng.integers(0, 200, k))
            arrive = st.leg(sub, t, rng.uniform(25, 50, k), road, travel=True)
            terminal = np.where(rng.random(k) < 0.6, cells.pick("AP1", rng.integers(0, 6, k)),
                                cells.pick("AP2", rng.integers(0, 6, k)))
            dwell = (rng.uniform(20, 90, k) if flying else rng.uniform(5, 18, k)) * MIN
            leave = arrive + dwell
            walk = (rng.random(k) < 0.3) if flying else np.zeros(k, bool)  # T1 → T2: still one stay
            mid = arrive + dwell / 2
            st.add(sub, arrive, np.where(walk, mid, leave), terminal, travel=True)
            st.add(sub[walk], mid[walk], leave[walk], cells.pick("AP2", rng.integers(0, 6, walk.sum())), travel=True)
            if flying:
                abroad = rng.random(k) < 0.3
                land = leave + np.where(abroad, rng.uniform(3, 12, k), rng.uniform(1.5, 3.5, k)) * HOUR
                dest = np.where(abroad, cells.pick("INT", rng.integers(0, 30, k)), cells.pick("DOM", rng.integers(0, 40, k)))
                st.add(sub[~abroad], land[~abroad], DAY_S, dest[~abroad], roaming=1, travel=True)
                st.add(sub[abroad], land[abroad], DAY_S, dest[abroad], roaming=2, travel=True)
                self.b.add("power", self.ms(leave + 30), sub, ['","state":"off","roaming":"none"}\n'])
                on = np.where(abroad, self.t.code('","state":"on","roaming":"international"}\n'),
                              self.t.code('","state":"on","roaming":"domestic"}\n'))
                self.b.add("power", self.ms(land - 5), sub, [on])
                self.landed = (sub, land, abroad)
            else:
                home_at = st.leg(sub, leave, rng.uniform(25, 50, k), road, travel=True)
                st.add(sub, home_at, DAY_S, home[sub], travel=True)

    def emit(self, st: Stays) -> None:
        """Location updates: one on entering each stay, then periodic ones while it lasts."""
        sub, t_in, t_out, cell, roam, travel = st.columns()
        cut = self.travel_at[sub]
        t_out = np.where(travel, t_out, np.minimum(t_out, cut))
        keep = (travel | (t_in < cut)) & (t_out > t_in) & (t_in < DAY_S)
        sub, t_in, t_out, cell, roam = sub[keep], t_in[keep], t_out[keep], cell[keep], roam[keep]
        period = self.rng.uniform(50, 120, len(sub)) * MIN
        extra = np.minimum(np.floor((np.minimum(t_out, DAY_S) - t_in) / period).astype(np.int64), 24)
        rep = np.repeat(np.arange(len(sub)), extra)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(extra) - extra, extra) + 1
        all_sub = np.concatenate([sub, sub[rep]])
        all_t = np.concatenate([t_in, t_in[rep] + k * period[rep]])
        all_cell = np.concatenate([cell, cell[rep]])
        all_roam = np.concatenate([roam, roam[rep]])
        codes = np.stack([self.cells.text[r] for r in ROAMING])[all_roam, all_cell]
        self.b.add("location", self.ms(all_t), all_sub, [codes])

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



class Texts:
    """The JSON texts the province mix writes, interned once."""

    def __init__(self, table: Table) -> None:
        from bench.traffic import HOST_PREFIXES, kb_rows

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
        local = dt.datetime.fromtimestamp(d.day0 / 1000 + 8 * 3600, dt.timezone.utc)
        cycle = f"{local.year}-{local.month:02d}"
        if self.cycle and cycle != self.cycle:
            self.pct = rng.uniform(0, 3, n)
        self.cycle = cycle
        # usage: a few updates a day; some come near 90 % today and cross it, most stop short
        subs = self.has_plan
        near = d.some(0.03, subs)
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
        slide = d.some(np.where(d.pop.churn_score[subs] >= 0.6, 0.45, 0.04), subs)
        close = d.some(0.03, subs)
        self.balance[slide] = np.round(rng.uniform(10.5, 16, len(slide)), 2)
        self.balance[close] = np.round(rng.uniform(10.6, 13, len(close)), 2)
        spend = rng.lognormal(math.log(2.0), 0.6, n)
        spend[slide] = rng.uniform(3, 14, len(slide))
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


def generate(b: EventBuilder, pop: Population, rng: np.random.Generator, start_ms: int, hours: float) -> None:
    """Add ``hours`` of the province mix for ``pop`` from ``start_ms`` (local midnight) to ``b``."""
    cells = Cells(b, homes=int(pop.home_cell.max()) + 1)
    billing = Billing(pop, rng)
    texts = Texts(b.table)
    for day in range(max(1, math.ceil(hours / 24))):
        Day(b, pop, rng, start_ms + day * DAY_S * 1000, cells, billing, texts).run()
