"""A minimal digital calibration certificate (PTB DCC 3.1.2 shape, ../shared/reference/dcc.xsd).

Only the administrative skeleton for now: identifier, laboratory, customer, dates and the capability
performed. Measurement results (D-SI quantities with expanded uncertainty) arrive with the issue that
lets centres report them; until then the centre's operator may pass a full DCC document instead.
"""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree as ET

DCC_NS = "https://ptb.de/dcc"
SI_NS = "https://ptb.de/si"


def minimal_certificate(*, certificate_id: str, laboratory: str, customer: str, capability_id: str,
                        issued: dt.datetime) -> str:
    ET.register_namespace("dcc", DCC_NS)
    ET.register_namespace("si", SI_NS)

    def el(parent, tag, text=None, **attrs):
        node = ET.SubElement(parent, f"{{{DCC_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    root = ET.Element(f"{{{DCC_NS}}}digitalCalibrationCertificate", {"schemaVersion": "3.1.2"})
    admin = el(root, "administrativeData")
    software = el(el(admin, "dccSoftware"), "software")
    el(el(software, "name"), "content", "metrofed")
    el(software, "release", "0.1")
    core = el(admin, "coreData")
    el(core, "countryCodeISO3166_1", "CN")
    el(core, "usedLangCodeISO639_1", "zh")
    el(core, "mandatoryLangCodeISO639_1", "zh")
    el(core, "uniqueIdentifier", certificate_id)
    day = issued.date().isoformat()
    el(core, "beginPerformanceDate", day)
    el(core, "endPerformanceDate", day)
    el(core, "performanceLocation", "laboratory")
    items = el(admin, "items")
    item = el(items, "item")
    el(el(item, "name"), "content", capability_id)
    lab = el(admin, "calibrationLaboratory")
    el(el(el(lab, "contact"), "name"), "content", laboratory)
    el(el(el(admin, "respPersons"), "respPerson"), "person")
    el(el(el(admin, "customer"), "name"), "content", customer)
    results = el(root, "measurementResults")
    result = el(results, "measurementResult")
    el(el(result, "name"), "content", capability_id)
    return ET.tostring(root, encoding="unicode")
