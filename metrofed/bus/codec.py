"""Record values of the catalog topics <-> domain objects, on the catalog's hot path.

``encode_capability(cap)`` is the value a centre publishes on ``metrofed.capabilities.v1``:
``Envelope(CapabilityPublished(capability_to_proto(cap)))``. ``decode_capability(value)`` turns it back
into a validated :class:`Capability` without the detour through the seed-record dict form
(``protoconv.capability_dict_from_proto`` -> ``records.capability_from_dict``), which re-parses unit
text per band and costs ~55 µs a record; a catalog rebuild decodes every record of the topic.

The fast path validates what the record validator validates (ids, service kind, quantity kind, min ≤
max and finite limits, physical limits of the kind, non-negative finite U, 0 < k, 0 < p < 1, unit
compatible with the kind, text lengths, non-negative counts and price), reading the unit facts (canonical
unit, SI factor, delta unit) from caches keyed by the unit *text* and the kind: a federation has a few
hundred distinct unit strings. It is **conservative**: whenever anything is not plainly valid it hands
the message to the reference path (``protoconv.capability_from_proto_via_dict``), which returns the same
result or raises the same :class:`DomainError`, field path and reason included. So on every input the
two paths agree (tests/unit/test_codec.py checks it on the seed and on invalid records), and errors cost
what they cost before.

Caches are bounded (cleared when full) and hold only immutable values (str, float, Text, tuples), so
sharing them between threads and between capabilities is safe; sharing ``Text`` and keyword tuples also
saves memory in a large catalog.
"""

from __future__ import annotations

import math

from google.protobuf.message import DecodeError

from metrofed import protoconv
from metrofed.bus.envelope import UnknownEvent, wrap
from metrofed.domain import limits, records, units
from metrofed.domain.capability import (
    MEASURING_KINDS,
    Capability,
    CentreProfile,
    DomainError,
    ExpandedUncertainty,
    RangeBand,
    ServiceKind,
    Site,
    Text,
)
from metrofed.v1 import capability_pb2, common_pb2, events_pb2

__all__ = [
    "CAPABILITY_PUBLISHED",
    "CENTRE_REGISTERED",
    "encode_capability",
    "decode_capability",
    "decode_catalog_event",
    "capability_from_message",
]

CAPABILITY_PUBLISHED = events_pb2.CapabilityPublished.DESCRIPTOR.full_name
CENTRE_REGISTERED = events_pb2.CentreRegistered.DESCRIPTOR.full_name

_Envelope = events_pb2.Envelope
_CapabilityPublished = events_pb2.CapabilityPublished
_CentreRegistered = events_pb2.CentreRegistered


# ---- encoding ---------------------------------------------------------------------------------------

def encode_capability(cap: Capability, *, producer: str | None = None, event_id: str | None = None) -> bytes:
    """The record value a centre publishes for ``cap`` (its outbox does exactly this, with a UUID id)."""
    event = _CapabilityPublished(capability=protoconv.capability_to_proto(cap))
    return wrap(event, producer or cap.centre_id, event_id=event_id).SerializeToString()


# ---- decoding record values -------------------------------------------------------------------------

def _envelope(value: bytes) -> events_pb2.Envelope:
    try:
        return _Envelope.FromString(value)
    except (DecodeError, TypeError) as exc:
        raise DomainError("envelope", f"not a metrofed.v1.Envelope: {exc}") from None


def _payload(cls, env: events_pb2.Envelope):
    try:
        return cls.FromString(env.payload)
    except DecodeError as exc:
        raise DomainError("envelope.payload", f"not a {cls.DESCRIPTOR.full_name}: {exc}") from None


def decode_capability(value: bytes) -> Capability:
    """A ``metrofed.capabilities.v1`` record value -> a validated Capability (the centre id and version
    are the message's own). DomainError on bad data, UnknownEvent for another event type."""
    env = _envelope(value)
    if env.event_type != CAPABILITY_PUBLISHED:
        raise UnknownEvent(env.event_type)
    msg = _payload(_CapabilityPublished, env).capability
    return capability_from_message(msg, msg.centre_id, msg.version)


def decode_catalog_event(value: bytes) -> Capability | CentreProfile:
    """A record value of either catalog topic: a Capability (CapabilityPublished) or a CentreProfile
    (CentreRegistered). DomainError on bad data, UnknownEvent for any other event type."""
    env = _envelope(value)
    et = env.event_type
    if et == CAPABILITY_PUBLISHED:
        msg = _payload(_CapabilityPublished, env).capability
        return capability_from_message(msg, msg.centre_id, msg.version)
    if et == CENTRE_REGISTERED:
        return protoconv.centre_from_proto(_payload(_CentreRegistered, env).profile)
    raise UnknownEvent(et)


# ---- proto -> domain, fast path ---------------------------------------------------------------------

