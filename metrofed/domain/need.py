"""The enterprise need: what an SME asks the federation for.

"Calibrate a 0–25 MPa pressure transmitter to ±0.1 % of full scale", "a torque wrench 20–200 N·m to
1 %", "verify our DC chargers (JJG 1149-2022)". A :class:`Need` is built once by
:func:`need_from_fields` (which validates and names the gateway's fields: ``need.range.min`` …) and
carries its range and tolerance in SI, so the router does float work only.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from dataclasses import dataclass, field
from typing import Any

from metrofed.domain import limits, units
from metrofed.domain.limits import quote
from metrofed.domain.capability import DomainError, ServiceKind, Site

__all__ = [
    "ToleranceKind",
    "Tolerance",
    "DecisionRuleKind",
    "DecisionRule",
    "Need",
    "need_from_fields",
    "MAX_MEASURAND_LEN",
]

MAX_MEASURAND_LEN = limits.MEASURAND
_MEASURAND = limits.Limit("line", max_len=MAX_MEASURAND_LEN)
_PLACE = limits.Limit("line", max_len=limits.SHORT)


class ToleranceKind(str, enum.Enum):
    ABSOLUTE = "absolute"  # ±0.1 MPa, ±2.5 °C (a difference)
    PERCENT_OF_READING = "percent_of_reading"  # ±1 % of the value (torque wrenches, ISO 6789)
    PERCENT_OF_FULL_SCALE = "percent_of_full_scale"  # ±0.1 %FS (transmitters)
    ACCURACY_CLASS = "accuracy_class"  # class 1.6 gauge: MPE = 1.6 % of the measuring span (JJG 52)


# % of reading is undefined at zero: when the requested range reaches zero it is evaluated from this
# fraction of full scale upwards (ISO 6789 torque tools: 20–100 %; transmitter specs commonly 10–100 %).
PERCENT_OF_READING_FLOOR = 0.10


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Half-width T of the acceptance interval of the instrument under test (its MPE)."""

    kind: ToleranceKind
    value: float
    unit: str = ""  # ABSOLUTE: a unit of the need's kind (temperatures read as differences); else "%"/""
    quantity_kind: str | None = None  # for ABSOLUTE: picks the SI convention (rpm vs rad/s)
    # ABSOLUTE only: the value as an SI difference, computed once.
    value_si: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        if self.kind is ToleranceKind.ABSOLUTE and self.unit and not self.value_si:
            object.__setattr__(self, "value_si", units.delta_to_si(self.value, self.unit, self.quantity_kind))

    def half_width_si_at(self, x_si: float, full_scale_si: float, span_si: float | None = None) -> float:
        """T at the point ``x_si`` (measured from the zero of the reading's unit: for °C pass
        x_si − 273.15, or use :meth:`Need.tolerance_at`). % of full scale uses ``full_scale_si`` (the range's largest
        magnitude); an accuracy class uses the measuring span when given (JJG 52: class x span, so
        class 1.6 on 0–60 MPa -> 0.96 MPa), else the full scale."""
        k = self.kind
        if k is ToleranceKind.ABSOLUTE:
            return self.value_si
        if k is ToleranceKind.PERCENT_OF_READING:
            return self.value / 100.0 * abs(x_si)
        if k is ToleranceKind.PERCENT_OF_FULL_SCALE:
            return self.value / 100.0 * full_scale_si
        return self.value / 100.0 * (span_si if span_si is not None else full_scale_si)

    def describe(self) -> str:
        k = self.kind
        if k is ToleranceKind.ABSOLUTE:
            return f"±{units.format_value(self.value)} {_display_unit(self.unit)}"
        if k is ToleranceKind.PERCENT_OF_READING:
            return f"±{units.format_value(self.value)} % of reading"
        if k is ToleranceKind.PERCENT_OF_FULL_SCALE:
            return f"±{units.format_value(self.value)} % of full scale"
        return f"accuracy class {units.format_value(self.value)}"


class DecisionRuleKind(str, enum.Enum):
    TUR = "tur"  # ANSI/NCSL Z540.3 fallback: T/U ≥ ratio (4:1)
    JJF1094_THIRD = "jjf1094_third"  # JJF 1094-2002: U95 ≤ MPE/3 (then U may be ignored in the verdict)


