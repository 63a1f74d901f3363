"""Translation between protobuf messages (the wire) and domain objects.

Incoming profiles go through the same dict form as seed files (metrofed.domain.records), so one
validator names the offending field whatever the source. Incoming capabilities are decoded straight from
the message by ``metrofed.bus.codec`` (the catalog decodes every record of the topic), which falls back
to that dict form (:func:`capability_from_proto_via_dict`) for anything not plainly valid, so errors
name the same fields.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from metrofed.domain import records
from metrofed.domain.capability import (Capability, CentreProfile, DomainError, ServiceKind, Site)
from metrofed.domain.lifecycle import RequestState
from metrofed.v1 import capability_pb2, common_pb2, request_pb2

def _num(x: float) -> str:
    return repr(float(x))  # the shortest text that reads back as the same double: no drift on the wire


# ---- enums -----------------------------------------------------------------------------------------

def _enum_name(enum, value: int, field: str) -> str:
    """proto3 enums are open: a newer client may send a number this build does not know."""
    try:
        return enum.Name(value)
    except ValueError:
        raise DomainError(field, f"unknown value {value}") from None


def service_kind_to_proto(kind: ServiceKind | None) -> int:
    if kind is None:
        return common_pb2.SERVICE_KIND_UNSPECIFIED
    return common_pb2.ServiceKind.Value("SERVICE_KIND_" + kind.name)


def service_kind_from_proto(value: int, field: str) -> ServiceKind | None:
    if value == common_pb2.SERVICE_KIND_UNSPECIFIED:
        return None
    return ServiceKind[_enum_name(common_pb2.ServiceKind, value, field).removeprefix("SERVICE_KIND_")]


def site_to_proto(site: Site | None) -> int:
    return common_pb2.SITE_UNSPECIFIED if site is None else common_pb2.Site.Value("SITE_" + site.name)


def site_from_proto(value: int, field: str) -> Site | None:
    if value == common_pb2.SITE_UNSPECIFIED:
        return None
    return Site[_enum_name(common_pb2.Site, value, field).removeprefix("SITE_")]


def state_to_proto(state: RequestState) -> int:
    return request_pb2.RequestState.Value("REQUEST_STATE_" + state.name)


def state_from_proto(value: int, field: str = "state") -> RequestState:
    if value == request_pb2.REQUEST_STATE_UNSPECIFIED:
        raise DomainError(field, "is required")
    return RequestState[_enum_name(request_pb2.RequestState, value, field).removeprefix("REQUEST_STATE_")]


def timestamp(when: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc))
    return ts


# ---- capabilities and centres --------------------------------------------------------------------------

def _text(t) -> common_pb2.LocalizedText:
    return common_pb2.LocalizedText(zh=t.zh, en=t.en)


def capability_to_proto(cap: Capability) -> capability_pb2.Capability:
    return capability_pb2.Capability(
        centre_id=cap.centre_id, capability_id=cap.capability_id, version=cap.version,
        service_kind=service_kind_to_proto(cap.service_kind), quantity_kind=cap.quantity_kind,
        measurand=_text(cap.measurand), instrument_type=_text(cap.instrument_type),
        method_code=cap.method_code,
        bands=[capability_pb2.RangeBand(
            min=b.min, max=b.max, unit=b.unit,
            uncertainty=capability_pb2.ExpandedUncertainty(
                relative=b.uncertainty.relative, absolute=b.uncertainty.absolute,
                absolute_unit=b.uncertainty.absolute_unit, coverage_factor=b.uncertainty.k,
                coverage_probability=b.uncertainty.coverage_probability))
            for b in cap.bands],
        conditions=cap.conditions, site=site_to_proto(cap.site), lead_time_days=cap.lead_time_days,
        price_cny=cap.price_cny, capacity_per_month=cap.capacity_per_month, basis=cap.basis,
        keywords=list(cap.keywords))


def capability_dict_from_proto(msg: capability_pb2.Capability, field: str = "capability") -> dict:
    """The seed/record dict form of a wire capability (validated later by records.capability_from_dict)."""
    kind = service_kind_from_proto(msg.service_kind, f"{field}.service_kind")
    site = site_from_proto(msg.site, f"{field}.site")
    bands = []
    for b in msg.bands:
        u = b.uncertainty
        unc: dict = {"k": u.coverage_factor or 2.0, "p": u.coverage_probability or 0.95}
        if u.relative:
            unc["relative"] = u.relative
        if u.absolute or u.absolute_unit:
            unc["absolute"] = f"{_num(u.absolute)} {u.absolute_unit}".strip()
        bands.append({"range": [b.min, b.max], "unit": b.unit, "uncertainty": unc})
    return {
        "id": msg.capability_id,
        "service_kind": kind.value if kind else "",
        "quantity_kind": msg.quantity_kind,
        "measurand": {"zh": msg.measurand.zh, "en": msg.measurand.en},
        "instrument_type": {"zh": msg.instrument_type.zh, "en": msg.instrument_type.en},
        "method": msg.method_code,
        "bands": bands,
        "conditions": msg.conditions,
        "site": (site or Site.LAB).value,
        "lead_time_days": msg.lead_time_days,
        "price_cny": msg.price_cny,
        "capacity_per_month": msg.capacity_per_month,
        "basis": msg.basis,
        "keywords": list(msg.keywords),
    }


def capability_from_proto(msg: capability_pb2.Capability, centre_id: str, version: int,
                          field: str = "capability") -> Capability:
    """A wire Capability -> a validated domain Capability, straight from the message
    (``metrofed.bus.codec.capability_from_message``): the same result, and the same DomainError naming
    ``{field}.…``, as :func:`capability_from_proto_via_dict`, which it falls back to on anything doubtful."""
    from metrofed.bus.codec import capability_from_message  # the codec imports this module

    return capability_from_message(msg, centre_id, version, field)


def capability_from_proto_via_dict(msg: capability_pb2.Capability, centre_id: str, version: int,
                                   field: str = "capability") -> Capability:
    """The reference decoding: through the seed-record dict form and ``records.capability_from_dict``."""
    try:
        return records.capability_from_dict(centre_id, capability_dict_from_proto(msg, field), version=version)
    except DomainError as exc:
        if exc.field.startswith(field):
            raise
        raise DomainError(f"{field}.{exc.field}", exc.reason) from None


def centre_to_proto(p: CentreProfile, endpoint: str = "") -> capability_pb2.CentreProfile:
    return capability_pb2.CentreProfile(
        centre_id=p.centre_id, name=_text(p.name), host_institution=p.host_institution,
        city=_text(p.city), province=_text(p.province), region=p.region,
        industries=list(p.industries), accreditations=list(p.accreditations),
        authorisations=capability_pb2.LegalAuthorisations(
            verification=sorted(p.authorisations.verification),
            type_evaluation=sorted(p.authorisations.type_evaluation)),
        auto_accept=p.auto_accept, grpc_endpoint=endpoint, response_sla_seconds=p.response_sla_seconds)


def centre_from_proto(msg: capability_pb2.CentreProfile, field: str = "profile") -> CentreProfile:
    d = {
        "id": msg.centre_id,
        "name": {"zh": msg.name.zh, "en": msg.name.en},
        "host_institution": msg.host_institution,
        "city": {"zh": msg.city.zh, "en": msg.city.en},
        "province": {"zh": msg.province.zh, "en": msg.province.en},
        "region": msg.region or "长三角",
        "industries": list(msg.industries),
        "accreditations": list(msg.accreditations),
        "authorisations": {"verification": list(msg.authorisations.verification),
                           "type_evaluation": list(msg.authorisations.type_evaluation)},
        "auto_accept": msg.auto_accept,
        "response_sla_seconds": msg.response_sla_seconds,
    }
    try:
        return records.centre_from_dict(d)
    except DomainError as exc:
        raise DomainError(f"{field}.{exc.field}", exc.reason) from None


# ---- needs and routing decisions ------------------------------------------------------------------------

def need_from_proto(msg, today=None):
    """A wire Need → a validated domain Need (DomainError names need.* fields)."""
    from metrofed.domain.need import DecisionRuleKind, ToleranceKind, need_from_fields
    from metrofed.v1 import request_pb2 as rq

    tol_kind = None
    if msg.tolerance.kind != rq.TOLERANCE_KIND_UNSPECIFIED:
        tol_kind = ToleranceKind[_enum_name(rq.ToleranceKind, msg.tolerance.kind, "need.tolerance.kind")
                                 .removeprefix("TOLERANCE_KIND_")]
    rule = None
    if msg.decision_rule.kind != rq.DECISION_RULE_KIND_UNSPECIFIED:
        rule = DecisionRuleKind[_enum_name(rq.DecisionRuleKind, msg.decision_rule.kind, "need.decision_rule.kind")
                                .removeprefix("DECISION_RULE_KIND_")]
    return need_from_fields(
        measurand=msg.measurand, instrument_type=msg.instrument_type,
        quantity_kind=msg.quantity_kind or None,
        range_min=msg.range.min if msg.HasField("range") else None,
        range_max=msg.range.max if msg.HasField("range") else None,
        unit=msg.range.unit,
        tolerance_value=msg.tolerance.value if msg.HasField("tolerance") else None,
        tolerance_unit=msg.tolerance.unit or None, tolerance_kind=tol_kind,
        service_kind=service_kind_from_proto(msg.service_kind, "need.service_kind"),
        decision_rule=rule, min_ratio=msg.decision_rule.min_ratio or None,
        city=msg.city, province=msg.province, deadline=msg.deadline or None,
        quantity=msg.quantity or 1, site=site_from_proto(msg.site, "need.site"),
        legal_use=msg.legal_use if msg.HasField("legal_use") else None, today=today)


def decision_to_proto(decision, max_rejected: int = 200, max_candidates: int = 50):
    from metrofed.v1 import request_pb2 as rq

    return rq.RoutingDecision(
        service_kind=service_kind_to_proto(decision.service_kind),
        legal_note=decision.legal_note,
        candidates=[rq.Candidate(
            centre_id=c.centre_id, capability_id=c.capability_id, capability_version=c.capability_version,
            worst_point=c.worst_point, unit=c.worst_point_unit, uncertainty_at_worst=c.u_at_worst,
            tolerance_at_worst=c.tolerance_at_worst, tur=c.tur, score=c.score, explanation=c.explanation)
            for c in decision.candidates[:max_candidates]],
        candidates_total=decision.candidates_total or len(decision.candidates),
        rejected=[rq.Rejection(centre_id=r.centre_id, capability_id=r.capability_id,
                               reason_code=str(getattr(r.reason_code, "value", r.reason_code)), reason=r.reason)
                  for r in decision.rejected[:max_rejected]],
        rejected_total=decision.rejected_total,
        rejected_by_reason={str(getattr(c, "value", c)): n for c, n in decision.rejected_by_reason.items()},
        rejected_centres=[rq.CentreRejection(centre_id=r.centre_id, rejected=r.rejected,
                                             by_reason={str(getattr(c, "value", c)): n for c, n in r.by_reason.items()})
                          for r in decision.rejected_centres],
        split=[rq.SplitPart(centre_id=p.centre_id, capability_id=p.capability_id, min=p.range_min, max=p.range_max,
                            unit=p.unit) for p in decision.split])
