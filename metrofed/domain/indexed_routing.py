"""The gateway's routing path: ``routing.route``'s decision over the catalog's index, at array speed.

``routing.route`` judges capabilities one Python loop iteration at a time (~3 us each); a common need at
1M capabilities has tens of thousands that cover its range. Here the index's columns
(``route_table``) are judged as arrays instead, and ``route`` itself runs only over a small *witness
set*, so that every figure and every word of the answer still comes from ``route``:

1. select the entries of the accepted instrument groups whose interval covers the range (the router's
   own test, with its tolerance); those whose smallest U at an end of the range already fails the ratio
   (a sound bound, ``_probes``) are counted UNCERTAINTY_INADEQUATE without further work;
2. *simple* entries (``route_table``; nearly all) are judged as arrays: TUR at the worst point of the
   range (rule 4, the same IEEE operations as ``routing._worst``, once per distinct band set), legal route
   (rule 5, per (centre, method code) pair present, remembered per centre profile), site (6), load and
   capacity (7) -- each entry's reason code, or eligible;
3. *complex* entries (bands whose units do not fit, more than ``NB`` bands in one interval, a seam that
   closes at this need's tolerance, ...) go to ``route`` whole;
4. among the eligible simple entries, the ones that can be in the best ``max_candidates`` (scores summed
   as ``routing._rank`` does, judge's instrument relevance per parsed instrument or word overlap for every
   row; a 1e-6 margin for rounding), and the first ``max_rejected`` rejections in (centre, capability)
   order, join the complex ones in the witness set; ``route`` ranks and explains it with ``price_floor`` =
   the cheapest eligible price overall;
5. the decision's totals (eligible, rejected, by reason) are patched with the counts of everything judged
   by arrays and not handed to ``route``;
6. when nothing is eligible, the same for the entries that overlap the range (split material): their
   pieces are judged as arrays, the greedy split runs over them and the complex ones' pieces, and the
   pieces it picks join the witness set, so ``route`` proposes exactly that split (step 4's ``route``
   call is skipped when no complex entry could have been eligible).

The result equals ``route(need, handed)`` where ``handed`` is every capability selected in 1 (and 6):
same candidates (score, explanation), same rejections kept, same totals, same split -- property-tested
in tests/unit/test_indexed_routing.py against ``route`` itself.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Mapping

import numpy as np

from . import legal, routing
from .capability import MEASURING_KINDS, ServiceKind, Site
from .instruments import judge_uncached, need_key, need_tokens, overlap_relevance
from .route_table import B_HI, B_LO, B_UR, B_Z, CENTRES, CODES, HEADS, HEADS_TEXT, ITEXTS, bandsets, overlap_counts

RC = routing.ReasonCode
_OK, _UA, _NA, _SITE, _NC, _RNC = 0, 1, 2, 3, 4, 5
_CODE_RC = {_UA: RC.UNCERTAINTY_INADEQUATE, _NA: RC.NOT_AUTHORISED, _SITE: RC.SITE, _NC: RC.NO_CAPACITY,
            _RNC: RC.RANGE_NOT_COVERED}
_MARGIN = 1e-6  # score slack when choosing the rows route() ranks: far above float and 9-digit rounding error
_SEAM_SAFETY = 4.0  # a seam narrower than this many tolerances may close: such capabilities go to route()
_INF = math.inf
# The gateway answers with the best 20 eligible capabilities, each with its explanation paragraph (route's
# ``explain`` default), and the count of all of them (``candidates_total``).
GATEWAY_CANDIDATES = 20

_MEMO_MAX = 1 << 16


class _Memos:
    """Memos across requests, of what depends on the centres (few) rather than on the need. Keys and values
    are plain numbers and strings -- objects the cyclic collector stops tracking once it has seen them -- so
    that they cost it nothing; a profile or weights object enters a key by its id, kept valid by pinning the
    object (alive, so its id is never reused; a replaced profile is a new object, hence a new key). When
    full, a new set replaces them; a request keeps the set it started with, so its keys stay valid."""

    __slots__ = ("auth", "facts", "pinned")

    def __init__(self) -> None:
        self.auth: dict[tuple, bool] = {}  # (id(profile), kind, method code, regulation) -> blocked
        self.facts: dict[tuple, tuple] = {}  # (centre, load, need city, province, id(profile), id(weights)) -> facts
        self.pinned: dict[int, object] = {}  # id -> the profile / weights object a key names

    def pin(self, obj) -> int:
        i = id(obj)
        if self.pinned.get(i) is not obj:
            self.pinned[i] = obj
        return i


_MEMOS = _Memos()


def _memos() -> _Memos:
    """The current memos (new ones when these are full)."""
    global _MEMOS
    m = _MEMOS
    if len(m.pinned) >= 4096 or len(m.auth) >= _MEMO_MAX or len(m.facts) >= _MEMO_MAX:
        m = _MEMOS = _Memos()
    return m


# ---- selection --------------------------------------------------------------------------------------

class _Rows:
    """Simple entries selected from several blocks, read column by column (concatenated once, on demand)."""

    __slots__ = ("parts", "n", "offsets", "_cols")

    def __init__(self, parts: list[tuple]):
        self.parts = parts
        self.n = sum(len(i) for _, i in parts)
        self.offsets = np.cumsum([0] + [len(i) for _, i in parts])
        self._cols: dict[str, np.ndarray] = {}

    def col(self, name: str) -> np.ndarray:
        got = self._cols.get(name)
        if got is None:
            if len(self.parts) == 1:
                b, i = self.parts[0]
                got = getattr(b, name)[i]
            elif not self.parts:
                got = np.empty(0, np.int64)
            else:
                got = np.concatenate([getattr(b, name)[i] for b, i in self.parts])
            self._cols[name] = got
        return got

    def caps(self, ks) -> list:
        """The capabilities of rows ``ks``."""
        ks = np.asarray(ks, np.int64)
        if not len(ks):
            return []
        if len(self.parts) == 1:
            b, i = self.parts[0]
            caps = b.caps
            return [caps[j] for j in i[ks].tolist()]
        p = np.searchsorted(self.offsets, ks, side="right") - 1
        out = []
        for k, pp in zip(ks.tolist(), p.tolist()):
            b, i = self.parts[pp]
            out.append(b.caps[int(i[k - self.offsets[pp]])])
        return out

    def key_pairs(self, ks: np.ndarray, want: int) -> list[tuple[tuple[str, str], int]]:
        """((centre id, capability id), row) for the rows ``ks`` (ascending) that can be among the ``want``
        first in that order: of a block built in that order only its first ``want`` (rows keep their
        block's order), of another (a live tail) all."""
        out: list[tuple[tuple[str, str], int]] = []
        offsets = self.offsets.tolist()
        bounds = np.searchsorted(ks, offsets).tolist()
        for p, (b, i) in enumerate(self.parts):
            sel = ks[bounds[p]:bounds[p + 1]]
            if b.key_sorted:
                sel = sel[:want]
            if len(sel):
                caps = [b.caps[j] for j in i[sel - offsets[p]].tolist()]
                out.extend(zip([(c.centre_id, c.capability_id) for c in caps], sel.tolist()))
        return out

    def take(self, ks) -> "_Rows":
        """The rows ``ks`` (sorted ascending) as a new selection."""
        ks = np.asarray(ks, np.int64)
        parts = []
        for p, (b, i) in enumerate(self.parts):
            lo, hi = self.offsets[p], self.offsets[p + 1]
            a, z = np.searchsorted(ks, lo), np.searchsorted(ks, hi)
            if z > a:
                parts.append((b, i[ks[a:z] - lo]))
        return _Rows(parts)


def _select(tables, lo_max: float, hi_min: float, excl: np.ndarray | None, seam_min: float,
            probe: list[tuple[float, float]] | None = None, but_not: tuple[float, float] | None = None,
            overlap: tuple[float, float] | None = None):
    """Entries with lo <= lo_max and hi >= hi_min: (simple ones as _Rows, simple ones that certainly fail
    the uncertainty check at a ``probe`` point (x, U max) as _Rows, complex capabilities, deduplicated).

    A probe is a sound bound (see ``_probes``): an entry whose smallest U of any band at x exceeds U max
    fails rule 4, so it is counted and kept for the rejection list without being evaluated. ``but_not`` =
    (lo_max, hi_min) leaves out the simple entries that also meet that (narrower) condition: the overlap pass
    takes the covering ones from the first pass. ``overlap`` =
    (lo_max, hi_min) of the overlap test: a capability with a seam narrower than ``seam_min`` is taken
    (complex) when any of its intervals overlaps the range, since the router's tolerance may join intervals
    the index keeps apart."""
    parts = []
    fails = []
    cplx: dict[int, object] = {}
    for t in tables:
        for bl in t.blocks:
            if overlap is not None and bl.seam_floor <= seam_min:
                narrow = bl.alive & (bl.seam <= seam_min) & (bl.lo <= overlap[0]) & (bl.hi >= overlap[1])
                if excl is not None:
                    narrow &= ~np.isin(bl.centre, excl)
                caps = bl.caps
                for j in np.flatnonzero(narrow).tolist():
                    cplx[id(caps[j])] = caps[j]
            m = (bl.lo <= lo_max) & (bl.hi >= hi_min)
            if bl.nlive != len(bl):
                m &= bl.alive
            if excl is not None:
                m &= ~np.isin(bl.centre, excl)
            idx = np.flatnonzero(m)
            if not len(idx):
                continue
            s = None if bl.plain > seam_min else bl.simple[idx] & (bl.seam[idx] > seam_min)
            if s is not None and not s.all():
                caps = bl.caps
                for j in idx[~s].tolist():
                    c = caps[j]
                    cplx[id(c)] = c
                idx = idx[s]
            if but_not is not None and len(idx):
                idx = idx[~((bl.lo[idx] <= but_not[0]) & (bl.hi[idx] >= but_not[1]))]
            if probe and len(idx):
                ur, ua = bl.ur[idx], bl.ua[idx]
                uz = bl.uz[idx] if bl.any_uz else None
                bad = None
                for x, umax in probe:
                    b = (ur * (abs(x) if uz is None else np.abs(x - uz)) + ua) > umax
                    bad = b if bad is None else (bad | b)
                if bad.any():
                    fails.append((bl, idx[bad]))
                    idx = idx[~bad]
            if len(idx):
                parts.append((bl, idx))
    return _Rows(parts), _Rows(fails), list(cplx.values())


def _probes(ev, req: float) -> list[tuple[float, float]]:
    """(x, U max) at each end of the range that the router always evaluates (routing._worst: every band
    holding it is evaluated there; with the 10 % FS floor, an end inside the floor is not): T(x) / ratio,
    with T as the router computes it, and a relative slack for rounding."""
    lo, hi, floor, nz = ev.lo, ev.hi, ev.floor, ev.zero
    out = []
    for x in ((lo,) if ev.hi - ev.lo <= ev.eps else (lo, hi)):
        if floor and nz - floor < x < nz + floor:
            continue
        t = ev.t_rel * abs(x - nz) if ev.t_rel else ev.t_const
        out.append((x, t / req * (1 + 1e-6) + 1e-300))  # slack: a band ending within eps of x
    return out


# ---- rule 4 over arrays -----------------------------------------------------------------------------

def _tu(x, t_rel: float, t_const: float, nz: float, ur, ua, f95, bz) -> np.ndarray:
    """T/U at x (scalar or array) per element: routing._worst_of_points' arithmetic, in place where it can."""
    uu = np.subtract(x, bz)
    np.abs(uu, out=uu)
    uu *= ur
    uu += ua
    uu *= f95  # f95 * (ur * |x - bz| + ua)
    if t_rel:
        t = np.abs(np.subtract(x, nz)) * t_rel if isinstance(x, np.ndarray) else t_rel * abs(x - nz)
    else:
        t = t_const
    nonpos = uu <= 0 if len(uu) and uu.min() <= 0 else None
    r = np.divide(t, uu, out=uu)
    if nonpos is not None:
        r[nonpos] = _INF
    return r


def _ratios(bands: np.ndarray, nb: np.ndarray, a, b, point: bool, ev) -> np.ndarray:
    """T/U at the worst point of [a, b] (scalars or per-row arrays) for each row: ``routing._worst`` over
    the row's bands (``bands``: route_table's (field, row, band) layout), value for value -- the same
    operations in the same order; only the ratio is needed here. Computed per (row, band) pair, then
    reduced per row (range: the worst band; single point: the best band holding it)."""
    m = len(nb)
    if not m:
        return np.empty(0)
    eps, t_rel, t_const, floor, nz = ev.eps, ev.t_rel, ev.t_const, ev.floor, ev.zero
    nbi = nb.astype(np.intp)
    starts = np.cumsum(nbi) - nbi
    row = np.repeat(np.arange(m), nbi)
    blo, bhi, ur, ua, f95, bz = bands[:, row, np.arange(len(row)) - starts[row]]
    if isinstance(a, np.ndarray):
        a = a[row]
        b = b[row]
    s0 = np.where(blo > a, blo, a)
    s1 = np.where(bhi < b, bhi, b)
    d = s1 - s0
    valid = (d >= -eps) if point else (d > eps)
    if floor:
        zlo, zhi = nz - floor, nz + floor
        subs = [(s0 <= zlo, s0, np.where(s1 < zlo, s1, zlo)), (s1 >= zhi, np.where(s0 > zhi, s0, zhi), s1)]
        valid &= subs[0][0] | subs[1][0]  # a band with no point left outside the floor is not evaluated
    else:
        subs = [(None, s0, s1)]
    best = np.full(len(row), _INF)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for cond, c0, c1 in subs:
            for x in (c0, c1):
                r = _tu(x, t_rel, t_const, nz, ur, ua, f95, bz)
                if cond is not None:
                    r[~cond] = _INF
                np.minimum(best, r, out=best)
            inner = (c0 < nz) & (nz < c1)
            inner2 = (ur != 0) & (c0 < bz) & (bz < c1)
            if cond is not None:
                inner &= cond
                inner2 &= cond
            for msk, x in ((inner, None), (inner2, bz)):
                k = np.flatnonzero(msk)
                if len(k):
                    xs = nz if x is None else x[k]
                    r = _tu(xs, t_rel, t_const, nz, ur[k], ua[k], f95[k], bz[k])
                    best[k] = np.minimum(best[k], r)
    if point:  # the best band holding the point; none: no evaluable point (inf)
        out = np.maximum.reduceat(np.where(valid, best, -_INF), starts)
        out[out == -_INF] = _INF
        return out
    return np.minimum.reduceat(np.where(valid, best, _INF), starts)


def _range_ratios(rows: "_Rows", lo: float, hi: float, point: bool, ev) -> np.ndarray:
    """``_ratios`` over [lo, hi] for every row of ``rows``: once per distinct band set among them
    (route_table.bandsets), read per row."""
    if not rows.n:
        return np.empty(0)
    ids = rows.col("bset")
    present = _present(ids)
    bands, nb = bandsets()  # taken after the rows: they hold every band set the rows name
    local = np.zeros(int(present[-1]) + 1, np.intp)
    local[present] = np.arange(len(present))
    return _set_ratios(bands[:, present, :], nb[present], lo, hi, point, ev)[local[ids]]


def _set_ratios(bands: np.ndarray, nb: np.ndarray, lo: float, hi: float, point: bool, ev) -> np.ndarray:
    """``_ratios`` over [lo, hi] for band sets (``bands`` shaped (field, set, band slot)). Sets of one band
    containing the whole range (nearly all) take the short way: their overlap is exactly [lo, hi], so the
    candidate points are scalars; the others go through ``_ratios``."""
    n = len(nb)
    eps, t_rel, t_const, floor, nz = ev.eps, ev.t_rel, ev.t_const, ev.floor, ev.zero
    one = (nb == 1) & (bands[B_LO, :, 0] <= lo) & (bands[B_HI, :, 0] >= hi)
    out = np.empty(n)
    rest = np.flatnonzero(~one)
    if len(rest):
        out[rest] = _ratios(bands[:, rest, :], nb[rest], lo, hi, point, ev)
    if len(rest) == n:
        return out
    fast = np.flatnonzero(one)
    # s0 = lo, s1 = hi exactly (routing._worst: ``b_lo if b_lo > lo else lo``)
    if not ((hi - lo >= -eps) if point else (hi - lo > eps)):
        out[fast] = _INF  # no part of positive length: nothing evaluable
        return out
    ur, ua, f95, bz = bands[B_UR:B_Z + 1, fast, 0]
    subs = routing._outside_floor(lo, hi, nz, floor) if floor else [(lo, hi)]
    best = np.full(len(ur), _INF)  # no sub-interval (the range lies within the floor): no point, inf
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for c0, c1 in subs:
            for x in [c0, c1] + ([nz] if c0 < nz < c1 else []):
                np.minimum(best, _tu(x, t_rel, t_const, nz, ur, ua, f95, bz), out=best)
            inner = np.flatnonzero((ur != 0) & (c0 < bz) & (bz < c1))
            if len(inner):  # the zero of a band's unit inside the range (°C bands on a K range ...)
                r = _tu(bz[inner], t_rel, t_const, nz, ur[inner], ua[inner], f95[inner], bz[inner])
                best[inner] = np.minimum(best[inner], r)
    out[fast] = best
    return out


# ---- rules 5-7 over arrays --------------------------------------------------------------------------

class _Facts:
    """Per-centre facts (routing._centre_facts) as arrays indexed by interned centre id."""

    def __init__(self, present: np.ndarray, centres, load, need, weights, memos: _Memos):
        self.memos = memos
        n = len(CENTRES.values)
        self.profile = [None] * n
        self.full = np.zeros(n, np.bool_)
        self.ld_term = np.zeros(n)
        self.p_term = np.zeros(n)
        city, province = need.city, need.province
        pin = memos.pin
        wid = pin(weights)  # by id: hashing the weights (a dataclass) per centre costs more than the rest
        names = CENTRES.values
        get_load, get_profile, memo = load.get, centres.get, memos.facts
        for ci in present.tolist():
            cid = names[ci]
            prof = get_profile(cid)
            key = (cid, get_load(cid), city, province, pin(prof), wid)
            hit = memo.get(key)
            if hit is None:
                _c, ld_full, _ld, _prox, ld_term, p_term = routing._centre_facts(cid, centres, load, city, province,
                                                                                weights)
                hit = memo[key] = (ld_full is not None, ld_term, p_term)
            self.profile[ci] = prof
            self.full[ci], self.ld_term[ci], self.p_term[ci] = hit


def _present(ids: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.bincount(ids)) if len(ids) else np.empty(0, np.int64)


def _auth_blocked(memos: _Memos, profile, sk: ServiceKind, code, reg: str | None) -> bool:
    """routing._route_blocker's legal part for one (centre, method code): True when it blocks."""
    key = (memos.pin(profile), sk.value, code, reg)
    hit = memos.auth.get(key)
    if hit is not None:
        return hit
    if sk is ServiceKind.VERIFICATION:
        blocked = (profile is None or (bool(reg) and not legal.codes_match(code, reg))
                   or not any(legal.codes_match(code, c) for c in profile.authorisations.verification))
    else:
        blocked = ((bool(reg) and not legal.codes_match(code, reg)) or profile is None
                   or not any(legal.codes_match(code, c) for c in profile.authorisations.type_evaluation))
    memos.auth[key] = blocked
    return blocked


def _blockers(rows: _Rows, facts: _Facts, sk: ServiceKind, reg: str | None, need) -> np.ndarray:
    """Reason code of rules 5-7 per row (0 = none), in routing._route_blocker's order."""
    centre = rows.col("centre")
    qty = need.quantity_of_items
    blk = np.where(rows.col("capn") < qty, _NC, _OK).astype(np.int8)
    blk[facts.full[centre]] = _NC
    if need.site is Site.LAB or need.site is Site.ON_SITE:
        bad = 1 if need.site is Site.LAB else 0  # route_table.SITE_CODE: on-site only / lab only
        blk[rows.col("site") == bad] = _SITE
    if (sk is ServiceKind.VERIFICATION or sk is ServiceKind.TYPE_EVALUATION) and rows.n:
        code = rows.col("code")
        codes = _present(code)
        local = np.zeros(int(codes[-1]) + 1, np.int64)
        local[codes] = np.arange(len(codes))
        pair = centre.astype(np.int64) * len(codes) + local[code]  # (centre, method code): judged once each
        present = _present(pair)
        blocked = np.zeros(int(present[-1]) + 1, np.bool_)
        for p in present.tolist():
            ci, k = divmod(p, len(codes))
            blocked[p] = _auth_blocked(facts.memos, facts.profile[ci], sk, CODES.values[int(codes[k])], reg)
        blk[blocked[pair]] = _NA
    return blk


# ---- scoring (to choose what route() ranks) ---------------------------------------------------------

def _scores(rows: _Rows, ratio: np.ndarray, facts: _Facts, p_min: float, req: float, days_left, weights):
    """Score without the instrument term, per row (as routing._rank sums it), and the deadline penalty."""
    centre = rows.col("centre")
    lead = rows.col("lead")
    price = rows.col("price")
    with np.errstate(divide="ignore", invalid="ignore"):
        # routing: w_m * ((min(ratio / req, 3) - 1) / 2 if ratio != inf else 1.0)
        m_term = weights.margin * np.where(ratio == _INF, 1.0, (np.minimum(ratio / req, 3.0) - 1.0) / 2.0)
        e4 = (m_term + facts.p_term[centre]) + weights.lead_time * (1.0 / (1.0 + lead / 7.0))
        base = (e4 + weights.price * np.where(price <= 0, 1.0, p_min / price)) + facts.ld_term[centre]
    pen = np.where(lead > days_left, weights.deadline_miss_penalty, 0.0) if days_left is not None else 0.0
    return base - pen


def _top(rows: _Rows, base: np.ndarray, k: int, need, check_instrument: bool, weights) -> np.ndarray:
    """Row numbers (ascending) that can be among the best ``k`` by score (``_MARGIN`` below the k-th
    included).

    The instrument term, exactly as judge gives it, for every row: when both sides name an instrument the
    vocabulary knows, judge's relevance depends on the capability's parsed heads alone, so it is asked once
    per distinct parse (route_table.HEADS); otherwise it is the share of the need's words the capability's
    text has (word overlap), counted for all texts at once (route_table.overlap_counts)."""
    n = len(base)
    if n <= k:
        return np.arange(n)
    w_i = weights.instrument
    if not check_instrument:  # rule 2b does not apply: the instrument term is w_i for every row
        return _best_by_score(base + w_i * 1.0, k)
    itok = rows.col("itok")
    ni, nm = need.instrument_type, need.measurand
    texts = ITEXTS.values

    def rel(t: int) -> float:
        izh, ien, mzh, men, kw = texts[t]
        return w_i * judge_uncached(ni, nm, izh, ien, mzh, men, kw).relevance

    i_term = np.empty(n)
    known = np.zeros(n, np.bool_)
    if need_key(ni, nm)[0]:
        hq = rows.col("hq")
        present = _present(hq)
        by_hq = np.full(int(present[-1]) + 1, np.nan)
        for h in present.tolist():
            if HEADS.values[h][0]:  # the capability names a known instrument too
                by_hq[h] = rel(HEADS_TEXT[h])
        v = by_hq[hq]
        known = ~np.isnan(v)
        i_term[known] = v[known]
    if not known.all():  # ranked by word overlap (judge's branch for it): share of the need's words
        unk = np.flatnonzero(~known)
        nt = need_tokens(ni, nm)
        # judge's own arithmetic for each possible count of shared words
        by_count = np.array([w_i * overlap_relevance(c / len(nt) if nt else 0.0) for c in range(len(nt) + 1)])
        i_term[unk] = by_count[overlap_counts(nt)[itok[unk]]] if nt else by_count[0]
    return _best_by_score(base + i_term, k)


def _best_by_score(s: np.ndarray, k: int) -> np.ndarray:
    """Rows (ascending) whose score is within ``_MARGIN`` of the k-th best or above."""
    kth = np.partition(s, len(s) - k)[len(s) - k]
    return np.flatnonzero(s >= kth - _MARGIN)


def _first_by_key(rows: _Rows, ks: np.ndarray, limit: int | None) -> list[int]:
    """The ``limit`` rows of ``ks`` first in (centre id, capability id) order, then by row (all of them for
    None): among the first ``limit`` of each block built in that order."""
    if limit is None or len(ks) <= limit:
        return ks.tolist()
    if limit <= 0:
        return []
    return [k for _, k in heapq.nsmallest(limit, rows.key_pairs(ks, limit))]


# ---- the path ---------------------------------------------------------------------------------------

def route_need(snapshot, need, load: Mapping[str, float], today, *, exclude_centres=frozenset(),
               stats: dict | None = None, **route_kw):
    """See the module docstring and ``catalog.route_need`` (which delegates here).

    The cyclic collector is paused meanwhile, as ``routing.route`` does and for the same reason: what a
    request allocates is acyclic and freed by reference counting, and a collection in the middle would
    traverse every long-lived object (the instrument parsers' caches ...) for nothing."""
    with routing.gc_paused():
        return _route_need(snapshot, need, load, today, exclude_centres, stats, route_kw)


def _route_need(snapshot, need, load, today, exclude_centres, stats, route_kw):
    from .catalog import instrument_filter

    route_kw.setdefault("max_candidates", GATEWAY_CANDIDATES)
    max_c = route_kw.get("max_candidates")
    max_r = route_kw.get("max_rejected", 20)
    weights = route_kw.get("weights", routing.WEIGHTS)
    sk, _legal, regulation, _why = routing.effective_service_kind(need)
    accept = instrument_filter(need, sk)
    groups = snapshot._buckets.get((need.quantity_kind, sk), {})
    tables = [t for g, t in groups.items() if accept is None or accept(g)]
    req = need.decision_rule.required_ratio
    ev = routing._Eval(need, req)
    lo, hi, eps = ev.lo, ev.hi, ev.eps
    point = hi - lo <= eps
    reg = regulation if sk in (ServiceKind.VERIFICATION, ServiceKind.TYPE_EVALUATION) else None
    excl = None
    if exclude_centres:
        excl = np.array([CENTRES.ids[c] for c in exclude_centres if c in CENTRES.ids], np.int32)
    seam_min = _SEAM_SAFETY * eps
    centres = snapshot.centres
    days_left = (need.deadline - today).days if need.deadline is not None else None
    check_instrument = sk in MEASURING_KINDS

    # 1-3: cover the range
    rows, fails, cplx = _select(tables, lo + eps, hi - eps, excl, seam_min, _probes(ev, req),
                                overlap=(hi + eps, lo - eps))
    ratio = _range_ratios(rows, lo, hi, point, ev)
    facts = _Facts(_present(rows.col("centre")), centres, load, need, weights, _memos())
    code = np.where(ratio < req, _UA, _blockers(rows, facts, sk, reg, need)).astype(np.int8) if rows.n \
        else np.empty(0, np.int8)
    elig = np.flatnonzero(code == _OK)
    p_min = float(rows.col("price")[elig].min()) if len(elig) else None
    if cplx:
        _, p_c, _ = routing.route_parts(need, cplx, centres, load, today, **{**route_kw, "max_candidates": 0,
                                                                            "explain": 0, "max_rejected": 0})
        if p_c is not None and (p_min is None or p_c < p_min):
            p_min = p_c
    # 4: the witness set
    if len(elig):
        sub = rows.take(elig)
        base = _scores(sub, ratio[elig], facts, p_min, req, days_left, weights)
        top = elig[_top(sub, base, len(elig) if max_c is None else max_c, need, check_instrument, weights)]
    else:
        top = elig
    # the rejected: evaluated rows that failed, then every row the probe failed (rule 4)
    judged = _Rows(rows.parts + fails.parts)
    code = np.concatenate([code, np.full(fails.n, _UA, np.int8)])
    rej = np.flatnonzero(code != _OK)
    first = _first_by_key(judged, rej, max_r)
    trace = stats.get("handed") if stats is not None else None  # tests: what route() must agree with
    if trace is not None:
        trace[:] = judged.caps(np.arange(judged.n)) + cplx
    handed = judged.n + len(cplx)
    d = None
    if len(elig) or cplx:  # else route() would find no candidate: straight to the overlap pass
        witness = {id(c): c for c in cplx}
        for c in judged.caps(top.tolist() + first):
            witness[id(c)] = c
        n_witness = len(witness)
        out: dict = {}
        d = routing.route(need, list(witness.values()), centres, load, today, price_floor=p_min, _out=out,
                          **route_kw)
        centre = judged.col("centre")
        d = _patched(d, out, eligible=len(elig) - len(top), codes=code[rej], centres=centre[rej],
                     minus=np.stack([centre[first], code[first]], axis=1), elig_centres=centre[elig])
    partial = d is None or not d.candidates
    if partial:
        d, more, n_cplx, n_witness = _split_pass(need, tables, excl, seam_min, ev, req, sk, reg, centres, load,
                                                 today, route_kw, max_r, trace, judged, code, rej, first)
        handed = judged.n + more + n_cplx
    if stats is not None:
        stats["candidates"] = handed
        stats["partial"] = partial
        stats["complex"] = len(cplx)
        stats["witness"] = n_witness
    return d


_RCS = list(RC)  # reason codes in their order: the columns of _patched's per-centre counts
_RC_COL = {c: j for j, c in enumerate(_RCS)}
_CODE_COL = np.array([_RC_COL[_CODE_RC[c]] if c else 0 for c in range(6)])  # array code -> column


def _patched(d, out: dict, *, eligible: int, codes: np.ndarray, centres: np.ndarray, minus: np.ndarray,
             elig_centres: np.ndarray):
    """``d`` (route() over the witness set, ``out`` its ``_out``) with what the arrays judged and route() did
    not see: ``eligible`` more eligible; the rejections ``codes`` of centres ``centres`` (interned ids), all
    judged by arrays, counted in place of those route() saw (``minus``: rows of (centre, code)); the
    centres ``elig_centres`` eligible. Counted per (centre, reason code), whence the totals."""
    nc = len(CENTRES.values)
    m = np.bincount(centres.astype(np.int64) * len(_RCS) + _CODE_COL[codes], minlength=nc * len(_RCS))
    m = m.reshape(nc, len(_RCS))
    if len(minus):
        np.subtract.at(m, (minus[:, 0], _CODE_COL[minus[:, 1]]), 1)
    ids = CENTRES.ids
    for cid, counts in out["per_centre"].items():  # route()'s own, over the witness set
        row = m[ids[cid]]  # every capability of the index has an interned centre
        for c, n in counts.items():
            row[_RC_COL[c]] += n
    served = np.zeros(nc, np.bool_)
    served[elig_centres] = True
    served[[ids[cid] for cid in out["eligible_centres"]]] = True
    per_code = m.sum(axis=0).tolist()
    per_centre = m.sum(axis=1)
    names = CENTRES.values
    rows = sorted(np.flatnonzero((per_centre > 0) & ~served).tolist(), key=names.__getitem__)
    make = routing.CentreRejection
    rejected_centres = [make(names[r], t, {_RCS[j]: n for j, n in enumerate(counts) if n})
                        for r, t, counts in zip(rows, per_centre[rows].tolist(), m[rows].tolist())]
    return dataclasses.replace(d, candidates_total=d.candidates_total + eligible, rejected_total=sum(per_code),
                               rejected_by_reason={_RCS[j]: n for j, n in enumerate(per_code) if n},
                               rejected_centres=rejected_centres)


def _split_pass(need, tables, excl, seam_min, ev, req, sk, reg, centres, load, today, route_kw, max_r, trace,
                judged: _Rows, code: np.ndarray, rej: np.ndarray, first: list[int]):
    """Step 6: nothing is eligible -- route()'s decision over everything that overlaps the range: the
    covering entries the first pass judged (``judged``, ``code``, its rejections ``rej`` and the first of
    them ``first``) and the entries that overlap without covering (RANGE_NOT_COVERED, and split material).
    Returns (decision, non-covering capabilities, complex capabilities, the witness set's size)."""
    lo, hi, eps = ev.lo, ev.hi, ev.eps
    rows, _, cplx = _select(tables, hi + eps, lo - eps, excl, seam_min, but_not=(lo + eps, hi - eps))
    nc = np.flatnonzero(_first_per_capability(rows))  # one rejection per capability
    # pieces: the part of each interval inside the range; judged (adequacy, law, site, load) only as the
    # greedy split needs them
    s_lo, s_hi = rows.col("lo"), rows.col("hi")
    a = np.where(s_lo > lo, s_lo, lo)
    b = np.where(s_hi < hi, s_hi, hi)
    piece = np.flatnonzero((b - a) > eps)
    _, _, pieces_c = routing.route_parts(need, cplx, centres, load, today,
                                         **{**route_kw, "max_candidates": 0, "explain": 0, "max_rejected": 0})
    weights = route_kw.get("weights", routing.WEIGHTS)

    facts = _Facts(_present(rows.col("centre")), centres, load, need, weights, _memos())
    bands, nb = bandsets()  # taken after the rows (see _range_ratios)

    def adequate(ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(usable, TUR) of pieces ``ks`` (row numbers, ascending)."""
        sub = rows.take(ks)
        ids = sub.col("bset")
        r = _ratios(bands[:, ids, :], nb[ids], a[ks], b[ks], False, ev)
        return (_blockers(sub, facts, sk, reg, need) == _OK) & (r >= req), r

    chosen = _greedy_rows(ev, rows, piece, a, b, adequate, pieces_c)
    first2 = _first_by_key(rows, nc, max_r)
    witness = {id(c): c for c in cplx}
    s_codes: dict[int, tuple[int, int]] = {}  # witness capability -> (its centre's id, its code)
    for c, k in zip(judged.caps(first), first):
        witness[id(c)] = c
        s_codes[id(c)] = (CENTRES.ids[c.centre_id], int(code[k]))
    for c in rows.caps(first2 + chosen):
        witness[id(c)] = c
        s_codes[id(c)] = (CENTRES.ids[c.centre_id], _RNC)
    if trace is not None:
        trace[:] = judged.caps(np.arange(judged.n)) + rows.caps(nc) + cplx
    out: dict = {}
    d = routing.route(need, list(witness.values()), centres, load, today, _out=out, **route_kw)
    d = _patched(d, out, eligible=0, codes=np.concatenate([code[rej], np.full(len(nc), _RNC, np.int8)]),
                 centres=np.concatenate([judged.col("centre")[rej], rows.col("centre")[nc]]),
                 minus=np.array(list(s_codes.values()), np.int64).reshape(-1, 2), elig_centres=np.empty(0, np.int64))
    return d, len(nc), len(cplx), len(witness)


def _first_per_capability(rows: _Rows) -> np.ndarray:
    """Mask keeping one entry per capability (a capability with a gap has an entry per interval)."""
    keep = np.ones(rows.n, np.bool_)
    multi = np.flatnonzero(rows.col("nseg") > 1)
    if len(multi):
        hk = rows.col("hkey")[multi]
        _, firsts = np.unique(hk, return_index=True)
        dup = np.ones(len(multi), np.bool_)
        dup[firsts] = False
        if dup.any():
            # the same key hash is the same capability unless two keys collide: check the few duplicates
            owner = {int(hk[j]): c for j, c in zip(firsts.tolist(), rows.caps(multi[firsts]))}
            dups = multi[dup]
            if all(owner[int(h)] is c for h, c in zip(rows.col("hkey")[dups].tolist(), rows.caps(dups))):
                keep[dups] = False
            else:  # a collision: by identity, slowly
                seen: set[int] = set()
                for k, c in zip(multi.tolist(), rows.caps(multi)):
                    keep[k] = id(c) not in seen
                    seen.add(id(c))
    return keep


def _greedy_rows(ev, rows: _Rows, piece: np.ndarray, a: np.ndarray, b: np.ndarray, adequate,
                 pieces_c: list[tuple]) -> list[int]:
    """routing._greedy_split's choices over the array pieces (rows ``piece``, spanning [a, b]) and route()'s
    own pieces (start, end, cap, idxs, TUR): the rows whose capability it picks. A piece is judged
    (``adequate``) only when it could be the one picked: from the furthest-reaching down, until the best
    usable one is known."""
    lo, hi, eps = ev.lo, ev.hi, ev.eps
    pa, pb = a[piece], b[piece]
    state = np.zeros(len(piece), np.int8)  # 0 not judged, 1 usable, 2 not
    tur = np.zeros(len(piece))
    neg = routing._neg_key
    cur = lo
    chosen: list[int] = []
    for _ in range(len(piece) + len(pieces_c) + 1):
        avail = np.flatnonzero((pa <= cur + eps) & (pb > cur + eps) & (state != 2))
        batch = 32
        while len(avail):
            val = avail[state[avail] == 1]
            bv = pb[val].max() if len(val) else -_INF
            unk = avail[state[avail] == 0]
            if not len(unk) or pb[unk].max() < bv:
                break
            bu = pb[unk]
            if len(unk) > batch:  # the furthest-reaching ones, ties at the edge included
                edge = np.partition(bu, len(bu) - batch)[len(bu) - batch]
                unk = unk[bu >= edge]
            ks = piece[unk]
            order = np.argsort(ks, kind="stable")
            ok, r = adequate(ks[order])
            state[unk[order]] = np.where(ok, 1, 2)
            tur[unk[order]] = r
            avail = avail[state[avail] != 2]
            batch *= 4
        best = None
        val = avail[state[avail] == 1] if len(avail) else avail
        if len(val):
            bmax = pb[val].max()
            m = val[pb[val] == bmax]
            m = m[tur[m] == tur[m].max()]
            # ties (same reach, same TUR): the smallest (centre, capability) -- _greedy_split's neg keys;
            # the first centre by id, then the first capability of it
            if len(m) > 1:
                cen = rows.col("centre")[piece[m]]
                first = min(_present(cen).tolist(), key=CENTRES.values.__getitem__)
                m = m[cen == first]
            _capid, j, c = min((c.capability_id, j, c) for j, c in zip(m.tolist(), rows.caps(piece[m])))
            best = ((float(pb[j]), float(tur[j]), neg(c.centre_id), neg(c.capability_id)), float(pb[j]),
                    int(piece[j]))
        for pa_c, pb_c, cap, _idxs, r in pieces_c:
            if pa_c <= cur + eps and pb_c > cur + eps:
                key = (pb_c, r, neg(cap.centre_id), neg(cap.capability_id))
                if best is None or key > best[0]:
                    best = (key, pb_c, None)
        if best is None:
            return chosen
        if best[2] is not None:
            chosen.append(best[2])
        end = best[1] if best[1] < hi else hi
        if end >= hi - eps:
            return chosen
        cur = end
    return chosen