@dataclass(frozen=True, slots=True)
class DecisionRule:
    kind: DecisionRuleKind = DecisionRuleKind.TUR
    min_ratio: float = 4.0

    @property
    def required_ratio(self) -> float:
        """The T/U the capability must reach: ``min_ratio`` for TUR, 3 for JJF 1094."""
        return 3.0 if self.kind is DecisionRuleKind.JJF1094_THIRD else self.min_ratio

    def describe(self) -> str:
        if self.kind is DecisionRuleKind.JJF1094_THIRD:
            return "JJF 1094: U95 ≤ MPE/3"
        return f"TUR ≥ {units.format_value(self.min_ratio)}:1, ANSI/NCSL Z540.3"


def _display_unit(u: str) -> str:
    return {"delta_degC": "°C", "delta_degF": "°F"}.get(u, u)


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    measurand: str = ""
    instrument_type: str = ""
    quantity_kind: str | None = None  # inferred from the unit when None (N·m -> torque)
    range_min: float
    range_max: float
    unit: str
    tolerance: Tolerance
    service_kind: ServiceKind | None = None  # None: "not sure" (the router decides: legal -> 检定)
    decision_rule: DecisionRule = DecisionRule()
    city: str = ""
    province: str = ""
    deadline: _dt.date | None = None
    quantity_of_items: int = 1
    site: Site | None = None
    legal_use: bool | None = None  # trade settlement / safety / health / environment
    # Derived once (SI floats for the router); not part of equality.
    lo_si: float = field(default=0.0, compare=False)
    hi_si: float = field(default=0.0, compare=False)
    unit_mult: float = field(default=1.0, compare=False)
    unit_offset: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        kind = self.quantity_kind or units.infer_kind(self.unit)
        if kind is None:
            raise DomainError("need.range.unit", f"cannot tell what quantity {quote(self.unit)} measures")
        object.__setattr__(self, "quantity_kind", kind)
        m, o = units.si_factor(self.unit, kind)
        object.__setattr__(self, "unit_mult", m)
        object.__setattr__(self, "unit_offset", o)
        object.__setattr__(self, "lo_si", self.range_min * m + o)
        object.__setattr__(self, "hi_si", self.range_max * m + o)

    @property
    def full_scale_si(self) -> float:
        """Full scale for % FS tolerances: the largest magnitude of the requested range, measured from
        the zero of the need's unit (1200 °C is a full scale of 1200 K-differences, not 1473.15)."""
        o = self.unit_offset
        return max(abs(self.lo_si - o), abs(self.hi_si - o))

    def tolerance_at(self, x_si: float) -> float:
        """T (SI difference) at the point ``x_si``: % of reading is of the reading in the need's unit."""
        return self.tolerance.half_width_si_at(x_si - self.unit_offset, self.full_scale_si, self.span_si)

    @property
    def span_si(self) -> float:
        return self.hi_si - self.lo_si

    def from_si(self, x_si: float) -> float:
        return (x_si - self.unit_offset) / self.unit_mult

    def delta_from_si(self, d_si: float) -> float:
        return d_si / self.unit_mult

    @property
    def display_unit(self) -> str:
        return _display_unit(self.unit)

    def describe(self) -> str:
        what = self.instrument_type or self.measurand
        return (f"{what} {units.format_value(self.range_min)}–{units.format_value(self.range_max)} "
                f"{self.display_unit}, {self.tolerance.describe()}")


# --------------------------------------------------------------------------------------------------
# need_from_fields: the gateway's entry point
# --------------------------------------------------------------------------------------------------


def _num(v: Any, field_name: str) -> float:
    if v is None or (isinstance(v, str) and not v.strip()):
        raise DomainError(field_name, "is required")
    if isinstance(v, bool):
        raise DomainError(field_name, f"expected a number, got {quote(v)}")
    try:
        x = float(str(v).replace("−", "-")) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        raise DomainError(field_name, f"expected a number, got {quote(v)}") from None
    if not math.isfinite(x):
        raise DomainError(field_name, f"must be finite, got {quote(v)}")
    return x


_TOL_UNIT_KIND = {
    "%": ToleranceKind.PERCENT_OF_READING,
    "％": ToleranceKind.PERCENT_OF_READING,
    "%rd": ToleranceKind.PERCENT_OF_READING,
    "%reading": ToleranceKind.PERCENT_OF_READING,
    "%fs": ToleranceKind.PERCENT_OF_FULL_SCALE,
    "%f.s.": ToleranceKind.PERCENT_OF_FULL_SCALE,
    "%span": ToleranceKind.PERCENT_OF_FULL_SCALE,
    "%满量程": ToleranceKind.PERCENT_OF_FULL_SCALE,
    "class": ToleranceKind.ACCURACY_CLASS,
    "级": ToleranceKind.ACCURACY_CLASS,
    "准确度等级": ToleranceKind.ACCURACY_CLASS,
}


