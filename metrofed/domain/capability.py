"""Centres and their capabilities (CMCs), as the federation reasons about them.

Pure domain: no grpc, kafka or sqlalchemy here. Shaped after BIPM KCDB CMC records and accreditation
scopes (CNAS-GL025, ILAC-P14), but with the uncertainty kept as *typed data* per range band, so that
U(x) = a*|x| + b can be evaluated at any point of a requested range (DOMAIN.md).

Values are plain floats with unit strings, and every band also carries its limits converted once to SI
base units (``lo_si``/``hi_si``): the router compares millions of bands and cannot afford pint there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class DomainError(ValueError):
    """Bad input, with the offending field named (mapped to INVALID_ARGUMENT at the edges)."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


class ServiceKind(str, enum.Enum):
    VERIFICATION = "verification"  # 检定: legal, pass/fail, under a JJG regulation
    CALIBRATION = "calibration"  # 校准
    TESTING = "testing"  # 检测
    TYPE_EVALUATION = "type_evaluation"  # 型式评价
    CONSULTATION = "consultation"
    LAB_OPENING = "lab_opening"
    INSTRUMENT_SHARING = "instrument_sharing"
    STANDARD_SETUP = "standard_setup"  # 计量标准建标 support (JJF 1033)
    MMS_SUPPORT = "mms_support"  # 测量管理体系 (GB/T 19022 / ISO 10012)


SERVICE_KIND_ZH = {
    ServiceKind.VERIFICATION: "检定",
    ServiceKind.CALIBRATION: "校准",
    ServiceKind.TESTING: "检测",
    ServiceKind.TYPE_EVALUATION: "型式评价",
    ServiceKind.CONSULTATION: "技术咨询",
    ServiceKind.LAB_OPENING: "实验室开放",
    ServiceKind.INSTRUMENT_SHARING: "仪器共享",
    ServiceKind.STANDARD_SETUP: "计量标准建标",
    ServiceKind.MMS_SUPPORT: "测量管理体系",
}

# Service kinds whose capability has a measuring range and an uncertainty.
MEASURING_KINDS = frozenset(
    {ServiceKind.VERIFICATION, ServiceKind.CALIBRATION, ServiceKind.TESTING, ServiceKind.TYPE_EVALUATION}
)


class Site(str, enum.Enum):
    LAB = "lab"
    ON_SITE = "on_site"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Text:
    """A name in Chinese and English; either may be empty, not both."""

    zh: str = ""
    en: str = ""

    def __str__(self) -> str:
        return self.zh if not self.en else (f"{self.zh} ({self.en})" if self.zh else self.en)


@dataclass(frozen=True, slots=True)
class ExpandedUncertainty:
    """U(x) = relative * |x| + absolute, at coverage factor k and coverage probability p.

    ``relative`` is a plain fraction (0.0005 for 0.05 %); ``absolute`` is in ``absolute_unit``, which for
    temperatures is a *difference* unit (delta_degC, kelvin), never an offset unit (DOMAIN.md).
    """

    relative: float = 0.0
    absolute: float = 0.0
    absolute_unit: str = ""
    k: float = 2.0
    coverage_probability: float = 0.95
    # ``absolute`` converted to SI base units once, by the parser (see units.py).
    absolute_si: float = 0.0


@dataclass(frozen=True, slots=True)
class RangeBand:
    """One band of a measuring range, with its own uncertainty statement."""

    min: float
    max: float
    unit: str
    uncertainty: ExpandedUncertainty
    # Limits in SI base units, computed once when the band is built (see units.py).
    lo_si: float = 0.0
    hi_si: float = 0.0


@dataclass(frozen=True, slots=True)
class Capability:
    """One published CMC of one centre. ``version`` grows with each revision."""

    centre_id: str
    capability_id: str
    version: int
    service_kind: ServiceKind
    quantity_kind: str  # "pressure", "temperature", "torque", "energy", ... (N*m torque != J energy)
    measurand: Text
    instrument_type: Text
    method_code: str  # "JJG 52-2013", "JJF 1637-2017", "GB/T ...", "ISO ...", "in-house: ..."
    bands: tuple[RangeBand, ...] = ()
    conditions: str = ""
    site: Site = Site.LAB
    lead_time_days: int = 0
    price_cny: float = 0.0
    capacity_per_month: int = 0  # items the centre can take per month for this capability
    basis: str = ""  # the accreditation or legal authorisation it rests on ("CNAS L0123", "JJG 52-2013")
    keywords: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Catalog / Kafka key: unique across the federation."""
        return f"{self.centre_id}/{self.capability_id}"


@dataclass(frozen=True, slots=True)
class LegalAuthorisations:
    """What the law lets a centre do beyond calibration: regulation codes, e.g. "JJG 52-2013"."""

    verification: frozenset[str] = frozenset()  # 检定 it is authorised to perform
    type_evaluation: frozenset[str] = frozenset()  # 型式评价 outlines it is authorised for


@dataclass(frozen=True, slots=True)
class CentreProfile:
    centre_id: str
    name: Text
    host_institution: str
    city: Text
    province: Text
    region: str = "长三角"
    industries: tuple[str, ...] = ()
    accreditations: tuple[str, ...] = ()  # "CNAS L0123", "CMA 1234..."
    authorisations: LegalAuthorisations = field(default_factory=LegalAuthorisations)
    # When true the centre's service accepts routed requests it has capacity for without an operator.
    auto_accept: bool = True
    # Seconds after routing by which the centre promises its first answer; 0: the gateway's default
    # applies (docs/failover.md).
    response_sla_seconds: int = 0
