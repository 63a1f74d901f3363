"""Centre and capability records (docs/seed-format.md) <-> domain types, validated field by field.

Every error is a :class:`DomainError` whose ``field`` is a path into the record, e.g.
``capabilities[3].bands[0].uncertainty.relative``, so a centre operator (or the gateway, as
INVALID_ARGUMENT) sees exactly what to fix.

Round trip: ``capability_from_dict(c.centre_id, capability_to_dict(c), c.version) == c`` and
``centre_from_dict(centre_to_dict(p)) == p``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from metrofed.domain import limits, units
from metrofed.domain.limits import quote
from metrofed.domain.capability import (
    MEASURING_KINDS,
    Capability,
    CentreProfile,
    DomainError,
    ExpandedUncertainty,
    LegalAuthorisations,
    RangeBand,
    ServiceKind,
    Site,
    Text,
)

__all__ = [
    "CENTRE_ID_RE",
    "CAPABILITY_ID_RE",
    "text_from",
    "text_to",
    "centre_from_dict",
    "centre_to_dict",
    "capability_from_dict",
    "capability_to_dict",
    "centre_file_from_dict",
    "band_from_dict",
    "uncertainty_from_dict",
]

# \Z, not $: "$" also matches before a trailing newline, which let "sh-icv\n" through as a centre id.
CENTRE_ID_RE = re.compile(r"^[a-z0-9-]{2,40}\Z")
CAPABILITY_ID_RE = re.compile(r"^[a-z0-9-]{2,60}\Z")
_CJK = re.compile(r"[\u3400-\u9fff]")
_MAX_TEXT = limits.TEXT
_TEXT_LIMITS: dict[int, limits.Limit] = {}


# --------------------------------------------------------------------------------------------------
# small readers
# --------------------------------------------------------------------------------------------------


def _require(d: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in d or d[key] is None:
        raise DomainError(f"{path}.{key}" if path else key, "is required")
    return d[key]


def _mapping(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise DomainError(path, f"expected a mapping, got {type(v).__name__}")
    return v


def _str(v: Any, path: str, *, max_len: int = _MAX_TEXT, allow_empty: bool = True) -> str:
    if v is None:
        v = ""
    if not isinstance(v, str):
        raise DomainError(path, f"expected text, got {type(v).__name__}")
    v = v.strip()
    if not allow_empty and not v:
        raise DomainError(path, "must not be empty")
    limit = _TEXT_LIMITS.get(max_len)
    if limit is None:
        limit = _TEXT_LIMITS.setdefault(max_len, limits.Limit("text", max_len=max_len))
    return limits.check_text(v, path, limit)


def _number(v: Any, path: str, *, min_value: float | None = None, min_exclusive: bool = False,
            max_value: float | None = None, max_exclusive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise DomainError(path, f"expected a number, got {quote(v)}")
    try:
        x = float(v)
    except ValueError:
        raise DomainError(path, f"expected a number, got {quote(v)}") from None
    if not math.isfinite(x):
        raise DomainError(path, f"must be finite, got {quote(v)}")
    if min_value is not None and (x < min_value or (min_exclusive and x == min_value)):
        raise DomainError(path, f"must be {'>' if min_exclusive else '≥'} {min_value:g}, got {quote(v)}")
    if max_value is not None and (x > max_value or (max_exclusive and x == max_value)):
        raise DomainError(path, f"must be {'<' if max_exclusive else '≤'} {max_value:g}, got {quote(v)}")
    return x


def _int(v: Any, path: str, *, min_value: int = 0, max_value: int | None = None) -> int:
    x = _number(v, path, min_value=min_value, max_value=max_value)
    if x != int(x):
        raise DomainError(path, f"expected a whole number, got {quote(v)}")
    return int(x)


def _str_list(v: Any, path: str, max_items: int = limits.MAX_LIST) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple, set, frozenset)):
        raise DomainError(path, f"expected a list, got {type(v).__name__}")
    limits.check_count(len(v), path, max_items)
    return tuple(_str(x, f"{path}[{i}]", allow_empty=False) for i, x in enumerate(v))


def text_from(v: Any, path: str, *, required: bool = True) -> Text:
    """``{zh: 压力, en: pressure}`` or a plain string (Chinese text goes to zh, other text to en)."""
    if isinstance(v, Text):
        t = v
    elif isinstance(v, str):
        s = _str(v, path)
        t = Text(zh=s) if _CJK.search(s) else Text(en=s)
    elif isinstance(v, Mapping):
        t = Text(zh=_str(v.get("zh"), f"{path}.zh"), en=_str(v.get("en"), f"{path}.en"))
    elif v is None:
        t = Text()
    else:
        raise DomainError(path, f"expected {{zh, en}} or text, got {type(v).__name__}")
    if required and not t.zh and not t.en:
        raise DomainError(path, "needs a Chinese or an English name")
    return t


def text_to(t: Text) -> dict[str, str]:
    return {"zh": t.zh, "en": t.en}


def _enum(cls, v: Any, path: str):
    if isinstance(v, cls):
        return v
    s = _str(v, path, allow_empty=False)
    try:
        return cls(s.lower())
    except ValueError:
        raise DomainError(path, f"unknown value {quote(s)}; one of {', '.join(m.value for m in cls)}") from None


# --------------------------------------------------------------------------------------------------
# centres
# --------------------------------------------------------------------------------------------------


def centre_from_dict(d: Mapping[str, Any], *, path: str = "centre") -> CentreProfile:
    """The ``centre:`` mapping of a seed file (or a whole file: its ``centre`` key is used)."""
    d = _mapping(d, path)
    if "centre" in d and isinstance(d["centre"], Mapping):
        d = d["centre"]
    cid = _str(_require(d, "id", path), f"{path}.id")
    if not CENTRE_ID_RE.match(cid):
        raise DomainError(f"{path}.id", f"{quote(cid)} must match [a-z0-9-]{{2,40}}")
    auth = d.get("authorisations") or {}
    auth = _mapping(auth, f"{path}.authorisations")
    return CentreProfile(
        centre_id=cid,
        name=text_from(_require(d, "name", path), f"{path}.name"),
        host_institution=_str(d.get("host_institution"), f"{path}.host_institution"),
        city=text_from(_require(d, "city", path), f"{path}.city"),
        province=text_from(_require(d, "province", path), f"{path}.province"),
        region=_str(d.get("region", "长三角"), f"{path}.region") or "长三角",
        industries=_str_list(d.get("industries"), f"{path}.industries"),
        accreditations=_str_list(d.get("accreditations"), f"{path}.accreditations"),
        authorisations=LegalAuthorisations(
            verification=frozenset(_str_list(auth.get("verification"), f"{path}.authorisations.verification",
                                             limits.MAX_AUTHORISATIONS)),
            type_evaluation=frozenset(
                _str_list(auth.get("type_evaluation"), f"{path}.authorisations.type_evaluation",
                          limits.MAX_AUTHORISATIONS)
            ),
        ),
        auto_accept=bool(d.get("auto_accept", True)),
        response_sla_seconds=_response_sla(d.get("response_sla_seconds", 0), f"{path}.response_sla_seconds"),
    )


# A week: longer is no response SLA; the bound also keeps the gateway's deadline arithmetic finite.
MAX_RESPONSE_SLA_SECONDS = limits.MAX_RESPONSE_SLA


def _response_sla(v: Any, path: str) -> int:
    seconds = _int(v, path)
    if seconds > MAX_RESPONSE_SLA_SECONDS:
        raise DomainError(path, f"{seconds} s is more than a week ({MAX_RESPONSE_SLA_SECONDS} s)")
    return seconds


def centre_to_dict(c: CentreProfile) -> dict[str, Any]:
    return {
        "id": c.centre_id,
        "name": text_to(c.name),
        "host_institution": c.host_institution,
        "city": text_to(c.city),
        "province": text_to(c.province),
        "region": c.region,
        "industries": list(c.industries),
        "accreditations": list(c.accreditations),
        "authorisations": {
            "verification": sorted(c.authorisations.verification),
            "type_evaluation": sorted(c.authorisations.type_evaluation),
        },
        "auto_accept": c.auto_accept,
        # only when declared, so that a profile stored before the field existed compares equal
        **({"response_sla_seconds": c.response_sla_seconds} if c.response_sla_seconds else {}),
    }


# --------------------------------------------------------------------------------------------------
# capabilities
# --------------------------------------------------------------------------------------------------


def uncertainty_from_dict(d: Any, *, quantity_kind: str, band_unit: str, path: str) -> ExpandedUncertainty:
    """``{relative: "0.02 %", absolute: "2 Pa", k: 2, p: 0.95}``. Temperatures in ``absolute`` are
    differences: "0.5 ℃" is stored as 0.5 delta_degC (0.5 K), never 273.65 K."""
    d = _mapping(d, path)
    rel = 0.0
    if d.get("relative") is not None:
        rel = units.parse_relative(d["relative"], field=f"{path}.relative")
    abs_value, abs_unit, abs_si = 0.0, "", 0.0
    if d.get("absolute") is not None:
        f = f"{path}.absolute"
        unit_hint = d.get("absolute_unit") or units.as_delta_unit(band_unit)
        value, unit = units.parse_quantity_text(d["absolute"], field=f, default_unit=unit_hint)
        if value < 0:
            raise DomainError(f, f"an uncertainty cannot be negative, got {quote(d['absolute'])}")
        unit = units.check_kind(units.as_delta_unit(unit), quantity_kind, field=f)
        abs_value, abs_unit = value, unit
        abs_si = units.delta_to_si(value, unit, quantity_kind)
        if not math.isfinite(abs_si):
            raise DomainError(f, f"{value:g} {unit} is out of range once converted to SI units")
    if rel == 0.0 and abs_value == 0.0:
        raise DomainError(path, "needs a positive relative and/or absolute part (U = a·|x| + b)")
    k = _number(d.get("k", 2.0), f"{path}.k", min_value=0.0, min_exclusive=True)
    p = _number(d.get("p", d.get("coverage_probability", 0.95)), f"{path}.p", min_value=0.0, min_exclusive=True,
                max_value=1.0, max_exclusive=True)
    return ExpandedUncertainty(relative=rel, absolute=abs_value, absolute_unit=abs_unit, k=k,
                               coverage_probability=p, absolute_si=abs_si)


def band_from_dict(d: Any, *, quantity_kind: str, path: str) -> RangeBand:
    d = _mapping(d, path)
    rng = _require(d, "range", path)
    if not isinstance(rng, (list, tuple)) or len(rng) != 2:
        raise DomainError(f"{path}.range", f"expected [min, max], got {quote(rng)}")
    lo = _number(rng[0], f"{path}.range[0]")
    hi = _number(rng[1], f"{path}.range[1]")
    if lo > hi:
        raise DomainError(f"{path}.range", f"min {lo:g} is above max {hi:g}")
    unit = units.check_kind(_str(_require(d, "unit", path), f"{path}.unit", allow_empty=False), quantity_kind,
                            field=f"{path}.unit")
    lo_si = units.to_si(lo, unit, quantity_kind)
    hi_si = units.to_si(hi, unit, quantity_kind)
    if not (math.isfinite(lo_si) and math.isfinite(hi_si)):
        raise DomainError(f"{path}.range", f"{lo:g}–{hi:g} {unit} is out of range once converted to SI units")
    _check_physical(quantity_kind, lo_si, hi_si, lo, hi, unit, f"{path}.range")
    unc = uncertainty_from_dict(_require(d, "uncertainty", path), quantity_kind=quantity_kind, band_unit=unit,
                                path=f"{path}.uncertainty")
    return RangeBand(min=lo, max=hi, unit=unit, uncertainty=unc, lo_si=lo_si, hi_si=hi_si)


def _check_physical(kind: str, lo_si: float, hi_si: float, lo: float, hi: float, unit: str, path: str) -> None:
    """Negative values are legal for some kinds (−0.1 MPa vacuum, −40 °C, CCW torque) only."""
    q = units.QUANTITY_KINDS[kind]
    eps = 1e-12 * max(1.0, abs(lo_si), abs(hi_si))
    if q.min_si is not None and lo_si < q.min_si - eps:
        raise DomainError(path, f"{lo:g} {unit} is below the physical limit of {q.en}")
    if not q.allows_negative and lo_si < -eps:
        raise DomainError(path, f"{q.en} ({q.zh}) cannot be negative, got {lo:g} {unit}")
    if q.max_si is not None and hi_si > q.max_si + eps:
        raise DomainError(path, f"{hi:g} {unit} is above the physical limit of {q.en}")


def capability_from_dict(centre_id: str, d: Mapping[str, Any], version: int = 1, *,
                         path: str = "capability") -> Capability:
    """One entry of ``capabilities:``. ``path`` prefixes error fields (``capabilities[3]``)."""
    d = _mapping(d, path)
    if not CENTRE_ID_RE.match(centre_id or ""):
        raise DomainError("centre.id", f"{quote(centre_id)} must match [a-z0-9-]{{2,40}}")
    cap_id = _str(_require(d, "id", path), f"{path}.id")
    if not CAPABILITY_ID_RE.match(cap_id):
        raise DomainError(f"{path}.id", f"{quote(cap_id)} must match [a-z0-9-]{{2,60}}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DomainError(f"{path}.version", f"must be a whole number ≥ 1, got {quote(version)}")
    kind = _enum(ServiceKind, _require(d, "service_kind", path), f"{path}.service_kind")
    measuring = kind in MEASURING_KINDS
    qk_raw = d.get("quantity_kind")
    if measuring and not qk_raw:
        raise DomainError(f"{path}.quantity_kind", f"is required for {kind.value}")
    qk = _str(qk_raw, f"{path}.quantity_kind")
    if qk and qk not in units.QUANTITY_KINDS:
        raise DomainError(f"{path}.quantity_kind",
                          f"unknown quantity kind {quote(qk)}; one of {', '.join(sorted(units.QUANTITY_KINDS))}")
    bands_raw = d.get("bands") or []
    if not isinstance(bands_raw, (list, tuple)):
        raise DomainError(f"{path}.bands", f"expected a list, got {type(bands_raw).__name__}")
    if measuring and not bands_raw:
        raise DomainError(f"{path}.bands", f"at least one band is required for {kind.value}")
    limits.check_count(len(bands_raw), f"{path}.bands", limits.MAX_BANDS)
    if bands_raw and not qk:
        raise DomainError(f"{path}.quantity_kind", "is required when bands are given")
    bands = tuple(band_from_dict(b, quantity_kind=qk, path=f"{path}.bands[{i}]") for i, b in enumerate(bands_raw))
    method = _str(d.get("method", d.get("method_code")), f"{path}.method", max_len=120)
    if measuring and not method:
        raise DomainError(f"{path}.method", f"is required for {kind.value} (JJG/JJF/GB/ISO code or 'in-house: …')")
    return Capability(
        centre_id=centre_id,
        capability_id=cap_id,
        version=version,
        service_kind=kind,
        quantity_kind=qk,
        measurand=text_from(d.get("measurand"), f"{path}.measurand", required=measuring),
        instrument_type=text_from(d.get("instrument_type"), f"{path}.instrument_type", required=False),
        method_code=method,
        bands=bands,
        conditions=_str(d.get("conditions"), f"{path}.conditions", max_len=2000),
        site=_enum(Site, d.get("site", "lab"), f"{path}.site"),
        lead_time_days=_int(d.get("lead_time_days", 0), f"{path}.lead_time_days", max_value=limits.MAX_LEAD_DAYS),
        price_cny=_number(d.get("price_cny", 0.0), f"{path}.price_cny", min_value=0.0, max_value=limits.PRICE),
        capacity_per_month=_int(d.get("capacity_per_month", 0), f"{path}.capacity_per_month",
                                max_value=limits.MAX_CAPACITY),
        basis=_str(d.get("basis"), f"{path}.basis"),
        keywords=_str_list(d.get("keywords"), f"{path}.keywords", limits.MAX_KEYWORDS),
    )


def _uncertainty_to_dict(u: ExpandedUncertainty) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if u.relative:
        out["relative"] = u.relative  # a plain fraction: exact round trip
    if u.absolute or u.absolute_unit:
        out["absolute"] = f"{u.absolute!r} {u.absolute_unit}"
    out["k"] = u.k
    out["p"] = u.coverage_probability
    return out


def capability_to_dict(c: Capability) -> dict[str, Any]:
    return {
        "id": c.capability_id,
        "service_kind": c.service_kind.value,
        "quantity_kind": c.quantity_kind,
        "measurand": text_to(c.measurand),
        "instrument_type": text_to(c.instrument_type),
        "method": c.method_code,
        "bands": [
            {"range": [b.min, b.max], "unit": b.unit, "uncertainty": _uncertainty_to_dict(b.uncertainty)}
            for b in c.bands
        ],
        "conditions": c.conditions,
        "site": c.site.value,
        "lead_time_days": c.lead_time_days,
        "price_cny": c.price_cny,
        "capacity_per_month": c.capacity_per_month,
        "basis": c.basis,
        "keywords": list(c.keywords),
    }


def centre_file_from_dict(d: Mapping[str, Any], version: int = 1) -> tuple[CentreProfile, list[Capability]]:
    """A whole seed file: ``{centre: …, capabilities: […]}``; capability ids must be unique."""
    d = _mapping(d, "")
    centre = centre_from_dict(_require(d, "centre", ""), path="centre")
    caps_raw = d.get("capabilities") or []
    if not isinstance(caps_raw, (list, tuple)):
        raise DomainError("capabilities", f"expected a list, got {type(caps_raw).__name__}")
    caps: list[Capability] = []
    seen: set[str] = set()
    for i, c in enumerate(caps_raw):
        cap = capability_from_dict(centre.centre_id, c, version, path=f"capabilities[{i}]")
        if cap.capability_id in seen:
            raise DomainError(f"capabilities[{i}].id", f"{quote(cap.capability_id)} is used twice in this centre")
        seen.add(cap.capability_id)
        caps.append(cap)
    return centre, caps
