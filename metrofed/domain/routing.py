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

import datetime as _dt
import enum
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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


def _fmt(x: float) -> str:
    return units.format_value(x)


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
        t_rel, t_const, floor, nz, eps = self.t_rel, self.t_const, self.floor, self.zero, self.eps
        worst = (math.inf, a, idxs[0] if idxs else -1, 0.0, 0.0)
        best_point = None
        for i in idxs:
            band = bands[i]
            s0 = band.lo_si if band.lo_si > a else a
            s1 = band.hi_si if band.hi_si < b else b
            if point:
                if s1 - s0 < -eps:
                    continue
            elif s1 - s0 <= eps:
                continue  # no overlap of positive length
            u = band.uncertainty
            ur, ua = u.relative, u.absolute_si
            p = u.coverage_probability
            f95 = 1.0 if 0.945 <= p <= 0.96 else 2.0 / u.k  # express U at ≈95 % (k = 2) for the ratio
            bz = _unit_zero_si(band.unit, self.kind) if ur else 0.0
            if floor:  # drop the part within 10 % FS of zero reading
                segs = []
                if s0 <= nz - floor:
                    segs.append((s0, s1 if s1 < nz - floor else nz - floor))
                if s1 >= nz + floor:
                    segs.append((s0 if s0 > nz + floor else nz + floor, s1))
            else:
                segs = [(s0, s1)]
            pts = []
            for c0, c1 in segs:
                pts.append(c0)
                pts.append(c1)
                if c0 < nz < c1:
                    pts.append(nz)
                if ur and c0 < bz < c1:
                    pts.append(bz)
            band_worst = None
            for x in pts:
                dx = x - bz
                uu = f95 * (ur * (dx if dx >= 0 else -dx) + ua)
                if t_rel:
                    dn = x - nz
                    t = t_rel * (dn if dn >= 0 else -dn)
                else:
                    t = t_const
                r = t / uu if uu > 0 else math.inf
                if band_worst is None or r < band_worst[0]:
                    band_worst = (r, x, i, uu, t)
            if band_worst is None:
                continue
            if point:
                if best_point is None or band_worst[0] > best_point[0]:
                    best_point = band_worst
            elif band_worst[0] < worst[0]:
                worst = band_worst
        if point:
            return best_point if best_point is not None else worst
        return worst


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

    ``None`` means no limit."""
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
    n_unit = need.display_unit

    legal_note = _legal_note(need, sk, legal_required, regulation, legal_reason)

    eligible: list[tuple] = []  # (cap, centre, idxs, worst, load, instrument match)
    # (centre, capability, code, text function, args): the reason text is built only for those kept
    rejected: list[tuple] = []
    partial: list[tuple] = []  # (cap, segments) covering part of the range: split material
    rule_text = need.decision_rule.describe()
    # Rule 2b: only for measuring services (a consultation's "instrument" is a topic). Judged once per
    # distinct capability text (imemo, and instruments.judge's own lru_cache across calls).
    check_instrument = sk in MEASURING_KINDS
    need_instr, need_meas = need.instrument_type, need.measurand
    imemo: dict[tuple, instruments.InstrumentMatch] = {}
    verb = _VERB.get(sk, "serves")

    for cap in candidates:
        cid, capid = cap.centre_id, cap.capability_id
        if cap.service_kind is not sk:
            rejected.append((cid, capid, ReasonCode.SERVICE_KIND, _txt_service_kind, (cap.service_kind, sk)))
            continue
        if cap.quantity_kind != qk:
            rejected.append((cid, capid, ReasonCode.QUANTITY_KIND, _T_MEASURES, (cap.quantity_kind or "nothing", qk)))
            continue
        bands = cap.bands
        units_ok = bool(bands)
        for b in bands:
            if (b.unit, qk) not in _DIM_OK_TRUE and not _unit_fits(b.unit, qk):
                units_ok = False
                break
        if not units_ok:
            rejected.append((cid, capid, ReasonCode.QUANTITY_KIND, _txt_units, (bands, qk)))
            continue
        im = None
        if check_instrument:
            it, ms = cap.instrument_type, cap.measurand
            ikey = (it.zh, it.en, ms.zh, ms.en, cap.keywords)
            im = imemo.get(ikey)
            if im is None:
                im = imemo[ikey] = instruments.judge(need_instr, need_meas, it.zh, it.en, ms.zh, ms.en, cap.keywords)
            if not im.match:
                rejected.append((cid, capid, ReasonCode.INSTRUMENT_TYPE, _T_INSTRUMENT, (verb, im.why)))
                continue
        segs = _segments(bands, eps)
        cover = None
        for s_lo, s_hi, idxs in segs:
            if s_lo <= lo + eps and s_hi >= hi - eps:
                cover = idxs
                break
        if cover is None:
            rejected.append((cid, capid, ReasonCode.RANGE_NOT_COVERED, _not_covered_text, (need, segs)))
            # Split material, evaluated only if no single capability qualifies (after the loop).
            for s_lo, s_hi, _ in segs:
                if (s_hi if s_hi < hi else hi) - (s_lo if s_lo > lo else lo) > eps:
                    partial.append((cap, segs))
                    break
            continue
        centre = centres.get(cid)
        w = ev.worst(bands, cover, lo, hi)
        ratio, x, bi, u95, t = w
        if ratio < req:
            rejected.append((cid, capid, ReasonCode.UNCERTAINTY_INADEQUATE, _txt_inadequate,
                             (need, w, bands[bi], req, rule_text)))
            continue
        blocker = _route_blocker(cap, centre, sk, reg_required, need_site, load, qty)
        if blocker is not None:
            rejected.append((cid, capid, *blocker))
            continue
        used = [i for i in cover if bands[i].hi_si > lo + eps and bands[i].lo_si < hi - eps] or \
               [i for i in cover if bands[i].lo_si <= lo + eps and bands[i].hi_si >= hi - eps]
        eligible.append((cap, centre, tuple(sorted(used)), w, float(load.get(cid, 0.0)), im))

    candidates_out = _rank(need, eligible, weights, days_left, req, rule_text, max_candidates, explain)
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
    rejected_total = len(rejected)
    by_reason: dict[ReasonCode, int] = {}
    for r in rejected:
        code = r[2]
        by_reason[code] = by_reason.get(code, 0) + 1
    # (centre, capability, code) is unique per rejection and ReasonCode compares as its str value, so the
    # order (and the subset kept) does not depend on the order of the input
    if max_rejected is None or rejected_total <= max_rejected:
        kept = sorted(rejected, key=_rej_key)
    else:
        kept = heapq.nsmallest(max(max_rejected, 0), rejected, key=_rej_key)
    return RoutingDecision(service_kind=sk, legal_note=legal_note, candidates=candidates_out,
                           rejected=[Rejection(c, k, code, fn(*args)) for c, k, code, fn, args in kept],
                           split=split, regulation=regulation, required_ratio=req,
                           candidates_total=len(eligible), rejected_total=rejected_total,
                           rejected_by_reason={c: by_reason[c] for c in ReasonCode if c in by_reason})


def _rej_key(r: tuple) -> tuple:
    return r[0], r[1], r[2].value


# ---- rejection reasons, built only for the rejections a decision keeps (see route(max_rejected=...)) --

_T_MEASURES = "measures {0}, the need is {1}".format
_T_INSTRUMENT = "{0} {1}".format


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


def _rank(need: Need, eligible: list[tuple], wts: ScoreWeights, days_left: int | None, req: float,
          rule_text: str, max_candidates: int | None, explain: int | None) -> list[Candidate]:
    """Score every eligible capability (floats only), sort, then build Candidates for those kept and
    explanations for the best ``explain`` of them."""
    if not eligible:
        return []
    p_min = min(e[0].price_cny for e in eligible)
    city, province = need.city, need.province
    scored = []
    for e in eligible:
        cap, centre, used, w, ld, im = e
        ratio = w[0]
        margin = (min(ratio / req, 3.0) - 1.0) / 2.0 if ratio != math.inf else 1.0
        if centre is None:
            prox = 0.0
        elif city and _same_place(city, centre.city):
            prox = _PROX_CITY
        elif province and _same_place(province, centre.province):
            prox = _PROX_PROVINCE
        else:
            prox = _PROX_REGION
        lead = cap.lead_time_days
        price = cap.price_cny
        missed = days_left is not None and lead > days_left
        score = (wts.margin * margin + wts.proximity * prox + wts.lead_time * (1.0 / (1.0 + lead / 7.0))
                 + wts.price * (1.0 if price <= 0 else p_min / price)
                 + wts.load * (1.0 - min(max(ld, 0.0), 1.0))
                 + wts.instrument * (im.relevance if im is not None else 1.0)
                 - (wts.deadline_miss_penalty if missed else 0.0))
        scored.append((-round(score, 9), cap.centre_id, cap.capability_id, prox, missed, e))
    scored.sort(key=lambda r: (r[0], r[1], r[2]))
    if max_candidates is not None:
        scored = scored[:max_candidates]
    n_explain = len(scored) if explain is None else max(explain, 0)
    out = [_candidate(need, e, -neg, prox, missed, days_left, req, rule_text)
           for neg, _, _, prox, missed, e in scored[:n_explain]]
    if len(scored) > n_explain:  # the rest: every number, no paragraph (hot: thousands at 1M rows)
        n_unit, mult = need.display_unit, need.unit_mult
        lo_si, hi_si, r_min, r_max = need.lo_si, need.hi_si, need.range_min, need.range_max
        eps = 1e-9 * max(abs(lo_si), abs(hi_si), 1e-300)
        off = need.unit_offset
        for neg, _, _, _prox, missed, e in scored[n_explain:]:
            cap, _c, used, w, _ld, _im = e
            x = w[1]
            wp = r_min if abs(x - lo_si) <= eps else r_max if abs(x - hi_si) <= eps else (x - off) / mult
            out.append(Candidate(cap.centre_id, cap.capability_id, cap.version, used, wp, n_unit, w[3] / mult,
                                 w[4] / mult, w[0], -neg, "", missed))
    return out


def _candidate(need: Need, e: tuple, score: float, prox: float, missed: bool, days_left: int | None, req: float,
               rule_text: str) -> Candidate:
    cap, centre, used, w, ld, im = e
    ratio, x, bi, u95, t = w
    wp = _point_in_need_unit(need, x)
    n_unit = need.display_unit
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
    instr_txt = f"{im.why}; " if im is not None else ""
    bands_txt = " joined with ".join(_band_text(cap.bands[i]) for i in used)
    name = (centre.name.zh or centre.name.en) if centre is not None else cap.centre_id
    tur_txt = "∞" if ratio == math.inf else _fmt(ratio)
    explanation = (
        f"{name} [{cap.centre_id}/{cap.capability_id} v{cap.version}, {SERVICE_KIND_ZH[cap.service_kind]} "
        f"{cap.method_code}]: {instr_txt}{bands_txt} covers {_fmt(need.range_min)}–{_fmt(need.range_max)} {n_unit}; "
        f"worst point {_fmt(wp)} {n_unit} in {_band_text(cap.bands[bi])}: "
        f"U = {_fmt(need.delta_from_si(u95))} {n_unit} (k=2, 95 %) against tolerance "
        f"±{_fmt(need.delta_from_si(t))} {n_unit}, TUR {tur_txt}:1 ≥ {_fmt(req)}:1 required ({rule_text}); "
        f"{where}; {timing}; price ¥{_fmt(cap.price_cny)}; load {ld:.0%}; score {score:.3f}."
    )
    return Candidate(
        centre_id=cap.centre_id, capability_id=cap.capability_id, capability_version=cap.version,
        band_indexes=used, worst_point=wp, worst_point_unit=n_unit,
        u_at_worst=need.delta_from_si(u95), tolerance_at_worst=need.delta_from_si(t), tur=ratio,
        score=score, explanation=explanation, missed_deadline=missed,
    )


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