_BAD = object()  # cached "this text is not valid here": the reference path names the error
_MAX_CACHE = 65_536  # entries per cache; cleared (not evicted one by one) when full
_INF = math.inf
_isfinite = math.isfinite
_MAX_TEXT = limits.TEXT  # records._MAX_TEXT
_bad_text = limits.bad_char  # records._str refuses these characters (after strip)

_KINDS: dict[int, ServiceKind] = {protoconv.service_kind_to_proto(k): k for k in ServiceKind}
_SITES: dict[int, Site] = {protoconv.site_to_proto(s): s for s in Site}
_SITES[common_pb2.SITE_UNSPECIFIED] = Site.LAB
_QUANTITY_KINDS = units.QUANTITY_KINDS
_MAX_BANDS = limits.MAX_BANDS
_CENTRE_ID_MATCH = records.CENTRE_ID_RE.match
_CAPABILITY_ID_MATCH = records.CAPABILITY_ID_RE.match

# (band unit text, quantity kind) -> (canonical unit, multiplier, offset, min_si, max_si, allows_negative) | _BAD
_BAND_UNITS: dict[tuple[str, str], tuple | object] = {}
# (absolute unit text, band's canonical unit, quantity kind) -> (canonical delta unit, multiplier) | _BAD
_ABS_UNITS: dict[tuple[str, str, str], tuple | object] = {}
_TEXTS: dict[tuple[str, str], Text | object] = {}  # (zh, en) as sent -> Text (stripped) | _BAD (too long)
_STRIPPED: dict[str, str] = {}  # method codes, conditions, bases as sent -> stripped (and shared)
_KEYWORDS: dict[tuple[str, ...], tuple[str, ...] | object] = {}


def _remember(cache: dict, key, value):
    if len(cache) >= _MAX_CACHE:
        cache.clear()
    cache[key] = value
    return value


def _band_unit(text: str, kind: str):
    """What records.band_from_dict derives from a band's unit text, or _BAD where it would raise."""
    try:
        s = records._str(text, "unit", allow_empty=False)  # noqa: SLF001 - the same reader, on purpose
        canon = units.check_kind(s, kind)
        m, o = units.si_factor(canon, kind)
    except Exception:  # noqa: BLE001 - the reference path raises the real error
        return _remember(_BAND_UNITS, (text, kind), _BAD)
    q = _QUANTITY_KINDS[kind]
    return _remember(_BAND_UNITS, (text, kind), (canon, m, o, q.min_si, q.max_si, q.allows_negative))


def _abs_unit(text: str, band_unit: str, kind: str):
    """What records.uncertainty_from_dict derives from ``"<absolute> <absolute_unit>"`` (the text
    protoconv builds), or _BAD. The number never changes how the unit part reads: the .12g form of a
    finite float has no spaces and the unit follows a space."""
    try:
        _, unit = units.parse_quantity_text(f"1 {text}".strip(), field="absolute",
                                            default_unit=units.as_delta_unit(band_unit))
        canon = units.check_kind(units.as_delta_unit(unit), kind)
        m = units.si_factor(canon, kind)[0]
    except Exception:  # noqa: BLE001
        return _remember(_ABS_UNITS, (text, band_unit, kind), _BAD)
    return _remember(_ABS_UNITS, (text, band_unit, kind), (canon, m))


def _text(t):
    key = (t.zh, t.en)
    r = _TEXTS.get(key)
    if r is None:
        zh, en = key[0].strip(), key[1].strip()
        bad = len(zh) > _MAX_TEXT or len(en) > _MAX_TEXT or _bad_text(zh) or _bad_text(en)
        r = _remember(_TEXTS, key, _BAD if bad else Text(zh=zh, en=en))
    return r


def _stripped(s: str):
    """``s.strip()``, or _BAD when it holds a character records._str refuses."""
    r = _STRIPPED.get(s)
    if r is None:
        t = s.strip()
        r = _remember(_STRIPPED, s, _BAD if _bad_text(t) else t)
    return r


def _keywords(raw) -> tuple[str, ...] | object:
    if not raw:
        return ()
    key = tuple(raw)
    r = _KEYWORDS.get(key)
    if r is None:
        out = tuple(k.strip() for k in key)
        r = _BAD if len(out) > limits.MAX_KEYWORDS or any(not k or len(k) > _MAX_TEXT or _bad_text(k)
                                                          for k in out) else out
        _remember(_KEYWORDS, key, r)
    return r


