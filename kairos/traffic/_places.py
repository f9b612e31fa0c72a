"""Where subscribers are during a day: cells, stays, and the itineraries that make them.

``Cells`` knows every cell the day uses (the named areas of
``scenarios/reference/cells.csv`` plus homes, roads, other provinces and
abroad); ``Stays`` collects (subscriber, from, to, cell) rows leg by leg;
``Movement`` (mixed into the province's ``Day``) builds the itineraries —
commuting by metro or road, lunch, evenings at the mall or the match,
errands, airport trips — and turns stays into location updates.
"""

from __future__ import annotations

import numpy as np

from kairos.traffic._columns import EventBuilder
from kairos.traffic._population import OFFICE, STUDENT, _cells

DAY_S = 86_400
MIN = 60.0
HOUR = 3600.0
ROAMING = ("none", "domestic", "international")


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
                np.asarray(sub, np.int32), np.broadcast_to(np.asarray(t_in, float), (n,)),
                np.broadcast_to(np.asarray(t_out, float), (n,)), np.broadcast_to(np.asarray(cell, np.int32), (n,)),
                np.full(n, roaming, np.int8), np.full(n, travel),
            ))

    def leg(self, sub: np.ndarray, t: np.ndarray, minutes: np.ndarray, cell: np.ndarray, travel: bool = False) -> np.ndarray:
        """A stay from ``t`` lasting ``minutes``; returns when it ends."""
        end = t + minutes * MIN
        self.add(sub, t, end, cell, travel=travel)
        return end

    def columns(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(c) for c in zip(*self.parts))


class Movement:
    """The location part of a province day (a mixin of ``Day``: uses its rng, population, builder)."""

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
        lo, hi = self.window
        keep = (travel | (t_in < cut)) & (t_out > t_in) & (t_in < hi) & (t_out > lo)
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
