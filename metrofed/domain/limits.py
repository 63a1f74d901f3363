"""Input limits of both gRPC APIs, in one table (docs/input-limits.md is rendered from it).

Every field of every request message of GatewayService and CentreService has an entry here, keyed
``"<Message>.<field>"`` by the protobuf message's short name (a test walks the descriptors and fails on
a field without one, so a new field cannot slip in unbounded). ``metrofed.protoconv.check_limits``
applies the table to a decoded request before anything else reads it; the record and need validators
(seed files, bus events) read the same constants.

Why these checks at all: a NUL byte in an id is refused by PostgreSQL (an unhandled error, not a bad
request), a 30,000-band capability becomes an event the broker refuses, a control character in an id
breaks logs and topic names, and a non-finite number poisons every comparison the router makes.

Error messages quote at most ``ECHO_PREFIX`` characters of what was sent (:func:`quote`): a message
should help the caller find the field, not replay a megabyte of their input into logs.

Pure domain: no protobuf here; the table names fields, the adapter walks the messages.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from metrofed.domain.capability import DomainError

__all__ = [
    "ECHO_PREFIX",
    "Limit",
    "LIMITS",
    "MAX_BANDS",
    "MAX_KEYWORDS",
    "TEXT",
    "quote",
    "bad_char",
    "check_text",
    "check_number",
    "check_int",
    "check_count",
    "limit_for",
    "render_markdown",
]

ECHO_PREFIX = 40

# Shared sizes (characters). The record validator used these before the table existed; kept so that
# seed files valid yesterday stay valid.
ID = 64  # request ids are UUIDs (36); 64 is the inbox/event-id column width
CENTRE_ID = 40
CAPABILITY_ID = 60
PARTY_ID = 100  # enterprise ids, idempotency keys
TEXT = 500  # names, bases, keywords, list items
SHORT = 100  # city, province, search filters
KIND = 40  # quantity kind names
UNIT = 64  # unit expressions (units.MAX_UNIT_TEXT)
METHOD = 120
CONDITIONS = 2000
NOTE = 2000  # notes and reasons a person writes
QUERY = 200
MEASURAND = 200
CERTIFICATE = 2 * 1024 * 1024  # DCC XML; the centre also bounds its UTF-8 bytes (centre/app.py)
ENDPOINT = 200

MAX_BANDS = 100  # the seed's largest has 3; a KCDB entry rarely has more than a dozen
MAX_KEYWORDS = 50
MAX_LIST = 50  # industries, accreditations
MAX_AUTHORISATIONS = 200  # JJG codes a centre may verify under

MAX_LEAD_DAYS = 3650  # ten years: a longer lead time is a typo, not a service
MAX_CAPACITY = 1_000_000
MAX_RESPONSE_SLA = 7 * 24 * 3600  # a week: longer is no response SLA (docs/failover.md)
VALUE = 1e18  # |range limit|: ohms of insulation reach 1e15; anything past this is a typo or an attack
PRICE = 1e9
INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Limit:
    """What one field may hold.

    ``kind``: ``id`` (one line, no control or format characters), ``line`` (one line of text, no
    control characters), ``text`` (may span lines: tab, CR, LF allowed, other controls not), ``number``
    (finite double in [lo, hi]), ``int`` (whole number in [lo, hi]), ``enum`` (a value this build
    knows), ``flag`` (bool), ``message`` (checked field by field), ``ignored`` (the server sets it).
    ``max_len`` bounds characters of each string, ``max_items`` the entries of a repeated field.
    """

    kind: str
    max_len: int | None = None
    max_items: int | None = None
    lo: float | None = None
    hi: float | None = None
    note: str = ""

    def describe(self) -> str:
        parts: list[str] = []
        if self.kind in ("id", "line", "text"):
            what = {"id": "id: no control/format characters", "line": "one line: no control characters",
                    "text": "text: no NUL or control characters but tab/CR/LF"}[self.kind]
            parts.append(f"≤ {self.max_len:,} characters; {what}")
        elif self.kind == "number":
            parts.append(f"finite; {_g(self.lo)} … {_g(self.hi)}")
        elif self.kind == "int":
            parts.append(f"{_g(self.lo)} … {_g(self.hi)}")
        elif self.kind == "enum":
            parts.append("a value of the enum this build knows")
        elif self.kind == "flag":
            parts.append("true / false")
        elif self.kind == "message":
            parts.append("checked field by field")
        elif self.kind == "ignored":
            parts.append("ignored: set by the server")
        if self.max_items is not None:
            parts.insert(0, f"≤ {self.max_items:,} entries")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


def _g(x: float | None) -> str:
    if x is None:
        return "any"
    return f"{x:,.0f}" if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def _id(n: int, note: str = "") -> Limit:
    return Limit("id", max_len=n, note=note)


def _line(n: int, note: str = "", items: int | None = None) -> Limit:
    return Limit("line", max_len=n, note=note, max_items=items)


def _text(n: int, note: str = "") -> Limit:
    return Limit("text", max_len=n, note=note)


def _num(lo: float, hi: float, note: str = "") -> Limit:
    return Limit("number", lo=lo, hi=hi, note=note)


def _int(lo: int, hi: int, note: str = "") -> Limit:
    return Limit("int", lo=lo, hi=hi, note=note)


_ENUM = Limit("enum")
_FLAG = Limit("flag")
_MSG = Limit("message")

LIMITS: dict[str, Limit] = {
    # ---- shared messages ------------------------------------------------------------------------------
    "LocalizedText.zh": _line(TEXT),
    "LocalizedText.en": _line(TEXT),
    # ---- Need (SubmitRequest, RouteNeed) ----------------------------------------------------------------
    "Need.measurand": _line(MEASURAND),
    "Need.instrument_type": _line(MEASURAND),
    "Need.quantity_kind": _line(KIND),
    "Need.range": _MSG,
    "Need.tolerance": _MSG,
    "Need.service_kind": _ENUM,
    "Need.decision_rule": _MSG,
    "Need.city": _line(SHORT),
    "Need.province": _line(SHORT),
    "Need.deadline": _line(32, "an ISO date, YYYY-MM-DD"),
    "Need.quantity": _int(0, 1_000_000, "0 means 1"),
    "Need.site": _ENUM,
    "Need.legal_use": _FLAG,
    "MeasuringRange.min": _num(-VALUE, VALUE),
    "MeasuringRange.max": _num(-VALUE, VALUE),
    "MeasuringRange.unit": _line(UNIT, "a unit expression (see below)"),
    "Tolerance.kind": _ENUM,
    "Tolerance.value": _num(-VALUE, VALUE, "> 0 by the need's rules"),
    "Tolerance.unit": _line(UNIT, "a unit expression"),
    "DecisionRule.kind": _ENUM,
    "DecisionRule.min_ratio": _num(0, 1000),
    # ---- GatewayService requests ----------------------------------------------------------------------
    "SearchCatalogRequest.text": _line(QUERY),
    "SearchCatalogRequest.service_kind": _ENUM,
    "SearchCatalogRequest.quantity_kind": _line(KIND),
    "SearchCatalogRequest.province": _line(SHORT),
    "SearchCatalogRequest.city": _line(SHORT),
    "SearchCatalogRequest.centre_id": _id(CENTRE_ID),
    "SearchCatalogRequest.range": _MSG,
    "SearchCatalogRequest.limit": _int(0, 200, "0 means 50"),
    "SearchCatalogRequest.offset": _int(0, 100_000),
    "RouteNeedRequest.need": _MSG,
    "SubmitRequestRequest.enterprise_id": _id(PARTY_ID),
    "SubmitRequestRequest.need": _MSG,
    "SubmitRequestRequest.idempotency_key": _id(PARTY_ID),
    "GetRequestRequest.request_id": _id(ID),
    "ListRequestsRequest.enterprise_id": _id(PARTY_ID),
    "ListRequestsRequest.limit": _int(0, 500, "0 means 50"),
    "CancelRequestRequest.request_id": _id(ID),
    "CancelRequestRequest.reason": _text(NOTE),
    # ---- Capability (PublishCapability, ReviseCapability) ---------------------------------------------
    "Capability.centre_id": Limit("ignored", note="the serving centre's own id is used"),
    "Capability.capability_id": _id(CAPABILITY_ID, "then [a-z0-9-]{2,60}"),
    "Capability.version": Limit("ignored", note="the centre numbers revisions"),
    "Capability.service_kind": _ENUM,
    "Capability.quantity_kind": _line(KIND),
    "Capability.measurand": _MSG,
    "Capability.instrument_type": _MSG,
    "Capability.method_code": _line(METHOD),
    "Capability.bands": Limit("message", max_items=MAX_BANDS),
    "Capability.conditions": _text(CONDITIONS),
    "Capability.site": _ENUM,
    "Capability.lead_time_days": _int(0, MAX_LEAD_DAYS),
    "Capability.price_cny": _num(0, PRICE),
    "Capability.capacity_per_month": _int(0, MAX_CAPACITY),
    "Capability.basis": _line(TEXT),
    "Capability.keywords": _line(TEXT, items=MAX_KEYWORDS),
    "RangeBand.min": _num(-VALUE, VALUE),
    "RangeBand.max": _num(-VALUE, VALUE),
    "RangeBand.unit": _line(UNIT, "a unit expression"),
    "RangeBand.uncertainty": _MSG,
    "ExpandedUncertainty.relative": _num(0, 1000, "a plain fraction"),
    "ExpandedUncertainty.absolute": _num(0, VALUE),
    "ExpandedUncertainty.absolute_unit": _line(UNIT, "a unit expression"),
    "ExpandedUncertainty.coverage_factor": _num(0, 100, "0 means 2"),
    "ExpandedUncertainty.coverage_probability": _num(0, 1, "0 means 0.95"),
    # ---- CentreProfile (RegisterCentre) ---------------------------------------------------------------
    "CentreProfile.centre_id": _id(CENTRE_ID, "then [a-z0-9-]{2,40}"),
    "CentreProfile.name": _MSG,
    "CentreProfile.host_institution": _line(TEXT),
    "CentreProfile.city": _MSG,
    "CentreProfile.province": _MSG,
    "CentreProfile.region": _line(TEXT),
    "CentreProfile.industries": _line(TEXT, items=MAX_LIST),
    "CentreProfile.accreditations": _line(TEXT, items=MAX_LIST),
    "CentreProfile.authorisations": _MSG,
    "CentreProfile.auto_accept": _FLAG,
    "CentreProfile.grpc_endpoint": _line(ENDPOINT, "informational"),
    "CentreProfile.response_sla_seconds": _int(0, MAX_RESPONSE_SLA, "seconds; 0: the gateway's default"),
    "LegalAuthorisations.verification": _line(TEXT, items=MAX_AUTHORISATIONS),
    "LegalAuthorisations.type_evaluation": _line(TEXT, items=MAX_AUTHORISATIONS),
    # ---- CentreService requests -----------------------------------------------------------------------
    "RegisterCentreRequest.profile": _MSG,
    "PublishCapabilityRequest.capability": _MSG,
    "ReviseCapabilityRequest.capability": _MSG,
    "WithdrawCapabilityRequest.capability_id": _id(CAPABILITY_ID),
    "WithdrawCapabilityRequest.reason": _text(NOTE),
    "ListInboxRequest.state": _ENUM,
    "AcceptRequestRequest.request_id": _id(ID),
    "AcceptRequestRequest.note": _text(NOTE),
    "DeclineRequestRequest.request_id": _id(ID),
    "DeclineRequestRequest.reason": _text(NOTE),
    "CompleteRequestRequest.request_id": _id(ID),
    "CompleteRequestRequest.result_certificate": _text(CERTIFICATE, "DCC XML"),
    "CompleteRequestRequest.note": _text(NOTE),
    "GetCertificateRequest.request_id": _id(ID),
}


def limit_for(message: str, field: str) -> Limit | None:
    return LIMITS.get(f"{message}.{field}")


# --------------------------------------------------------------------------------------------------
# checks (raise DomainError naming the field and the limit)
# --------------------------------------------------------------------------------------------------


def quote(value: object) -> str:
    """``repr`` of at most ``ECHO_PREFIX`` characters of ``value``, with "…" when cut: error messages
    say which input they mean without replaying all of it."""
    if isinstance(value, str):
        return repr(value) if len(value) <= ECHO_PREFIX else repr(value[:ECHO_PREFIX]) + "…"
    r = repr(value)
    return r if len(r) <= ECHO_PREFIX else r[:ECHO_PREFIX] + "…"


# Characters each kind refuses (one regex search: these checks sit on the catalog's hot path too).
_FORBIDDEN = {
    "text": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"),
    "line": re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"),
}
_FORBIDDEN["id"] = _FORBIDDEN["line"]


def _describe_char(ch: str) -> str:
    if ch == "\x00":
        return "a NUL byte"
    if "\ud800" <= ch <= "\udfff":
        return "a lone surrogate"
    return f"control character U+{ord(ch):04X}"


def bad_char(value: str, kind: str = "text") -> tuple[int, str] | None:
    """(position, description) of the first character ``kind`` forbids, or None."""
    m = _FORBIDDEN[kind].search(value)
    if m is not None:
        return m.start(), _describe_char(m.group())
    if kind == "id" and not value.isascii():
        for i, ch in enumerate(value):  # invisible characters make two different ids look the same
            if ch > "\x9f" and unicodedata.category(ch) == "Cf":
                return i, f"format character U+{ord(ch):04X}"
    return None


def check_text(value: str, field: str, limit: Limit) -> str:
    if limit.max_len is not None and len(value) > limit.max_len:
        raise DomainError(field, f"is {len(value):,} characters long; at most {limit.max_len:,}")
    bad = bad_char(value, limit.kind)
    if bad is not None:
        raise DomainError(field, f"contains {bad[1]} at position {bad[0]} (not allowed in "
                                 f"{'an id' if limit.kind == 'id' else 'this field'})")
    return value


def check_number(value: float, field: str, limit: Limit) -> float:
    if not math.isfinite(value):
        raise DomainError(field, f"must be a finite number, got {value!r}")
    if (limit.lo is not None and value < limit.lo) or (limit.hi is not None and value > limit.hi):
        raise DomainError(field, f"must be between {_g(limit.lo)} and {_g(limit.hi)}, got {value:g}")
    return value


def check_int(value: int, field: str, limit: Limit) -> int:
    if (limit.lo is not None and value < limit.lo) or (limit.hi is not None and value > limit.hi):
        raise DomainError(field, f"must be between {_g(limit.lo)} and {_g(limit.hi)}, got {value}")
    return value


def check_count(n: int, field: str, max_items: int) -> None:
    if n > max_items:
        raise DomainError(field, f"has {n:,} entries; at most {max_items:,}")


# --------------------------------------------------------------------------------------------------
# the doc's table
# --------------------------------------------------------------------------------------------------


def render_markdown() -> str:
    """The limits table of docs/input-limits.md (a test keeps the doc equal to this)."""
    lines = ["| field | limit |", "|---|---|"]
    for key, limit in LIMITS.items():
        lines.append(f"| `{key}` | {limit.describe()} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m metrofed.domain.limits > the table for docs/input-limits.md
    print(render_markdown(), end="")