def _band(b, kind: str) -> RangeBand | None:
    lo = b.min
    hi = b.max
    if not (_isfinite(lo) and _isfinite(hi)) or lo > hi:
        return None
    text = b.unit
    info = _BAND_UNITS.get((text, kind))
    if info is None:
        info = _band_unit(text, kind)
    if info is _BAD:
        return None
    unit, m, o, min_si, max_si, allows_negative = info
    lo_si = lo * m + o  # exactly units.to_si
    hi_si = hi * m + o
    if not (_isfinite(lo_si) and _isfinite(hi_si)):
        return None
    eps = 1e-12 * max(1.0, abs(lo_si), abs(hi_si))  # exactly records._check_physical
    if (min_si is not None and lo_si < min_si - eps) or (not allows_negative and lo_si < -eps) \
            or (max_si is not None and hi_si > max_si + eps):
        return None
    u = b.uncertainty
    rel = u.relative
    if rel:
        if not 0.0 < rel < _INF:  # negative, infinite or NaN
            return None
    else:
        rel = 0.0
    a = u.absolute
    a_text = u.absolute_unit
    if a or a_text:
        if not _isfinite(a):
            return None
        a = float(protoconv._num(a))  # noqa: SLF001 - the value the reference path reads back
        if a < 0:
            return None
        ainfo = _ABS_UNITS.get((a_text, unit, kind))
        if ainfo is None:
            ainfo = _abs_unit(a_text, unit, kind)
        if ainfo is _BAD:
            return None
        a_unit, am = ainfo
        a_si = a * am  # exactly units.delta_to_si
        if not _isfinite(a_si):
            return None
    else:
        a, a_unit, a_si = 0.0, "", 0.0
    if rel == 0.0 and a == 0.0:
        return None
    k = u.coverage_factor or 2.0
    p = u.coverage_probability or 0.95
    if not (0.0 < k < _INF and 0.0 < p < 1.0):
        return None
    return RangeBand(min=lo, max=hi, unit=unit,
                     uncertainty=ExpandedUncertainty(relative=rel, absolute=a, absolute_unit=a_unit, k=k,
                                                     coverage_probability=p, absolute_si=a_si),
                     lo_si=lo_si, hi_si=hi_si)


def _fast(msg: capability_pb2.Capability, centre_id, version) -> Capability | None:
    """The Capability the reference path would return, or None when it might not return one."""
    if type(version) is not int or version < 1:
        return None
    if type(centre_id) is not str or not _CENTRE_ID_MATCH(centre_id):
        return None
    cap_id = msg.capability_id.strip()
    if not _CAPABILITY_ID_MATCH(cap_id):
        return None
    kind = _KINDS.get(msg.service_kind)
    if kind is None:
        return None
    measuring = kind in MEASURING_KINDS
    qk = msg.quantity_kind
    if qk:
        if qk not in _QUANTITY_KINDS:  # includes names with stray spaces: the reference path decides
            return None
    elif measuring:
        return None
    bands_msg = msg.bands
    if bands_msg:
        if not qk or len(bands_msg) > _MAX_BANDS:
            return None
        bands = []
        for b in bands_msg:
            band = _band(b, qk)
            if band is None:
                return None
            bands.append(band)
        bands = tuple(bands)
    elif measuring:
        return None
    else:
        bands = ()
    method = _stripped(msg.method_code)
    if method is _BAD or len(method) > 120 or (measuring and not method):
        return None
    measurand = _text(msg.measurand)
    if measurand is _BAD or (measuring and not measurand.zh and not measurand.en):
        return None
    instrument = _text(msg.instrument_type)
    if instrument is _BAD:
        return None
    conditions = _stripped(msg.conditions)
    basis = _stripped(msg.basis)
    if conditions is _BAD or basis is _BAD or len(conditions) > 2000 or len(basis) > _MAX_TEXT:
        return None
    site = _SITES.get(msg.site)
    if site is None:
        return None
    lead = msg.lead_time_days
    capacity = msg.capacity_per_month
    price = msg.price_cny
    if not (0 <= lead <= limits.MAX_LEAD_DAYS and 0 <= capacity <= limits.MAX_CAPACITY
            and 0.0 <= price <= limits.PRICE):
        return None
    keywords = _keywords(msg.keywords)
    if keywords is _BAD:
        return None
    return Capability(centre_id=centre_id, capability_id=cap_id, version=version, service_kind=kind,
                      quantity_kind=qk, measurand=measurand, instrument_type=instrument, method_code=method,
                      bands=bands, conditions=conditions, site=site, lead_time_days=lead, price_cny=price,
                      capacity_per_month=capacity, basis=basis, keywords=keywords)


def capability_from_message(msg: capability_pb2.Capability, centre_id: str, version: int,
                            field: str = "capability") -> Capability:
    """A wire Capability -> a validated domain Capability; same result and same DomainError (field path
    included) as ``protoconv.capability_from_proto_via_dict``, ~5x faster on valid messages."""
    cap = _fast(msg, centre_id, version)
    if cap is None:
        return protoconv.capability_from_proto_via_dict(msg, centre_id, version, field)
    return cap
