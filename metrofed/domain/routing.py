"""Routing an enterprise need to the capabilities that can serve it — pure and deterministic.

``route(need, candidates, centres, load, today)`` takes an iterable the catalog has already narrowed
(by quantity kind and range) and does O(n) float work in SI, no pint in the loop. A capability is
eligible when, checked in this order (the first failure is its rejection reason):

1. SERVICE_KIND     its service kind is the one needed (a "not sure" need becomes 检定 verification when
                    the law requires it (legal.verification_required), else 校准 calibration);
2. QUANTITY_KIND    same quantity kind (torque never matches energy) and the band units' dimension fits;
2b. INSTRUMENT_TYPE the capability serves the instrument the need names (instruments.judge: same head noun
                    or an accepted equivalent, no contradicting qualifier such as DC vs AC or type K vs S;
                    an instrument the vocabulary does not know is never rejected, only ranked lower);
3. RANGE_NOT_COVERED its bands, adjacent (touching or overlapping) bands joined, cover [min, max];
4. UNCERTAINTY_INADEQUATE  T/U at the *worst point* of the requested range ≥ the rule's ratio
                    (TUR ≥ 4:1 ANSI/NCSL Z540.3, or JJF 1094's U95 ≤ MPE/3). U(x) = a·|x| + b per band,
                    evaluated over each covering band's overlap with the range; T(x) at the same point;
5. NOT_AUTHORISED   检定 only by a centre whose authorisations.verification holds the capability's method
                    (and, when the law names a regulation for the instrument, that method is it);
                    型式评价 only when authorisations.type_evaluation holds it;
6. SITE             lab / on-site fits;
7. NO_CAPACITY      load < 1 and capacity_per_month ≥ quantity of items.

Eligible capabilities are ranked by the score in docs/routing.md; ties by (centre_id, capability_id).
When none covers the whole range but several together do, ``split`` proposes the fewest parts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import gc
import heapq
import itertools
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from metrofed.domain import instruments, legal, units
from metrofed.domain.capability import (Capability, CentreProfile, MEASURING_KINDS, RangeBand, ServiceKind,
                                        SERVICE_KIND_ZH, Site)
from metrofed.domain.need import Need, PERCENT_OF_READING_FLOOR, ToleranceKind

__all__ = [
    "ReasonCode",
    "Candidate",
    "Rejection",
    "SplitPart",
    "RoutingDecision",
    "ScoreWeights",
    "WEIGHTS",
    "CentreRejection",
    "centre_rejections",
    "route",
    "effective_service_kind",
]


class ReasonCode(str, enum.Enum):
    SERVICE_KIND = "SERVICE_KIND"
    QUANTITY_KIND = "QUANTITY_KIND"
    INSTRUMENT_TYPE = "INSTRUMENT_TYPE"
    RANGE_NOT_COVERED = "RANGE_NOT_COVERED"
    UNCERTAINTY_INADEQUATE = "UNCERTAINTY_INADEQUATE"
    NOT_AUTHORISED = "NOT_AUTHORISED"
    SITE = "SITE"
    NO_CAPACITY = "NO_CAPACITY"


@dataclass(frozen=True, slots=True)
class Candidate:
    centre_id: str
    capability_id: str
    capability_version: int
    band_indexes: tuple[int, ...]  # indexes into capability.bands of the bands covering the range
    worst_point: float  # in the need's unit
    worst_point_unit: str
    u_at_worst: float  # expanded U (95 %) at the worst point, in the need's unit, as a difference
    tolerance_at_worst: float  # T at the worst point, in the need's unit, as a difference
    tur: float
    score: float
    explanation: str
    missed_deadline: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    centre_id: str
    capability_id: str
    reason_code: ReasonCode
    reason: str


class CentreRejection(NamedTuple):
    """A centre none of whose capabilities (of those judged) can serve the need, and why: how many were
    rejected, by reason code. (A named tuple: a decision holds one per rejected centre, often 50+, and a
    frozen dataclass costs ~4x as much to make.)"""
    centre_id: str
    rejected: int
    by_reason: dict[ReasonCode, int]


@dataclass(frozen=True, slots=True)
class SplitPart:
    centre_id: str
    capability_id: str
    capability_version: int
    range_min: float  # sub-range, in the need's unit
    range_max: float
    unit: str
    band_indexes: tuple[int, ...]
    tur: float


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    service_kind: ServiceKind
    legal_note: str
    candidates: list[Candidate] = field(default_factory=list)  # every eligible one, best first (max_candidates)
    rejected: list[Rejection] = field(default_factory=list)  # the first max_rejected, by centre/capability
    split: list[SplitPart] = field(default_factory=list)
    regulation: str | None = None  # the JJG the law names for this instrument, when it names one
    required_ratio: float = 4.0
    candidates_total: int = 0  # eligible capabilities (all ranked), also when max_candidates keeps fewer
    rejected_total: int = 0  # every rejection, also those ``rejected`` leaves out
    rejected_by_reason: dict[ReasonCode, int] = field(default_factory=dict)  # every rejection, by reason code
    # every centre with a rejected capability and no eligible one, by centre id
    rejected_centres: list[CentreRejection] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    margin: float = 0.30  # (min(TUR/required, 3) − 1) / 2
    proximity: float = 0.20  # same city 1.0, same province 0.6, same region 0.3, else 0
    lead_time: float = 0.20  # 1 / (1 + lead_time_days / 7)
    price: float = 0.15  # cheapest eligible price / this price
    load: float = 0.15  # 1 − min(load, 1)
    instrument: float = 0.20  # instruments.judge relevance: 1 same instrument, 0.8 equivalent, ≤ 0.5 by words
    deadline_miss_penalty: float = 1.0  # subtracted when the lead time misses the deadline


WEIGHTS = ScoreWeights()

_PROX_CITY, _PROX_PROVINCE, _PROX_REGION = 1.0, 0.6, 0.3


def effective_service_kind(need: Need) -> tuple[ServiceKind, bool, str | None, str]:
    """(service kind, verification required, regulation, legal reason) for a need."""
    required, reg, reason = legal.verification_required(need)
    if need.service_kind is not None:
        return need.service_kind, required, reg, reason
    return (ServiceKind.VERIFICATION if required else ServiceKind.CALIBRATION), required, reg, reason


_fmt = units.format_value  # (x) -> compact text, 4 significant digits


def _disp(unit: str) -> str:
    return {"delta_degC": "°C", "delta_degF": "°F"}.get(unit, unit)


def _place(s: str) -> str:
    s = (s or "").strip().lower()
    for suffix in ("市", "省"):
        if s.endswith(suffix) and len(s) > 1:
            s = s[: -len(suffix)]
    return s


def _same_place(need_place: str, text) -> bool:
    p = _place(need_place)
    return bool(p) and (p == _place(text.zh) or p == _place(text.en))


_DIM_OK: dict[tuple[str, str], bool] = {}
_DIM_OK_TRUE: set[tuple[str, str]] = set()  # fast membership for the common case


def _unit_fits(unit: str, kind: str) -> bool:
    key = (unit, kind)
    ok = _DIM_OK.get(key)
    if ok is None:
        try:
            units.check_kind(unit, kind)
            ok = True
        except ValueError:
            ok = False
        _DIM_OK[key] = ok
        if ok:
            _DIM_OK_TRUE.add(key)
    return ok


_OFFSETS: dict[tuple[str, str], float] = {}


def _unit_zero_si(unit: str, kind: str) -> float:
    """Where 0 of ``unit`` lies in SI (273.15 K for °C, 0 otherwise); cached."""
    key = (unit, kind)
    o = _OFFSETS.get(key)
    if o is None:
        o = units.si_factor(unit, kind)[1]
        _OFFSETS[key] = o
    return o


def _band_data(b: RangeBand, kind: str) -> tuple:
    """(lo_si, hi_si, relative U, absolute U in SI, factor to U95, zero of the band's unit in SI): all that the
    worst-point evaluation reads of a band."""
    u = b.uncertainty
    p = u.coverage_probability
    bz = _unit_zero_si(b.unit, kind) if u.relative else 0.0
    return (b.lo_si, b.hi_si, u.relative, u.absolute_si, 1.0 if 0.945 <= p <= 0.96 else 2.0 / u.k, bz)


class _Eval:
    """The need, flattened to floats once per route() call."""

    __slots__ = ("lo", "hi", "eps", "t_const", "t_rel", "floor", "req", "zero", "kind")

    def __init__(self, need: Need, req: float):
        self.lo, self.hi = need.lo_si, need.hi_si
        scale = max(abs(self.lo), abs(self.hi))
        self.eps = 1e-9 * scale if scale > 0 else 1e-300
        tol = need.tolerance
        fs = need.full_scale_si
        self.zero = need.unit_offset  # readings (for % of reading) count from the zero of the need's unit
        self.kind = need.quantity_kind
        self.t_rel = 0.0
        self.t_const = 0.0
        if tol.kind is ToleranceKind.PERCENT_OF_READING:
            self.t_rel = tol.value / 100.0
        else:
            self.t_const = tol.half_width_si_at(0.0, fs, need.span_si)
        # % of reading is undefined at zero: evaluate from 10 % of full scale up when the range reaches 0.
        z = self.zero
        self.floor = PERCENT_OF_READING_FLOOR * fs if (self.t_rel and self.lo <= z <= self.hi) else 0.0
        self.req = req

    def worst(self, bands: tuple[RangeBand, ...], idxs: list[int], a: float, b: float):
        """Worst T/U over [a, b] across the bands ``idxs``, each over its overlap with [a, b] (bands that
        overlap each other are all evaluated: conservative). For a single-point range the best band
        holding the point is used (a lab uses its better band at a shared band limit).

        U(x) = f95·(a·|x − u0| + b) with u0 the zero of the band's unit; T(x) likewise from the zero of
        the need's unit. Both are linear in x between the zeros, so T/U is monotone there and its
        minimum lies at an interval end or a zero: only those points are evaluated.

        Returns (ratio, x_si, band_index, U95_si, T_si); ratio is inf when no point is evaluable."""
        point = b - a <= self.eps
        eps = self.eps
        # Band data only for the bands that overlap [a, b]: one the range merely touches is never evaluated
        # (so an uncertainty that cannot be expressed at 95 % fails only where it is used).
        bd: dict[int, tuple] = {}
        live = []
        for i in idxs:
            band = bands[i]
            s0 = band.lo_si if band.lo_si > a else a
            s1 = band.hi_si if band.hi_si < b else b
            if (s1 - s0 < -eps) if point else (s1 - s0 <= eps):
                continue
            bd[i] = _band_data(band, self.kind)
            live.append(i)
        return _worst(bd, live, a, b, point, self.t_rel, self.t_const, self.floor, self.zero, eps,
                      first=idxs[0] if idxs else -1)


def _segments(bands: tuple[RangeBand, ...], eps: float) -> list[tuple[float, float, list[int]]]:
    """Bands joined where adjacent (touching or overlapping): [(lo, hi, band indexes)], ascending."""
    n = len(bands)
    if n == 1:
        b = bands[0]
        return [(b.lo_si, b.hi_si, [0])]
    order = list(range(n))
    for i in range(1, n):
        if bands[i].lo_si < bands[i - 1].lo_si:  # usually published in ascending order: sort only if not
            order.sort(key=lambda k: (bands[k].lo_si, bands[k].hi_si))
            break
    segs: list[tuple[float, float, list[int]]] = []
    cur_lo = cur_hi = 0.0
    cur: list[int] = []
    for i in order:
        b = bands[i]
        if cur and b.lo_si <= cur_hi + eps:
            cur.append(i)
            if b.hi_si > cur_hi:
                cur_hi = b.hi_si
        else:
            if cur:
                segs.append((cur_lo, cur_hi, cur))
            cur_lo, cur_hi, cur = b.lo_si, b.hi_si, [i]
    segs.append((cur_lo, cur_hi, cur))
    return segs


def _band_text(b: RangeBand) -> str:
    return f"band {_fmt(b.min)}–{_fmt(b.max)} {_disp(b.unit)}"


def route(
    need: Need,
    candidates: Iterable[Capability],
    centres: Mapping[str, CentreProfile],
    load: Mapping[str, float],
    today: _dt.date,
    *,
    weights: ScoreWeights = WEIGHTS,
    max_candidates: int | None = None,
    explain: int | None = 20,
    max_rejected: int | None = 20,
    price_floor: float | None = None,
    _out: dict | None = None,
) -> RoutingDecision:
    """Rank the capabilities that can serve ``need``; give the reason of every rejection; propose a split
    when no single capability covers the range. Pure: same inputs (in any order) -> same decision.

    Every capability is judged and every eligible one scored and ranked, whatever the limits below; they
    only bound the text built for what nobody reads:

    * ``max_candidates`` keeps only the best N candidates (``candidates_total`` counts them all);
    * ``explain`` builds the explanation paragraph for the best N candidates only (the others carry an
      empty ``explanation``; every other field is filled);
    * ``max_rejected`` keeps the first N rejections in (centre, capability, reason code) order, with their
      reason text; ``rejected_total`` and ``rejected_by_reason`` count all of them.

    ``None`` means no limit.

    ``price_floor``: the cheapest price among eligible capabilities judged elsewhere for the same need (the
    gateway's array pass, ``indexed_routing``); the price term is relative to the cheapest eligible price of
    the whole set, so a caller that routes a part of it here passes the rest's minimum.

    The cyclic garbage collector is paused meanwhile (as ``CatalogBuilder.build`` does): a call allocates a
    few acyclic tuples per capability, all alive until it returns, and each collection would traverse them
    (and every long-lived object) again -- a third of the time at 5,000 capabilities, measured.

    ``_out`` (see ``route_parts``) receives the cheapest eligible price and the split material."""
    with gc_paused():
        return _route(need, candidates, centres, load, today, weights, max_candidates, explain, max_rejected,
                      price_floor, _out)


@contextlib.contextmanager
def gc_paused():
    """The cyclic garbage collector paused for the block (restored as it was): for code that allocates many
    acyclic objects, all alive until it ends, which each collection would traverse again for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def route_parts(need: Need, candidates: Iterable[Capability], centres: Mapping[str, CentreProfile],
                load: Mapping[str, float], today: _dt.date, **kw) -> tuple[RoutingDecision, float | None, list]:
    """``route`` plus what a caller combining it with other judgements needs: (decision, cheapest eligible
    price or None, split material) -- the material being (start SI, end SI, capability, band idxs, TUR) for
    every adequate, unblocked piece of a capability that covers only part of the range (computed only when
    nothing is eligible, as ``route`` does)."""
    out: dict = {}
    d = route(need, candidates, centres, load, today, _out=out, **kw)
    return d, out.get("p_min"), out.get("pieces", [])


def _route(need: Need, candidates: Iterable[Capability], centres: Mapping[str, CentreProfile],
           load: Mapping[str, float], today: _dt.date, weights: ScoreWeights, max_candidates: int | None,
           explain: int | None, max_rejected: int | None, price_floor: float | None = None,
           out: dict | None = None) -> RoutingDecision:
    """route(), with the collector paused; ``out`` (route_parts) receives p_min and the split material."""
    sk, legal_required, regulation, legal_reason = effective_service_kind(need)
    req = need.decision_rule.required_ratio
    ev = _Eval(need, req)
    lo, hi, eps = ev.lo, ev.hi, ev.eps
    qk = need.quantity_kind
    qty = need.quantity_of_items
    need_site = need.site
    days_left = (need.deadline - today).days if need.deadline is not None else None
    # The law names the regulation for this instrument: 检定 and 型式评价 must be under it.
    reg_required = regulation if sk in (ServiceKind.VERIFICATION, ServiceKind.TYPE_EVALUATION) else None

    legal_note = _legal_note(need, sk, legal_required, regulation, legal_reason)

    # Per-centre facts, once per centre per request (see _centre_facts).
    cinfo: dict[str, tuple] = {}
    city, province = need.city, need.province
    eligible: list[list] = []  # see _rank
    # Rejections, one list per reason code: (centre, capability, code value, input position, code, text
    # function, *its arguments), one tuple each. The text is built only for those kept; the first four
    # order them.
    rj_sk: list[tuple] = []
    rj_qk: list[tuple] = []
    rj_it: list[tuple] = []
    rj_rc: list[tuple] = []
    rj_ua: list[tuple] = []
    rj_blk: list[tuple] = []  # NOT_AUTHORISED, SITE, NO_CAPACITY
    partial: list[tuple] = []  # (cap, segments) covering part of the range: split material
    rule_text = need.decision_rule.describe()
    # Rule 2b: only for measuring services (a consultation's "instrument" is a topic). Decided once per
    # distinct capability text from the parsed keys (instruments.accepts: judge's own decision); judge itself
    # (relevance, wording) only for what is eligible or a kept rejection's text.
    check_instrument = sk in MEASURING_KINDS
    need_instr, need_meas = need.instrument_type, need.measurand
    nkey = instruments.need_key(need_instr, need_meas) if check_instrument else None
    imemo: dict[tuple, bool] = {}  # instrument text -> rule 2b passes
    kmemo: dict[tuple, bool] = {}  # parsed instrument key -> rule 2b passes
    jmemo: dict[tuple, tuple] = {}  # instrument text -> (judge(...), instrument score term)
    gmemo: dict[int, tuple] = {}  # band-set token -> (cover, segments, worst, idxs used, split material?, margin)
    bsets: dict[tuple, tuple] = {}  # band numbers -> (band-set token, band set): see _prepare
    verb = _VERB.get(sk, "serves")
    legal_route = sk is ServiceKind.VERIFICATION or sk is ServiceKind.TYPE_EVALUATION
    site_bad = Site.ON_SITE if need_site is Site.LAB else Site.LAB if need_site is Site.ON_SITE else _NO_SITE
    site_fn = _T_ON_SITE_ONLY if need_site is Site.LAB else _T_LAB_ONLY
    lo_e, hi_e = lo + eps, hi - eps
    point = hi - lo <= eps
    t_rel, t_const, floor, nz = ev.t_rel, ev.t_const, ev.floor, ev.zero
    fast_worst = not point and not floor
    w_m, w_l = weights.margin, weights.lead_time
    w_i, w_pen = weights.instrument, weights.deadline_miss_penalty
    p_min = None
    inf = math.inf
    i_none = w_i * 1.0  # the instrument term when rule 2b does not apply
    for seq, cap in enumerate(candidates):
        rec = _prepare(cap, bsets)
        _, cid, capid, c_sk, c_qk, units_ok, itok, btok, bshared, site, capacity, price, lead_term, lead = rec
        if c_sk is not sk:
            rj_sk.append((cid, capid, _V_SK, seq, ReasonCode.SERVICE_KIND, _txt_service_kind, c_sk, sk))
            continue
        if c_qk != qk:
            rj_qk.append((cid, capid, _V_QK, seq, ReasonCode.QUANTITY_KIND, _T_MEASURES, c_qk or "nothing", qk))
            continue
        if not units_ok:
            if units_ok is None:  # the kind's units could not be judged ahead: as the rule does, here
                units_ok = bool(cap.bands) and all(_unit_fits(b.unit, qk) for b in cap.bands)
            if not units_ok:
                rj_qk.append((cid, capid, _V_QK, seq, ReasonCode.QUANTITY_KIND, _txt_units, cap.bands, qk))
                continue
            rec = _prepare(cap, bsets, force=True)
            btok, bshared = rec[7], rec[8]
        if check_instrument:
            ok = imemo.get(itok)
            if ok is None:  # decided per parsed key (few per call: texts parse to a few instrument groups)
                it, ms = cap.instrument_type, cap.measurand
                ck = instruments.capability_key(it.zh, it.en, ms.zh, ms.en)
                ok = kmemo.get(ck)
                if ok is None:
                    ok = kmemo[ck] = instruments.accepts_uncached(nkey, ck)
                imemo[itok] = ok
            if not ok:
                rj_it.append((cid, capid, _V_IT, seq, ReasonCode.INSTRUMENT_TYPE, _txt_instrument, verb, need_instr,
                              need_meas, cap))
                continue
        g = gmemo.get(btok)
        if g is None:  # coverage and the worst point depend on the band numbers only: once per distinct set
            if bshared is None:  # band numbers that could not be derived ahead: as the rules always did
                g = _geometry_of(cap.bands, ev, lo, hi, lo_e, hi_e, eps)
            else:
                g = _geometry(bshared, cap.bands, lo, hi, lo_e, hi_e, eps, point, fast_worst, t_rel, t_const, floor,
                              nz)
            ratio = g[2][0] if g[0] is not None else 0.0
            # + the margin score term
            g = gmemo[btok] = (*g, w_m * ((min(ratio / req, 3.0) - 1.0) / 2.0 if ratio != inf else 1.0))
        cover, segs, w, used, part, m_term = g
        if cover is None:
            rj_rc.append((cid, capid, _V_RC, seq, ReasonCode.RANGE_NOT_COVERED, _not_covered_text, need, segs))
            if part:  # split material, evaluated only if no single capability qualifies (after the loop)
                partial.append((cap, segs))
            continue
        ratio = w[0]
        if ratio < req:
            rj_ua.append((cid, capid, _V_UA, seq, ReasonCode.UNCERTAINTY_INADEQUATE, _txt_inadequate, need, w,
                          cap.bands[w[2]], req, rule_text))
            continue
        ci = cinfo.get(cid)
        if ci is None:
            ci = cinfo[cid] = _centre_facts(cid, centres, load, city, province, weights)
        centre, ld_full, ld, prox, ld_term, p_term = ci
        if legal_route:
            blocker = _route_blocker(cap, centre, sk, reg_required, need_site, load, qty)
            if blocker is not None:
                rj_blk.append((cid, capid, blocker[0].value, seq, blocker[0], blocker[1], *blocker[2]))
                continue
        elif site is site_bad:
            rj_blk.append((cid, capid, _V_SITE, seq, ReasonCode.SITE, site_fn))
            continue
        elif ld_full is not None:
            rj_blk.append((cid, capid, _V_NC, seq, ReasonCode.NO_CAPACITY, _T_LOADED, ld_full))
            continue
        elif capacity < qty:
            rj_blk.append((cid, capid, _V_NC, seq, ReasonCode.NO_CAPACITY, _T_CAPACITY, capacity, qty))
            continue
        if check_instrument:
            ij = jmemo.get(itok)
            if ij is None:
                it, ms = cap.instrument_type, cap.measurand
                im = instruments.judge_uncached(need_instr, need_meas, it.zh, it.en, ms.zh, ms.en, cap.keywords)
                ij = jmemo[itok] = (im, w_i * im.relevance)
            im, i_term = ij
        else:
            im, i_term = None, i_none
        if p_min is None or price < p_min:  # = min() over the eligible prices, in input order
            p_min = price
        # score terms before the price term, summed in the order of the score formula (see _rank)
        missed = days_left is not None and lead > days_left
        eligible.append([0.0, cid, capid, seq, m_term + p_term + w_l * lead_term, price, ld_term, i_term,
                         w_pen if missed else 0.0, cap, centre, used, w, ld, prox, im, missed])

    if out is not None:
        out["p_min"] = p_min
    rejections = ((ReasonCode.SERVICE_KIND, rj_sk), (ReasonCode.QUANTITY_KIND, rj_qk),
                  (ReasonCode.INSTRUMENT_TYPE, rj_it), (ReasonCode.RANGE_NOT_COVERED, rj_rc),
                  (ReasonCode.UNCERTAINTY_INADEQUATE, rj_ua), (None, rj_blk))
    per_centre: dict[str, dict[ReasonCode, int]] = {}
    for code, lst in rejections:
        for r in lst:
            c = per_centre.get(r[0])
            if c is None:
                c = per_centre[r[0]] = {}
            k = r[4] if code is None else code
            c[k] = c.get(k, 0) + 1
    eligible_centres = {e[1] for e in eligible}
    if out is not None:  # see indexed_routing: what it adds its own judgements to
        out["per_centre"] = per_centre
        out["eligible_centres"] = eligible_centres
    if price_floor is not None and (p_min is None or price_floor < p_min):
        p_min = price_floor
    candidates_out = _rank(need, eligible, p_min, weights, days_left, req, rule_text, max_candidates, explain)
    split: list[SplitPart] = []
    if not candidates_out and partial:
        # Parts of the range each capability covers adequately and may legally/physically take.
        pieces: list[tuple] = []  # (start, end, cap, band idxs, ratio)
        for cap, segs in partial:
            if _route_blocker(cap, centres.get(cap.centre_id), sk, reg_required, need_site, load, qty) is not None:
                continue
            for s_lo, s_hi, idxs in segs:
                a = s_lo if s_lo > lo else lo
                b = s_hi if s_hi < hi else hi
                if b - a <= eps:
                    continue
                r = ev.worst(cap.bands, idxs, a, b)
                if r[0] >= req:
                    pieces.append((a, b, cap, idxs, r[0]))
        split = _greedy_split(need, ev, pieces)
        if out is not None:
            out["pieces"] = pieces
    by_reason: dict[ReasonCode, int] = {}
    for code, lst in rejections[:5]:
        if lst:
            by_reason[code] = len(lst)
    for r in rj_blk:
        code = r[4]
        by_reason[code] = by_reason.get(code, 0) + 1
    rejected_total = len(rj_sk) + len(rj_qk) + len(rj_it) + len(rj_rc) + len(rj_ua) + len(rj_blk)
    # Ordered by (centre, capability, code value), ties (the same capability handed over twice) in input
    # order -- the input position makes every tuple distinct, so the rest is never compared. ReasonCode
    # compares as its str value, so the order (and the subset kept) does not depend on the input order.
    every = itertools.chain(rj_sk, rj_qk, rj_it, rj_rc, rj_ua, rj_blk)
    if max_rejected is None or rejected_total <= max_rejected:
        kept = sorted(every)
    else:
        kept = heapq.nsmallest(max(max_rejected, 0), every)
    return RoutingDecision(service_kind=sk, legal_note=legal_note, candidates=candidates_out,
                           rejected=[Rejection(r[0], r[1], r[4], r[5](*r[6:])) for r in kept],
                           split=split, regulation=regulation, required_ratio=req,
                           candidates_total=len(eligible), rejected_total=rejected_total,
                           rejected_by_reason={c: by_reason[c] for c in ReasonCode if c in by_reason},
                           rejected_centres=centre_rejections(per_centre, eligible_centres))


def centre_rejections(per_centre: Mapping[str, Mapping[ReasonCode, int]],
                      eligible_centres) -> list[CentreRejection]:
    """The centres with a rejection and no eligible capability, by centre id, each with its counts by
    reason code (in ReasonCode order; zero counts left out)."""
    out = []
    for cid in sorted(per_centre):
        if cid in eligible_centres:
            continue
        counts = per_centre[cid]
        by = {c: counts[c] for c in ReasonCode if counts.get(c)}
        if by:
            out.append(CentreRejection(cid, sum(by.values()), by))
    return out


_NO_SITE = object()  # no site rule applies
_V_SK, _V_QK, _V_IT, _V_RC, _V_UA, _V_SITE, _V_NC = (
    ReasonCode.SERVICE_KIND.value, ReasonCode.QUANTITY_KIND.value, ReasonCode.INSTRUMENT_TYPE.value,
    ReasonCode.RANGE_NOT_COVERED.value, ReasonCode.UNCERTAINTY_INADEQUATE.value, ReasonCode.SITE.value,
    ReasonCode.NO_CAPACITY.value)

# ---- per-capability routing data ----------------------------------------------------------------------
#
# Derived per call (``_prepare``) and memoised per call only (band sets by their numbers, judge() by the
# instrument text). Nothing is remembered across calls: the gateway routes ~40 capabilities a request
# (indexed_routing's witness set), mostly different ones each time, and process-wide memos of them were
# long-lived objects added by every request -- nested tuples the cyclic collector traverses in its young
# collections, i.e. a few ms inside some later request -- for ~2 us saved per capability seen again.

_copysign = math.copysign
_FIRST = operator.itemgetter(0)
_tok_next = itertools.count()  # band-set tokens, unique within a call


def _prepare(cap: Capability, bsets: dict, force: bool = False) -> tuple:
    """(cap, centre id, capability id, service kind, quantity kind, units ok, instrument token, band-set token,
    band set, site, capacity, price, lead-time term, lead time); ``bsets`` is the call's memo of band sets
    (band numbers -> (token, band set)). The instrument token is the instrument text itself.

    units ok: every band unit measures the capability's own kind (rule 2 compares it only once the kinds are
    equal); None when that could not be judged here (route then judges it as the rule does, and fails the
    same way). The band set (shared by every capability with the same band numbers, under one token):
    (band data, segments joined at eps 0, their seams or None), band data being per band (lo_si, hi_si,
    relative U, absolute U in SI, factor to U95, the zero of the band's unit in SI when U is relative else 0):
    all that coverage and _Eval.worst read. None when it cannot be derived (a k of 0 ...): route then
    evaluates the capability as _Eval.worst does, and fails at the same point."""
    kind = cap.quantity_kind
    bands = cap.bands
    units_ok = bool(bands)
    try:
        for b in bands:
            if (b.unit, kind) not in _DIM_OK_TRUE and not _unit_fits(b.unit, kind):
                units_ok = False
                break
    except Exception:  # noqa: BLE001 - a kind the unit table does not know
        units_ok = None
    bshared = None
    btok = -1
    if units_ok or force:
        try:
            bd = []
            negz = False
            for b in bands:
                lo_si, hi_si = b.lo_si, b.hi_si
                if (not lo_si and _copysign(1.0, lo_si) < 0.0) or (not hi_si and _copysign(1.0, hi_si) < 0.0):
                    negz = True
                bd.append(_band_data(b, kind))
            bd = tuple(bd)
        except Exception:  # noqa: BLE001 - left to the evaluation, which fails as it always did
            btok = next(_tok_next)
        else:
            # -0.0 == 0.0 but prints "-0" in the reasons: a limit at -0.0 keys with the signs
            key = (bd, tuple((_copysign(1.0, r[0]), _copysign(1.0, r[1])) for r in bd)) if negz else bd
            got = bsets.get(key)
            if got is None:
                segs = tuple((s_lo, s_hi, tuple(idxs)) for s_lo, s_hi, idxs in _segments(bands, 0.0))
                seams = tuple((segs[j - 1][1], segs[j][0]) for j in range(1, len(segs))) if len(segs) > 1 else None
                got = bsets[key] = (next(_tok_next), (bd, segs, seams))
            btok, bshared = got
    it, ms = cap.instrument_type, cap.measurand
    itok = (it.zh, it.en, ms.zh, ms.en, cap.keywords)
    lead = cap.lead_time_days
    return (cap, cap.centre_id, cap.capability_id, cap.service_kind, kind, units_ok, itok, btok, bshared, cap.site,
            cap.capacity_per_month, cap.price_cny, 1.0 / (1.0 + lead / 7.0), lead)


def _geometry_of(bands: tuple[RangeBand, ...], ev: _Eval, lo: float, hi: float, lo_e: float, hi_e: float,
                 eps: float) -> tuple:
    """_geometry straight from the bands (the former per-capability code): for band sets _prepare could not
    derive, so that whatever fails, fails where it always did."""
    segs = _segments(bands, eps)
    cover, part = _covering_segment(segs, lo, hi, lo_e, hi_e, eps)
    if cover is None:
        return None, segs, None, None, part
    return cover, segs, ev.worst(bands, cover, lo, hi), _used_bands(bands, cover, lo, hi, eps), True


def _covering_segment(segs, lo: float, hi: float, lo_e: float, hi_e: float, eps: float) -> tuple:
    """Rule 3 on joined segments: (band idxs of the one containing [lo, hi], True), or (None, whether some
    segment covers a part of it of positive length: split material)."""
    for s_lo, s_hi, idxs in segs:
        if s_lo <= lo_e and s_hi >= hi_e:
            return idxs, True
    for s_lo, s_hi, _ in segs:
        if (s_hi if s_hi < hi else hi) - (s_lo if s_lo > lo else lo) > eps:
            return None, True
    return None, False


def _used_bands(bands: tuple[RangeBand, ...], cover, lo: float, hi: float, eps: float) -> tuple[int, ...]:
    """The covering bands an explanation names: those overlapping the range, or (a single point) holding it."""
    return tuple(sorted([i for i in cover if bands[i].hi_si > lo + eps and bands[i].lo_si < hi - eps] or
                        [i for i in cover if bands[i].lo_si <= lo + eps and bands[i].hi_si >= hi - eps]))


def _geometry(bshared: tuple, bands: tuple[RangeBand, ...], lo: float, hi: float, lo_e: float, hi_e: float,
              eps: float, point: bool, fast_worst: bool, t_rel: float, t_const: float, floor: float,
              nz: float) -> tuple:
    """Rules 3 and 4 for one band set and one need: (covering band idxs or None, segments, worst, band idxs
    used, whether a part of the range is covered). Exactly route's former per-capability steps."""
    bd, segs, seams = bshared
    if seams is not None:  # joined at eps = 0; a seam that closes at this need's eps: join again
        for s_hi, s_lo in seams:
            if s_lo <= s_hi + eps:
                segs = _segments(bands, eps)
                break
    cover, part = _covering_segment(segs, lo, hi, lo_e, hi_e, eps)
    if cover is None:
        return None, segs, None, None, part
    inf = math.inf
    if fast_worst and len(cover) == 1:
        # _worst for one band over [lo, hi] without the % of reading floor, unrolled
        i = cover[0]
        b_lo, b_hi, ur, ua, f95, bz = bd[i]
        s0 = b_lo if b_lo > lo else lo
        s1 = b_hi if b_hi < hi else hi
        if s1 - s0 <= eps:
            w = (inf, lo, i, 0.0, 0.0)
        else:
            pts = [s0, s1]
            if s0 < nz < s1:
                pts.append(nz)
            if ur and s0 < bz < s1:
                pts.append(bz)
            w = _worst_of_points(pts, i, ur, ua, f95, bz, t_rel, t_const, nz)
            if not w[0] < inf:
                w = (inf, lo, i, 0.0, 0.0)
        used = (i,)  # the one band covers [lo, hi] (to eps): both rules below keep it
    else:
        w = _worst(bd, cover, lo, hi, point, t_rel, t_const, floor, nz, eps)
        used = _used_bands(bands, cover, lo, hi, eps)
    return cover, segs, w, used, True


def _centre_facts(cid: str, centres: Mapping[str, CentreProfile], load: Mapping[str, float], city: str,
                  province: str, wts: ScoreWeights) -> tuple:
    """(profile or None, load when it blocks (≥ 1) else None, load as scored, proximity, load score term,
    proximity score term)."""
    centre = centres.get(cid)
    raw = load.get(cid)
    ld_full = None
    if raw is not None:
        raw = float(raw)
        if raw >= 1.0:
            ld_full = raw
    ld = float(load.get(cid, 0.0))
    if centre is None:
        prox = 0.0
    elif city and _same_place(city, centre.city):
        prox = _PROX_CITY
    elif province and _same_place(province, centre.province):
        prox = _PROX_PROVINCE
    else:
        prox = _PROX_REGION
    return centre, ld_full, ld, prox, wts.load * (1.0 - min(max(ld, 0.0), 1.0)), wts.proximity * prox


def _worst_of_points(pts: list, i: int, ur: float, ua: float, f95: float, bz: float, t_rel: float,
                     t_const: float, nz: float) -> tuple:
    """(T/U, x, band, U95, T) at the point of ``pts`` (non-empty) where T/U is lowest, for band ``i``."""
    inf = math.inf
    best = None
    for x in pts:
        dx = x - bz
        uu = f95 * (ur * (dx if dx >= 0 else -dx) + ua)
        if t_rel:
            dn = x - nz
            t = t_rel * (dn if dn >= 0 else -dn)
        else:
            t = t_const
        r = t / uu if uu > 0 else inf
        if best is None or r < best[0]:
            best = (r, x, i, uu, t)
    return best


def _outside_floor(s0: float, s1: float, nz: float, floor: float) -> list[tuple[float, float]]:
    """The parts of [s0, s1] outside the % of reading floor (within ``floor`` of the zero reading ``nz``)."""
    segs = []
    if s0 <= nz - floor:
        segs.append((s0, s1 if s1 < nz - floor else nz - floor))
    if s1 >= nz + floor:
        segs.append((s0 if s0 > nz + floor else nz + floor, s1))
    return segs


def _worst(bd, idxs, a: float, b: float, point: bool, t_rel: float, t_const: float, floor: float,
           nz: float, eps: float, first: int | None = None):
    """The worst-point evaluation (see _Eval.worst) over band data (``_band_data``, indexed by band);
    ``first`` is the band index reported when no band yields a point (default: the first of ``idxs``)."""
    inf = math.inf
    worst = (inf, a, first if first is not None else (idxs[0] if idxs else -1), 0.0, 0.0)
    best_point = None
    for i in idxs:
        b_lo, b_hi, ur, ua, f95, bz = bd[i]
        s0 = b_lo if b_lo > a else a
        s1 = b_hi if b_hi < b else b
        if point:
            if s1 - s0 < -eps:
                continue
        elif s1 - s0 <= eps:
            continue  # no overlap of positive length
        segs = _outside_floor(s0, s1, nz, floor) if floor else [(s0, s1)]
        pts = []
        for c0, c1 in segs:
            pts.append(c0)
            pts.append(c1)
            if c0 < nz < c1:
                pts.append(nz)
            if ur and c0 < bz < c1:
                pts.append(bz)
        if not pts:
            continue
        band_worst = _worst_of_points(pts, i, ur, ua, f95, bz, t_rel, t_const, nz)
        if point:
            if best_point is None or band_worst[0] > best_point[0]:
                best_point = band_worst
        elif band_worst[0] < worst[0]:
            worst = band_worst
    if point:
        return best_point if best_point is not None else worst
    return worst


# ---- rejection reasons, built only for the rejections a decision keeps (see route(max_rejected=...)) --

_T_MEASURES = "measures {0}, the need is {1}".format
def _txt_instrument(verb: str, need_instr: str, need_meas: str, cap: Capability) -> str:
    it, ms = cap.instrument_type, cap.measurand
    return f"{verb} {instruments.judge_uncached(need_instr, need_meas, it.zh, it.en, ms.zh, ms.en, cap.keywords).why}"


def _txt_service_kind(cap_sk: ServiceKind, sk: ServiceKind) -> str:
    return f"offers {cap_sk.value} ({SERVICE_KIND_ZH[cap_sk]}), the need is {sk.value} ({SERVICE_KIND_ZH[sk]})"


def _txt_units(bands: tuple[RangeBand, ...], qk: str) -> str:
    return f"band units {', '.join(sorted({b.unit for b in bands})) or '(none)'} do not measure {qk}"


def _txt_inadequate(need: Need, w: tuple, band: RangeBand, req: float, rule_text: str) -> str:
    ratio, x, _bi, u95, t = w
    n_unit = need.display_unit
    return (f"at the worst point {_point_in_need_unit(need, x):.6g} {n_unit} "
            f"(band {band.min:.6g}–{band.max:.6g} {_disp(band.unit)}) "
            f"U = {need.delta_from_si(u95):.4g} {n_unit} against a tolerance of "
            f"±{need.delta_from_si(t):.4g} {n_unit}: TUR {ratio:.3g}:1 < {req:g}:1 ({rule_text})")


_VERB = {ServiceKind.VERIFICATION: "verifies", ServiceKind.CALIBRATION: "calibrates", ServiceKind.TESTING: "tests",
         ServiceKind.TYPE_EVALUATION: "type-evaluates"}


def _legal_note(need: Need, sk: ServiceKind, required: bool, regulation: str | None, reason: str) -> str:
    if required and sk is ServiceKind.VERIFICATION:
        return f"{reason}; only centres authorised for {regulation} are eligible."
    if required:
        return (f"Warning: {reason}. {SERVICE_KIND_ZH[sk]} ({sk.value}) was asked for and is routed as asked, "
                f"but it does not satisfy the legal requirement.")
    if sk is ServiceKind.VERIFICATION:
        return (f"Verification (检定) requested; {reason}."
                + (f" Routed to centres authorised for {regulation}." if regulation else
                   " Routed to centres authorised for the capability's regulation."))
    return reason


def _route_blocker(cap: Capability, centre: CentreProfile | None, sk: ServiceKind, reg_required: str | None,
                   need_site: Site | None, load: Mapping[str, float], qty: int):
    """Legal route, site, capacity: the checks after coverage and adequacy. None when all pass, else
    (reason code, text function, its arguments): the text is built only if the rejection is kept."""
    if sk is ServiceKind.VERIFICATION:
        if centre is None:
            return ReasonCode.NOT_AUTHORISED, _T_NO_PROFILE, ()
        code = cap.method_code
        if reg_required and not legal.codes_match(code, reg_required):
            return ReasonCode.NOT_AUTHORISED, _T_REG_VERIFICATION, (reg_required, code or "(no method)")
        if not any(legal.codes_match(code, c) for c in centre.authorisations.verification):
            return ReasonCode.NOT_AUTHORISED, _T_NOT_AUTH_V, (centre.centre_id, code or "(no method)")
    elif sk is ServiceKind.TYPE_EVALUATION:
        code = cap.method_code
        if reg_required and not legal.codes_match(code, reg_required):
            return ReasonCode.NOT_AUTHORISED, _T_REG_TYPE_EVAL, (reg_required, code or "(no method)")
        if centre is None or not any(legal.codes_match(code, c) for c in centre.authorisations.type_evaluation):
            return ReasonCode.NOT_AUTHORISED, _T_NOT_AUTH_TE, (cap.centre_id, code or "(no method)")
    site = cap.site
    if need_site is Site.LAB and site is Site.ON_SITE:
        return ReasonCode.SITE, _T_ON_SITE_ONLY, ()
    if need_site is Site.ON_SITE and site is Site.LAB:
        return ReasonCode.SITE, _T_LAB_ONLY, ()
    ld = load.get(cap.centre_id)
    if ld is not None:
        ld = float(ld)
        if ld >= 1.0:
            return ReasonCode.NO_CAPACITY, _T_LOADED, (ld,)
    if cap.capacity_per_month < qty:
        return ReasonCode.NO_CAPACITY, _T_CAPACITY, (cap.capacity_per_month, qty)
    return None


_T_NO_PROFILE = "centre profile unknown: cannot confirm its 检定 authorisation".format
_T_REG_VERIFICATION = "verification of this instrument is under {0}; the capability is under {1}".format
_T_NOT_AUTH_V = "{0} is not authorised for 检定 under {1}".format
_T_REG_TYPE_EVAL = "type evaluation of this instrument is under {0}; the capability is under {1}".format
_T_NOT_AUTH_TE = "{0} is not authorised for 型式评价 under {1}".format
_T_ON_SITE_ONLY = "works on site only; the need is for lab work".format
_T_LAB_ONLY = "works in its lab only; the need is for on-site work".format
_T_LOADED = "monthly capacity taken ({0:.0%} loaded)".format
_T_CAPACITY = "takes {0} items a month, the need is for {1}".format


def _not_covered_text(need: Need, segs) -> str:
    # Hot for large candidate lists: plain %g formatting, no pint, no format_value.
    m, o = need.unit_mult, need.unit_offset
    unit = need.display_unit
    parts = ", ".join(f"{(a - o) / m:.6g}–{(b - o) / m:.6g}" for a, b, _ in segs)
    return (f"covers {parts} {unit} (bands joined where adjacent), not the requested "
            f"{need.range_min:.6g}–{need.range_max:.6g} {unit}")


def _rank(need: Need, eligible: list[list], p_min: float | None, wts: ScoreWeights, days_left: int | None,
          req: float, rule_text: str, max_candidates: int | None, explain: int | None) -> list[Candidate]:
    """Score every eligible capability (floats only), sort, then build Candidates for those kept and
    explanations for the best ``explain`` of them.

    ``eligible`` rows are [−score (filled here), centre id, capability id, input position, margin + proximity
    + lead-time terms, price, load term, instrument term, deadline penalty or 0, cap, centre, band idxs,
    worst, load, proximity, instrument match, missed deadline]; ``p_min`` is the cheapest of their prices.
    The score is summed in the order of the formula in docs/routing.md, so it is the same float whatever
    was computed ahead. Rows sort as lists: by −score, centre, capability, then input position, which keeps
    equal keys in input order (a stable sort by the first three) and is unique, so the rest is never compared."""
    if not eligible:
        return []
    w_pr = wts.price
    for e in eligible:
        price = e[5]
        e[0] = -round(e[4] + w_pr * (1.0 if price <= 0 else p_min / price) + e[6] + e[7] - e[8], 9)
    # by −score alone first (floats: list.sort's fast path), then the full order, which finds the list
    # sorted but for runs of equal scores: ~2x faster than one full sort, and the same order (a total one)
    eligible.sort(key=_FIRST)
    eligible.sort()
    scored = eligible if max_candidates is None else eligible[:max_candidates]
    n_explain = len(scored) if explain is None else max(explain, 0)
    out = []
    if n_explain:
        ctx = _explain_ctx(need, days_left, req, rule_text)
        out = [_candidate(e, ctx) for e in scored[:n_explain]]
    if len(scored) > n_explain:  # the rest: every number, no paragraph (hot: thousands at 1M rows)
        n_unit, mult = need.display_unit, need.unit_mult
        lo_si, hi_si, r_min, r_max = need.lo_si, need.hi_si, need.range_min, need.range_max
        eps = 1e-9 * max(abs(lo_si), abs(hi_si), 1e-300)
        off = need.unit_offset
        append = out.append
        for e in itertools.islice(scored, n_explain, None):
            w = e[12]
            x = w[1]
            wp = r_min if abs(x - lo_si) <= eps else r_max if abs(x - hi_si) <= eps else (x - off) / mult
            c = _CandidateFields(e[1], e[2], e[9].version, e[11], wp, n_unit, w[3] / mult, w[4] / mult, w[0], -e[0],
                                 "", e[16])
            c.__class__ = Candidate
            append(c)
    return out


class _CandidateFields:
    """Candidate's slot layout without the frozen __init__ (one object.__setattr__ per field, ~5x slower):
    _rank fills one, then makes it a Candidate (``__class__`` assignment: same layout), frozen from then on."""

    __slots__ = Candidate.__slots__

    def __init__(self, centre_id, capability_id, capability_version, band_indexes, worst_point, worst_point_unit,
                 u_at_worst, tolerance_at_worst, tur, score, explanation, missed_deadline):
        self.centre_id = centre_id
        self.capability_id = capability_id
        self.capability_version = capability_version
        self.band_indexes = band_indexes
        self.worst_point = worst_point
        self.worst_point_unit = worst_point_unit
        self.u_at_worst = u_at_worst
        self.tolerance_at_worst = tolerance_at_worst
        self.tur = tur
        self.score = score
        self.explanation = explanation
        self.missed_deadline = missed_deadline


def _candidate(e: list, ctx: tuple) -> Candidate:
    """A ranked row of ``_rank`` with its explanation paragraph; ``ctx`` holds what is the same for every
    candidate of the call (``_explain_ctx``)."""
    need, n_unit, mult, days_left, covers, required = ctx
    cap, centre, used, w, ld, prox, im, missed = e[9], e[10], e[11], e[12], e[13], e[14], e[15], e[16]
    score = -e[0]
    ratio, x, bi, u95, t = w
    wp = _point_in_need_unit(need, x)
    if centre is None:
        where = "location unknown"
    elif prox == _PROX_CITY:
        where = f"same city ({centre.city.zh or centre.city.en})"
    elif prox == _PROX_PROVINCE:
        where = f"same province ({centre.province.zh or centre.province.en})"
    else:
        where = f"in the region ({centre.city.zh or centre.city.en})"
    lead = cap.lead_time_days
    if days_left is None:
        timing = f"lead time {lead} d"
    elif missed:
        timing = f"lead time {lead} d MISSES the deadline ({days_left} d left)"
    else:
        timing = f"lead time {lead} d meets the deadline ({days_left} d left)"
    bands = cap.bands
    if len(used) == 1:
        bands_txt = _band_text(bands[used[0]])
        worst_txt = bands_txt if used[0] == bi else _band_text(bands[bi])
    else:
        bands_txt = " joined with ".join([_band_text(bands[i]) for i in used])
        worst_txt = _band_text(bands[bi])
    u_at, t_at = u95 / mult, t / mult  # need.delta_from_si
    fmt = _fmt
    c = _CandidateFields(cap.centre_id, cap.capability_id, cap.version, used, wp, n_unit, u_at, t_at, ratio, score,
                         "".join((
                             (centre.name.zh or centre.name.en) if centre is not None else cap.centre_id,
                             f" [{cap.centre_id}/{cap.capability_id} v{cap.version}, "
                             f"{SERVICE_KIND_ZH[cap.service_kind]} {cap.method_code}]: ",
                             f"{im.why}; " if im is not None else "",
                             f"{bands_txt} {covers}worst point {fmt(wp)} {n_unit} in {worst_txt}: "
                             f"U = {fmt(u_at)} {n_unit} (k=2, 95 %) against tolerance ±{fmt(t_at)} {n_unit}, "
                             f"TUR {'∞' if ratio == math.inf else fmt(ratio)}:1 {required}",
                             f"{where}; {timing}; price ¥{fmt(cap.price_cny)}; load {ld:.0%}; score {score:.3f}.")),
                         missed)
    c.__class__ = Candidate
    return c


def _explain_ctx(need: Need, days_left: int | None, req: float, rule_text: str) -> tuple:
    """What every explanation paragraph of one route() call shares."""
    n_unit = need.display_unit
    return (need, n_unit, need.unit_mult, days_left,
            f"covers {_fmt(need.range_min)}–{_fmt(need.range_max)} {n_unit}; ",
            f"≥ {_fmt(req)}:1 required ({rule_text}); ")


def _point_in_need_unit(need: Need, x_si: float) -> float:
    """SI point back in the need's unit, snapped to the requested limits (no 1000.0000000000001 ℃)."""
    eps = 1e-9 * max(abs(need.lo_si), abs(need.hi_si), 1e-300)
    if abs(x_si - need.lo_si) <= eps:
        return need.range_min
    if abs(x_si - need.hi_si) <= eps:
        return need.range_max
    return need.from_si(x_si)


def _greedy_split(need: Need, ev: _Eval, pieces: list[tuple]) -> list[SplitPart]:
    """Fewest parts covering [lo, hi] (greedy interval cover: from the current point, take the piece
    reaching furthest; ties by higher TUR, then centre/capability id)."""
    lo, hi, eps = ev.lo, ev.hi, ev.eps
    cur = lo
    parts: list[SplitPart] = []
    guard = len(pieces) + 1
    while guard > 0:
        guard -= 1
        best = None
        for p in pieces:
            a, b, cap, idxs, r = p
            if a <= cur + eps and b > cur + eps:
                key = (b, r, _neg_key(cap.centre_id), _neg_key(cap.capability_id))
                if best is None or key > best[0]:
                    best = (key, p)
        if best is None:
            return []
        a, b, cap, idxs, _ = best[1]
        end = b if b < hi else hi
        w = ev.worst(cap.bands, idxs, cur, end)
        used = tuple(sorted(i for i in idxs if cap.bands[i].hi_si > cur + eps and cap.bands[i].lo_si < end - eps))
        parts.append(SplitPart(cap.centre_id, cap.capability_id, cap.version, _point_in_need_unit(need, cur),
                               _point_in_need_unit(need, end), need.display_unit, used, w[0]))
        if end >= hi - eps:
            return parts
        cur = end
    return []


def _neg_key(s: str) -> tuple[int, ...]:
    """Order key that sorts strings *descending*, so max() prefers the smallest id."""
    return tuple(-ord(ch) for ch in s) + (0,)
