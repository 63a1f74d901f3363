"""Mandatory verification (强制检定): which instrument types the law says must be *verified* (检定,
under a JJG regulation, by an authorised body) rather than merely calibrated.

The state catalogue of working measuring instruments under mandatory verification covers instruments
used for trade settlement (贸易结算), safety protection (安全防护), medical and health care (医疗卫生)
and environmental monitoring (环境监测). The table is deliberately small; codes DOMAIN.md marks
[unverified] are marked so here and must be checked before they become data shown as law.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from metrofed.domain.capability import Text

__all__ = ["LegalInstrument", "MANDATORY_VERIFICATION", "find_instrument", "verification_required",
           "normalise_code", "codes_match"]


@dataclass(frozen=True, slots=True)
class LegalInstrument:
    key: str
    name: Text
    regulation: str  # the JJG verification regulation
    keywords: tuple[str, ...]  # lower-case zh/en words that identify the instrument in a need
    # True: the instrument is in the catalogue because of its use (a pressure gauge only when it protects
    # safety); an unknown use then does *not* make verification required. False: the instrument exists
    # for trade settlement (fuel dispenser, utility meter, charger, taximeter): unknown use -> required.
    use_dependent: bool = False
    purpose: str = "trade settlement"
    verified_code: bool = True  # False where DOMAIN.md marks the code [unverified]


MANDATORY_VERIFICATION: tuple[LegalInstrument, ...] = (
    LegalInstrument(
        "ev-ac-charger", Text("电动汽车交流充电桩", "EV AC charging point"), "JJG 1148-2022",
        ("交流充电桩", "交流充电机", "ac charger", "ac charging", "ac ev charger"),
    ),
    LegalInstrument(
        "ev-dc-charger", Text("电动汽车非车载充电机（直流充电桩）", "EV DC off-board charger"), "JJG 1149-2022",
        ("直流充电桩", "直流充电机", "非车载充电机", "dc charger", "dc charging", "dc fast charger", "dc ev charger"),
    ),
    LegalInstrument(
        # JJG 443 (燃油加油机) edition year not confirmed [unverified]
        "fuel-dispenser", Text("燃油加油机", "fuel dispenser"), "JJG 443-2023",
        ("加油机", "fuel dispenser", "petrol pump", "fuel pump"), verified_code=False,
    ),
    LegalInstrument(
        # JJG 162-2019 [unverified] (DOMAIN.md)
        "water-meter", Text("水表", "water meter"), "JJG 162-2019",
        ("水表", "water meter"), verified_code=False,
    ),
    LegalInstrument(
        # JJG 577-2012 [unverified] (DOMAIN.md)
        "gas-meter", Text("膜式燃气表", "diaphragm gas meter"), "JJG 577-2012",
        ("燃气表", "煤气表", "gas meter"), verified_code=False,
    ),
    LegalInstrument(
        # JJG 596-2012 (电子式交流电能表) — not in DOMAIN.md at all [unverified]
        "electricity-meter", Text("电能表", "electricity meter"), "JJG 596-2012",
        ("电能表", "电表", "electricity meter", "energy meter", "watt-hour meter", "kwh meter"), verified_code=False,
    ),
    LegalInstrument(
        # JJG 517 (出租汽车计价器) edition year not confirmed [unverified]
        "taximeter", Text("出租汽车计价器", "taximeter"), "JJG 517-2016",
        ("计价器", "taximeter", "taxi meter"), verified_code=False,
    ),
    LegalInstrument(
        "pressure-gauge-safety", Text("压力表（安全防护）", "pressure gauge used for safety"), "JJG 52-2013",
        ("压力表", "真空表", "压力真空表", "pressure gauge", "vacuum gauge", "manometer"),
        use_dependent=True, purpose="safety protection",
    ),
)


_CODE_HEAD = re.compile(r"^([A-Z/]+)\s*(?=\d)")


@functools.lru_cache(maxsize=4096)
def normalise_code(code: str) -> str:
    """``"jjg  52—2013"`` -> ``"JJG 52-2013"``: upper case, one space, ASCII hyphen.

    Pure and cached: a federation has a few hundred distinct method codes, and the router asks for the
    same ones for every candidate (rule 5)."""
    s = " ".join((code or "").replace("—", "-").replace("–", "-").replace("－", "-").upper().split())
    return _CODE_HEAD.sub(r"\1 ", s)


def _base(code: str) -> str:
    c = normalise_code(code)
    head, sep, year = c.rpartition("-")
    return head if sep and year.isdigit() and len(year) == 4 else c


@functools.lru_cache(maxsize=65536)
def codes_match(a: str, b: str) -> bool:
    """Same regulation: identical, or one of them states no edition year ("JJG 52" ~ "JJG 52-2013").

    Pure and cached on the pair (capability code x authorised code: a few thousand pairs at most)."""
    na, nb = normalise_code(a), normalise_code(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    ba, bb = _base(na), _base(nb)
    return ba == bb and (ba == na or bb == nb)


def find_instrument(text: str) -> LegalInstrument | None:
    """The catalogue entry a free-text instrument type names, if any (longest keyword wins)."""
    t = (text or "").lower()
    if not t:
        return None
    best: tuple[int, LegalInstrument] | None = None
    for inst in MANDATORY_VERIFICATION:
        for kw in inst.keywords:
            if kw in t and (best is None or len(kw) > best[0]):
                best = (len(kw), inst)
    return best[1] if best else None


def verification_required(need) -> tuple[bool, str | None, str]:
    """(required, regulation code or None, reason) for a :class:`~metrofed.domain.need.Need`.

    Required when the instrument is in the table and its use is legal (``need.legal_use`` true), or
    when the use is unknown and the instrument exists for trade settlement (chargers, meters). A pressure
    gauge needs verification only when declared as used for safety (JJG 52-2013).
    """
    inst = find_instrument(f"{need.instrument_type} {need.measurand}")
    if inst is None:
        return False, None, "not in the mandatory-verification table: calibration (校准) is the usual route"
    name = f"{inst.name.zh} ({inst.name.en})"
    if need.legal_use is False:
        return (False, inst.regulation,
                f"{name} not used for trade settlement, safety, health or environment: verification "
                f"({inst.regulation}) is not mandatory, calibration is acceptable")
    if need.legal_use is None and inst.use_dependent:
        return (False, inst.regulation,
                f"{name}: verification under {inst.regulation} is mandatory only when used for "
                f"{inst.purpose}; say so if it is")
    why = "declared for legal use" if need.legal_use else f"used for {inst.purpose}"
    return (True, inst.regulation,
            f"{name} {why}: mandatory verification (强制检定) under {inst.regulation} by an authorised body")