def _enum(cls, v: Any, field_name: str, aliases: dict[str, Any] | None = None):
    if v is None or isinstance(v, cls):
        return v
    s = str(v).strip().lower()
    if s in ("", "unsure", "not_sure", "not sure", "unknown", "不确定", "不清楚"):
        return None
    if aliases and s in aliases:
        return aliases[s]
    try:
        return cls(s)
    except ValueError:
        raise DomainError(field_name, f"unknown value {quote(v)}; one of {', '.join(m.value for m in cls)}") from None


_SERVICE_ALIASES = {"检定": ServiceKind.VERIFICATION, "校准": ServiceKind.CALIBRATION, "检测": ServiceKind.TESTING,
                    "型式评价": ServiceKind.TYPE_EVALUATION}
_SITE_ALIASES = {"实验室": Site.LAB, "现场": Site.ON_SITE, "onsite": Site.ON_SITE, "on-site": Site.ON_SITE}


def need_from_fields(
    *,
    measurand: str = "",
    instrument_type: str = "",
    quantity_kind: str | None = None,
    range_min: Any = None,
    range_max: Any = None,
    unit: str | None = None,
    tolerance_value: Any = None,
    tolerance_unit: str | None = None,
    tolerance_kind: ToleranceKind | str | None = None,
    service_kind: ServiceKind | str | None = None,
    decision_rule: DecisionRuleKind | str | DecisionRule | None = None,
    min_ratio: Any = None,
    city: str = "",
    province: str = "",
    deadline: _dt.date | str | None = None,
    quantity: Any = 1,
    site: Site | str | None = None,
    legal_use: bool | None = None,
    today: _dt.date | None = None,
) -> Need:
    """Validate the gateway's fields into a :class:`Need`. Errors name ``need.measurand``,
    ``need.range.min``, ``need.range.max``, ``need.range.unit``, ``need.quantity_kind``,
    ``need.tolerance.value``, ``need.tolerance.unit``, ``need.tolerance.kind``, ``need.service_kind``,
    ``need.decision_rule``, ``need.quantity``, ``need.deadline``, ``need.site``.

    ``tolerance_kind`` may be left out: it follows from ``tolerance_unit`` ("%" -> % of reading,
    "%FS" -> % of full scale, "class"/"级" -> accuracy class, any unit -> absolute, none -> the range unit).
    """
    measurand = (measurand or "").strip()
    instrument_type = (instrument_type or "").strip()
    if not measurand and not instrument_type:
        raise DomainError("need.measurand", "name the measurand or the instrument type")
    for name, v in (("need.measurand", measurand), ("need.instrument_type", instrument_type)):
        limits.check_text(v, name, _MEASURAND)
    city, province = (city or "").strip(), (province or "").strip()
    limits.check_text(city, "need.city", _PLACE)
    limits.check_text(province, "need.province", _PLACE)

    if not unit or not str(unit).strip():
        raise DomainError("need.range.unit", "is required")
    canon = units.parse_unit(str(unit), field="need.range.unit")
    kind = (quantity_kind or "").strip() or None
    if kind is not None:
        if kind not in units.QUANTITY_KINDS:
            raise DomainError("need.quantity_kind",
                              f"unknown quantity kind {quote(kind)}; one of {', '.join(sorted(units.QUANTITY_KINDS))}")
    else:
        kind = units.kind_hint(str(unit)) or units.infer_kind(canon)
        if kind is None:
            raise DomainError("need.range.unit", f"cannot tell what quantity {quote(unit)} measures")
    units.check_kind(canon, kind, field="need.range.unit")

    lo = _num(range_min, "need.range.min")
    hi = _num(range_max, "need.range.max")
    if lo > hi:
        raise DomainError("need.range.max", f"max {hi:g} is below min {lo:g}")
    q = units.QUANTITY_KINDS[kind]
    lo_si, hi_si = units.to_si(lo, canon, kind), units.to_si(hi, canon, kind)
    if not (math.isfinite(lo_si) and math.isfinite(hi_si) and math.isfinite(hi_si - lo_si)):
        raise DomainError("need.range", f"{lo:g}–{hi:g} {canon} is out of range once converted to SI units")
    if q.min_si is not None and lo_si < q.min_si - 1e-9:
        raise DomainError("need.range.min", f"{lo:g} {canon} is below the physical limit of {q.en}")
    if not q.allows_negative and lo_si < 0:
        raise DomainError("need.range.min", f"{q.en} ({q.zh}) cannot be negative, got {lo:g} {canon}")
    if q.max_si is not None and hi_si > q.max_si + 1e-9:
        raise DomainError("need.range.max", f"{hi:g} {canon} is above the physical limit of {q.en}")

    # tolerance
    tv = _num(tolerance_value, "need.tolerance.value")
    if tv <= 0:
        raise DomainError("need.tolerance.value", f"must be > 0, got {quote(tolerance_value)}")
    tu_raw = (tolerance_unit or "").strip()
    tk = _enum(ToleranceKind, tolerance_kind, "need.tolerance.kind")
    if tk is None:
        key = tu_raw.replace(" ", "").lower()
        if kind == "relative_humidity" and key in ("%", "％"):
            tk = ToleranceKind.ABSOLUTE  # a hygrometer's "±2 %" means ±2 %RH, not 2 % of the reading
        elif key in _TOL_UNIT_KIND:
            tk = _TOL_UNIT_KIND[key]
        else:
            tk = ToleranceKind.ABSOLUTE
    if tk is ToleranceKind.ABSOLUTE:
        tu_text = tu_raw or canon
        tcanon = units.parse_unit(tu_text, field="need.tolerance.unit")
        tcanon = units.as_delta_unit(tcanon)  # ±2.5 ℃ is a difference
        units.check_kind(tcanon, kind, field="need.tolerance.unit")
        tol = Tolerance(ToleranceKind.ABSOLUTE, tv, tcanon, kind)
        if not math.isfinite(tol.value_si):
            raise DomainError("need.tolerance.value", f"{tv:g} {tcanon} is out of range once converted to SI units")
    elif tk is ToleranceKind.ACCURACY_CLASS:
        if tv > 20:
            raise DomainError("need.tolerance.value", f"accuracy class {tv:g} is implausible (classes run 0.05–10)")
        tol = Tolerance(tk, tv, "")
    else:
        if tv >= 100:
            raise DomainError("need.tolerance.value", f"{tv:g} % is not a tolerance")
        tol = Tolerance(tk, tv, "%")
    if tk is not ToleranceKind.ABSOLUTE and max(abs(lo), abs(hi)) == 0:
        raise DomainError("need.tolerance.value",
                          f"a {tk.value.replace('_', ' ')} tolerance is zero on the range {lo:g}–{hi:g} {canon}; "
                          f"give it in {canon}")

    # decision rule
    if isinstance(decision_rule, DecisionRule):
        rule = decision_rule
    else:
        rk = _enum(DecisionRuleKind, decision_rule, "need.decision_rule",
                   {"z540.3": DecisionRuleKind.TUR, "jjf1094": DecisionRuleKind.JJF1094_THIRD,
                    "jjf 1094": DecisionRuleKind.JJF1094_THIRD}) or DecisionRuleKind.TUR
        ratio = 4.0 if min_ratio is None else _num(min_ratio, "need.decision_rule.min_ratio")
        if ratio <= 0:
            raise DomainError("need.decision_rule.min_ratio", f"must be > 0, got {quote(min_ratio)}")
        rule = DecisionRule(rk, ratio)

    sk = _enum(ServiceKind, service_kind, "need.service_kind", _SERVICE_ALIASES)
    st = _enum(Site, site, "need.site", _SITE_ALIASES)

    qty = _num(quantity, "need.quantity")
    if qty < 1 or qty != int(qty):
        raise DomainError("need.quantity", f"must be a whole number ≥ 1, got {quote(quantity)}")

    dl: _dt.date | None
    if deadline is None or deadline == "":
        dl = None
    elif isinstance(deadline, _dt.datetime):
        dl = deadline.date()
    elif isinstance(deadline, _dt.date):
        dl = deadline
    else:
        try:
            dl = _dt.date.fromisoformat(str(deadline).strip())
        except ValueError:
            raise DomainError("need.deadline", f"expected a date YYYY-MM-DD, got {quote(deadline)}") from None
    if dl is not None and today is not None and dl < today:
        raise DomainError("need.deadline", f"{dl.isoformat()} is in the past")

    if legal_use is not None and not isinstance(legal_use, bool):
        raise DomainError("need.legal_use", f"expected true, false or nothing, got {quote(legal_use)}")

    return Need(
        measurand=measurand,
        instrument_type=instrument_type,
        quantity_kind=kind,
        range_min=lo,
        range_max=hi,
        unit=canon,
        tolerance=tol,
        service_kind=sk,
        decision_rule=rule,
        city=city,
        province=province,
        deadline=dl,
        quantity_of_items=int(qty),
        site=st,
        legal_use=legal_use,
    )
