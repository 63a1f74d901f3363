"""A small fixed catalog (9 centres of the Yangtze River Delta, ~35 capabilities) and a table of realistic
enterprise requests with the routing a metrologist would expect. Written here on purpose: the seed files
in seed/centres/ are someone else's and may change.

Values are plausible (DOMAIN.md 'Plausible capabilities'), not quoted from any centre's scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from metrofed.domain.records import capability_from_dict, centre_from_dict

TODAY = dt.date(2026, 11, 27)


def _centre(cid, zh, city_zh, city_en, prov_zh, prov_en, verification=(), type_evaluation=()):
    return centre_from_dict({
        "id": cid, "name": {"zh": zh}, "host_institution": "", "city": {"zh": city_zh, "en": city_en},
        "province": {"zh": prov_zh, "en": prov_en},
        "authorisations": {"verification": list(verification), "type_evaluation": list(type_evaluation)},
    })


CENTRES = {c.centre_id: c for c in (
    _centre("sh-icv", "国家智能网联汽车产业计量测试中心", "上海", "Shanghai", "上海", "Shanghai",
            verification=["JJG 52-2013"]),
    _centre("sh-h2", "上海市氢燃料电池汽车产业计量测试中心", "上海", "Shanghai", "上海", "Shanghai"),
    _centre("wx-iot", "国家物联网感知装备产业计量测试中心", "无锡", "Wuxi", "江苏", "Jiangsu"),
    _centre("cz-robot", "国家智能工业机器人产业计量测试中心", "常州", "Changzhou", "江苏", "Jiangsu",
            verification=["JJG 707-2014"]),
    _centre("hz-oilgas", "国家海洋油气资源开发装备产业计量测试中心", "杭州", "Hangzhou", "浙江", "Zhejiang",
            verification=["JJG 52-2013", "JJG 162-2019", "JJG 577-2012"],
            type_evaluation=["JJG 162-2019", "JJG 577-2012"]),
    _centre("hf-nev", "国家新能源汽车储供能产业计量测试中心", "合肥", "Hefei", "安徽", "Anhui",
            verification=["JJG 1148-2022", "JJG 1149-2022"]),
    _centre("nb-mag", "国家磁性材料产业计量测试中心", "宁波", "Ningbo", "浙江", "Zhejiang"),
    _centre("yc-wind", "江苏省海上风电装备产业计量测试中心", "盐城", "Yancheng", "江苏", "Jiangsu"),
    _centre("wh-robot", "安徽省机器人及智能装备产业计量测试中心", "芜湖", "Wuhu", "安徽", "Anhui"),
)}


def _b(lo, hi, unit, rel=None, abs_=None, k=2, p=0.95):
    u: dict[str, Any] = {"k": k, "p": p}
    if rel is not None:
        u["relative"] = rel
    if abs_ is not None:
        u["absolute"] = abs_
    return {"range": [lo, hi], "unit": unit, "uncertainty": u}


def _cap(centre, cid, kind, qk, instrument, method, bands, site="lab", lead=5, price=300, cap=100):
    return capability_from_dict(centre, {
        "id": cid, "service_kind": kind, "quantity_kind": qk, "measurand": {"en": qk},
        "instrument_type": instrument, "method": method, "bands": bands, "site": site,
        "lead_time_days": lead, "price_cny": price, "capacity_per_month": cap,
    })


CAPS = [
    # ---- pressure
    _cap("sh-icv", "pt-cal", "calibration", "pressure", "压力变送器", "JJF 1xxx-20xx",
         [_b(0, 25, "MPa", "0.02 %", "2 Pa"), _b(25, 100, "MPa", "0.05 %")], lead=5, price=300, cap=200),
    _cap("wx-iot", "pt-mems-cal", "calibration", "pressure", "MEMS压力传感器", "in-house: WX-P-01",
         [_b(0, 10, "兆帕", "0.01 %", "1 Pa")], lead=3, price=250, cap=100),
    _cap("sh-h2", "pt-hp-cal", "calibration", "pressure", "高压压力变送器", "JJF 1xxx-20xx",
         [_b(10, 160, "MPa", "0.05 %", "0.5 kPa")], lead=7, price=400, cap=50),
    _cap("sh-h2", "pt-gap-cal", "calibration", "pressure", "压力传感器", "in-house: H2-P-02",
         [_b(0, 10, "MPa", "0.05 %"), _b(12, 60, "MPa", "0.05 %")], lead=6, price=350, cap=50),
    _cap("hz-oilgas", "gauge-cal", "calibration", "pressure", "压力表", "JJF 1xxx-20xx",
         [_b(-0.1, 2.5, "MPa", "0.05 %", "0.2 kPa")], lead=3, price=80, cap=300),
    _cap("sh-icv", "gauge-ver", "verification", "pressure", "一般压力表", "JJG 52-2013",
         [_b(-0.1, 60, "MPa", "0.02 %", "1 kPa")], site="both", lead=3, price=60, cap=500),
    _cap("hz-oilgas", "gauge-ver", "verification", "pressure", "一般压力表", "JJG 52-2013",
         [_b(-0.1, 60, "MPa", "0.02 %", "2 kPa")], lead=2, price=50, cap=1000),
    _cap("yc-wind", "gauge-ver", "verification", "pressure", "一般压力表", "JJG 52-2013",
         [_b(0, 60, "MPa", "0.02 %", "1 kPa")], lead=2, price=40, cap=500),  # not authorised!
    # ---- temperature
    _cap("sh-icv", "tc-noble-cal", "calibration", "temperature",
         {"zh": "S/B 型贵金属热电偶", "en": "type S/B noble-metal thermocouple"}, "JJG 141-2013",
         [_b(300, 1500, "℃", abs_="1.2 ℃")], lead=10, price=900, cap=20),
    _cap("nb-mag", "tc-cal", "calibration", "temperature", "K型热电偶", "JJF 1637-2017",
         [_b(300, 1200, "℃", abs_="1.0 ℃")], lead=7, price=500, cap=40),
    _cap("sh-icv", "tc-cal", "calibration", "temperature", "热电偶", "JJF 1637-2017",
         [_b(300, 1000, "°C", abs_="0.6 K"), _b(1000, 1500, "°C", abs_="1.5 delta_degC")], lead=10, price=600, cap=30),
    _cap("hz-oilgas", "tc-cal", "calibration", "temperature", "热电偶", "JJF 1637-2017",
         [_b(300, 1200, "摄氏度", abs_="2.0 ℃")], lead=3, price=300, cap=60),
    _cap("wx-iot", "prt-cal", "calibration", "temperature", "铂电阻温度计", "JJF 1xxx-20xx",
         [_b(-40, 300, "℃", abs_="0.05 K")], lead=5, price=400, cap=60),
    # ---- torque (and an energy capability that must never match torque)
    _cap("cz-robot", "torque-wrench-cal", "calibration", "torque", "扭矩扳手", "JJF 1xxx-20xx",
         [_b(1, 2000, "N·m", "0.2 %")], site="both", lead=4, price=150, cap=300),
    _cap("wh-robot", "torque-onsite", "calibration", "torque", "扭矩扳手", "JJF 1xxx-20xx",
         [_b(2, 500, "牛·米", "0.24 %")], site="on_site", lead=2, price=200, cap=100),
    _cap("yc-wind", "torque-large", "calibration", "torque", "风电螺栓拉伸扭矩扳手", "JJF 1xxx-20xx",
         [_b(1, 500, "kN·m", "0.1 %")], lead=15, price=3000, cap=10),
    _cap("cz-robot", "torque-wrench-ver", "verification", "torque", "扭矩扳子", "JJG 707-2014",
         [_b(1, 2000, "N·m", "0.2 %")], lead=4, price=120, cap=300),
    # same quantity, range and TUR as a torque-wrench bench, but a torque-transducer standard (the demo's bug)
    _cap("cz-robot", "joint-torque-sensor-cal", "calibration", "torque",
         {"zh": "机器人关节扭矩传感器", "en": "robot joint torque sensor"}, "in-house: 关节扭矩传感器校准方法",
         [_b(0.1, 1000, "N·m", "0.05 %")], lead=5, price=300, cap=100),
    _cap("hf-nev", "energy-cal", "calibration", "energy", "储能量测", "in-house: HF-E-01",
         [_b(0, 1e6, "J", "0.1 %")], lead=5, price=500, cap=50),
    # ---- EV charging (current as the routed quantity)
    _cap("hf-nev", "dc-charger-ver", "verification", "current", "直流充电桩", "JJG 1149-2022",
         [_b(0, 250, "A", "0.05 %", "0.01 A")], site="on_site", lead=5, price=800, cap=60),
    _cap("hf-nev", "ac-charger-ver", "verification", "current", "交流充电桩", "JJG 1148-2022",
         [_b(0, 63, "A", "0.05 %", "0.005 A")], site="on_site", lead=5, price=500, cap=80),
    _cap("sh-icv", "dc-charger-ver", "verification", "current", "直流充电桩", "JJG 1149-2022",
         [_b(0, 250, "A", "0.05 %", "0.01 A")], site="on_site", lead=3, price=700, cap=60),  # not authorised
    _cap("sh-icv", "dc-current-cal", "calibration", "current", "直流电流表", "JJF 1xxx-20xx",
         [_b(0, 300, "A", "0.02 %", "0.005 A")], lead=4, price=400, cap=100),
    # ---- water and gas meters (flow)
    _cap("hz-oilgas", "water-meter-te", "type_evaluation", "volume_flow", "水表", "JJG 162-2019",
         [_b(0.01, 500, "m³/h", "0.2 %")], lead=60, price=20000, cap=5),
    _cap("sh-h2", "water-meter-te", "type_evaluation", "volume_flow", "水表", "JJG 162-2019",
         [_b(0.01, 100, "m³/h", "0.2 %")], lead=45, price=15000, cap=5),  # not authorised
    _cap("hz-oilgas", "water-meter-ver", "verification", "volume_flow", "水表", "JJG 162-2019",
         [_b(0.01, 500, "m³/h", "0.2 %")], lead=5, price=60, cap=2000),
    _cap("hz-oilgas", "gas-meter-te", "type_evaluation", "volume_flow", "膜式燃气表", "JJG 577-2012",
         [_b(0.016, 160, "m³/h", "0.3 %")], lead=60, price=18000, cap=5),
    # ---- length
    _cap("cz-robot", "cmm-cal", "calibration", "length", "三坐标测量机", "JJF 1064-2010",
         [_b(0, 2000, "mm", "1 ppm", "0.3 µm")], site="on_site", lead=10, price=5000, cap=8),
    _cap("nb-mag", "gauge-block-cal", "calibration", "length", "量块", "JJF 1xxx-20xx",
         [_b(0.5, 100, "mm", "0.5 ppm", "0.05 μm")], lead=5, price=100, cap=200),
    # ---- humidity
    _cap("wx-iot", "humidity-cal", "calibration", "relative_humidity", "温湿度计", "JJF 1xxx-20xx",
         [_b(10, 95, "%RH", abs_="0.8 %RH")], lead=5, price=300, cap=80),
    _cap("sh-icv", "humidity-cal", "calibration", "relative_humidity", "温湿度计", "JJF 1xxx-20xx",
         [_b(5, 95, "%RH", abs_="1.5 %RH")], lead=4, price=250, cap=80),
    # ---- rotational speed, angular velocity, acceleration
    _cap("cz-robot", "tacho-cal", "calibration", "rotational_speed", "转速表", "JJG 105-2019",
         [_b(1, 100000, "r/min", "0.01 %")], lead=5, price=200, cap=100),
    _cap("wh-robot", "tacho-cal", "calibration", "rotational_speed", "转速表", "JJG 105-2019",
         [_b(10, 20000, "转/分", "0.05 %")], site="both", lead=3, price=100, cap=100),
    _cap("wx-iot", "gyro-cal", "calibration", "angular_velocity", "MEMS陀螺仪", "in-house: WX-G-01",
         [_b(-2000, 2000, "°/s", "0.05 %", "0.01 °/s")], lead=7, price=600, cap=40),
    _cap("wx-iot", "accel-cal", "calibration", "acceleration", "MEMS加速度计", "in-house: WX-A-01",
         [_b(-50, 50, "gn", "0.1 %", "0.001 gn")], lead=7, price=600, cap=40),
    # ---- magnetism
    _cap("nb-mag", "flux-cal", "calibration", "magnetic_flux_density", "特斯拉计", "JJF 1xxx-20xx",
         [_b(0.001, 2, "T", "0.2 %")], lead=5, price=300, cap=50),
]


@dataclass(frozen=True)
class Case:
    id: str
    rule: str  # the rule the row exercises
    need: dict[str, Any]
    eligible: list[str]  # "centre/capability", in the expected order when ``ordered``
    ordered: bool = True
    rejected: dict[str, str] = field(default_factory=dict)  # "centre/capability" -> reason code
    split: list[tuple[str, float, float]] = field(default_factory=list)  # (centre/capability, lo, hi)
    service_kind: str | None = None
    legal_note_contains: str | None = None
    load: dict[str, float] = field(default_factory=dict)
    worst_point: float | None = None  # expected worst point (need unit) of the first candidate
    band_text: str | None = None  # a band the first candidate's explanation must name


def need(**kw):
    return kw


PT = dict(instrument_type="压力变送器", unit="MPa")
GAUGE = dict(instrument_type="一般压力表", unit="MPa")
TW = dict(instrument_type="扭矩扳手 torque wrench", unit="N·m")

CASES: list[Case] = [
    # ------------------------------------------------------------------ pressure
    Case("pt-0-25-0.1fs", "TUR ≥ 4:1 at the worst point (25 MPa), ANSI/NCSL Z540.3",
         need(**PT, range_min=0, range_max=25, tolerance_value=0.1, tolerance_unit="%FS", city="上海"),
         ["sh-icv/pt-cal"], rejected={"wx-iot/pt-mems-cal": "RANGE_NOT_COVERED", "sh-h2/pt-hp-cal": "RANGE_NOT_COVERED",
                                      "hz-oilgas/gauge-ver": "SERVICE_KIND", "cz-robot/torque-wrench-cal": "QUANTITY_KIND"},
         service_kind="calibration", worst_point=25, band_text="band 0–25 MPa"),
    Case("pt-0-25-0.05fs", "TUR ≥ 4:1: 12.5 kPa / 5 kPa = 2.5 is inadequate; parts don't chain, so no split",
         need(**PT, range_min=0, range_max=25, tolerance_value=0.05, tolerance_unit="%FS"),
         [], rejected={"sh-icv/pt-cal": "UNCERTAINTY_INADEQUATE", "sh-h2/pt-hp-cal": "RANGE_NOT_COVERED"}),
    Case("pt-1-10-reading", "relative U against the value; % of reading worst at the low end (1 MPa)",
         need(**PT, range_min=1, range_max=10, tolerance_value=0.05, tolerance_unit="%", city="无锡", province="江苏"),
         ["wx-iot/pt-mems-cal"], rejected={"sh-icv/pt-cal": "UNCERTAINTY_INADEQUATE",
                                           "sh-h2/pt-gap-cal": "UNCERTAINTY_INADEQUATE",
                                           "hz-oilgas/gauge-cal": "INSTRUMENT_TYPE"},
         worst_point=1, band_text="band 0–10 MPa"),
    Case("pt-1-10-jjf1094", "JJF 1094: U95 ≤ MPE/3 (ratio 3.47 passes where 4:1 would not)",
         need(**PT, range_min=1, range_max=10, tolerance_value=0.035, tolerance_unit="%", decision_rule="jjf1094"),
         ["wx-iot/pt-mems-cal"], rejected={"sh-icv/pt-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("pt-1-10-tur-fails", "TUR ≥ 4:1: the same need under Z540.3 finds nobody",
         need(**PT, range_min=1, range_max=10, tolerance_value=0.035, tolerance_unit="%"),
         [], rejected={"wx-iot/pt-mems-cal": "UNCERTAINTY_INADEQUATE", "sh-icv/pt-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("pt-0-10-reading-floor", "% of reading evaluated from 10 % of full scale when the range starts at 0",
         need(**PT, range_min=0, range_max=10, tolerance_value=0.05, tolerance_unit="%"),
         ["wx-iot/pt-mems-cal"], rejected={"sh-icv/pt-cal": "UNCERTAINTY_INADEQUATE"}, worst_point=1),
    Case("pt-20-70-join", "adjacent bands join (0–25 + 25–100 MPa); worst point 70 MPa in the upper band",
         need(**PT, range_min=20, range_max=70, tolerance_value=0.25, tolerance_unit="%FS"),
         ["sh-icv/pt-cal", "sh-h2/pt-hp-cal"], rejected={"sh-h2/pt-gap-cal": "RANGE_NOT_COVERED"},
         worst_point=70, band_text="band 25–100 MPa"),
    Case("pt-5-20-gap", "bands with a gap (0–10, 12–60 MPa) do not join",
         need(**PT, range_min=5, range_max=20, tolerance_value=0.1, tolerance_unit="%FS"),
         ["sh-icv/pt-cal"], rejected={"sh-h2/pt-gap-cal": "RANGE_NOT_COVERED", "sh-h2/pt-hp-cal": "RANGE_NOT_COVERED"}),
    Case("pt-psi", "unit conversion: 0–3000 psi = 0–20.7 MPa",
         need(instrument_type="pressure transmitter", unit="psi", range_min=0, range_max=3000, tolerance_value=0.25,
              tolerance_unit="%FS"),
         ["sh-icv/pt-cal"], rejected={"wx-iot/pt-mems-cal": "RANGE_NOT_COVERED"}, band_text="band 0–25 MPa"),
    Case("pt-kpa-chinese", "Chinese units: 0–600 千帕 ±0.1 %FS",
         need(instrument_type="差压变送器", unit="千帕", range_min=0, range_max=600, tolerance_value=0.1,
              tolerance_unit="%FS"),
         ["wx-iot/pt-mems-cal", "sh-icv/pt-cal"],
         rejected={"hz-oilgas/gauge-cal": "INSTRUMENT_TYPE", "sh-h2/pt-gap-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("pt-0-160-split", "no single capability covers 0–160 MPa: greedy split into the fewest parts",
         need(**PT, range_min=0, range_max=160, tolerance_value=0.25, tolerance_unit="%FS"),
         [], rejected={"sh-icv/pt-cal": "RANGE_NOT_COVERED", "sh-h2/pt-hp-cal": "RANGE_NOT_COVERED"},
         split=[("sh-icv/pt-cal", 0, 100), ("sh-h2/pt-hp-cal", 100, 160)]),
    Case("pt-vacuum-no-split", "negative range (−0.1 MPa) is legal; a gauge bench is no split part for a "
         "transmitter (rule 2b INSTRUMENT_TYPE: JJG 52 ≠ JJG 882), so nobody reaches −0.1 MPa",
         need(**PT, range_min=-0.1, range_max=25, tolerance_value=0.1, tolerance_unit="%FS"),
         [], rejected={"hz-oilgas/gauge-cal": "INSTRUMENT_TYPE", "sh-icv/pt-cal": "RANGE_NOT_COVERED"}),
    Case("pt-0-300-nobody", "coverage gap: nobody covers 300 MPa, and no split reaches it",
         need(**PT, range_min=0, range_max=300, tolerance_value=0.1, tolerance_unit="%FS"),
         [], rejected={"sh-icv/pt-cal": "RANGE_NOT_COVERED", "sh-h2/pt-hp-cal": "RANGE_NOT_COVERED"}),
    # ------------------------------------------------------------------ pressure gauges, legal route
    Case("gauge-ver-hangzhou", "检定 only when authorised (JJG 52-2013); same city ranks first",
         need(**GAUGE, range_min=0, range_max=60, tolerance_value=1.6, tolerance_unit="class", service_kind="verification",
              legal_use=True, city="杭州", province="浙江"),
         ["hz-oilgas/gauge-ver", "sh-icv/gauge-ver"],
         rejected={"yc-wind/gauge-ver": "NOT_AUTHORISED", "sh-icv/pt-cal": "SERVICE_KIND"},
         service_kind="verification", legal_note_contains="JJG 52-2013", band_text="band -0.1–60 MPa"),
    Case("gauge-safety-not-sure", "'not sure' + safety use -> 检定 (强制检定, JJG 52-2013)",
         need(**GAUGE, range_min=0, range_max=1.6, tolerance_value=1.6, tolerance_unit="class", legal_use=True,
              city="上海"),
         ["sh-icv/gauge-ver", "hz-oilgas/gauge-ver"], rejected={"yc-wind/gauge-ver": "NOT_AUTHORISED"},
         service_kind="verification", legal_note_contains="强制检定"),
    Case("gauge-compound-vacuum", "accuracy class on the span (JJG 52); −0.1 MPa needs a band reaching it",
         need(instrument_type="压力真空表", unit="MPa", range_min=-0.1, range_max=0.9, tolerance_value=1.6,
              tolerance_unit="class", legal_use=True, province="浙江"),
         ["sh-icv/gauge-ver", "hz-oilgas/gauge-ver"], rejected={"yc-wind/gauge-ver": "RANGE_NOT_COVERED"},
         service_kind="verification"),  # TUR margin (13.6 vs 7.3) outweighs the same province
    Case("gauge-ver-on-site", "site fits: lab-only centre rejected for on-site 检定",
         need(**GAUGE, range_min=0, range_max=60, tolerance_value=1.6, tolerance_unit="class", legal_use=True,
              site="on_site"),
         ["sh-icv/gauge-ver"], rejected={"hz-oilgas/gauge-ver": "SITE", "yc-wind/gauge-ver": "NOT_AUTHORISED"}),
    Case("gauge-not-sure-no-legal-use", "'not sure' without legal use -> 校准 calibration; cheapest, fastest first",
         need(**GAUGE, range_min=0, range_max=1.6, tolerance_value=1.6, tolerance_unit="class"),
         ["hz-oilgas/gauge-cal"],
         rejected={"sh-icv/gauge-ver": "SERVICE_KIND", "sh-h2/pt-hp-cal": "INSTRUMENT_TYPE",
                   "wx-iot/pt-mems-cal": "INSTRUMENT_TYPE", "sh-icv/pt-cal": "INSTRUMENT_TYPE"},
         service_kind="calibration", legal_note_contains="safety protection"),
    Case("gauge-calibration-despite-law", "calibration asked for a safety gauge: routed as asked, with a warning",
         need(**GAUGE, range_min=0, range_max=1.6, tolerance_value=1.6, tolerance_unit="class", legal_use=True,
              service_kind="calibration"),
         ["hz-oilgas/gauge-cal"], rejected={"sh-h2/pt-gap-cal": "INSTRUMENT_TYPE"},
         service_kind="calibration", legal_note_contains="Warning"),
    # ------------------------------------------------------------------ temperature
    Case("tc-1000-2.5", "TUR ≥ 4:1 at 1000 ℃ ±2.5 ℃; U is a difference (1 ℃ = 1 K); best band at a band limit",
         need(instrument_type="K型热电偶", unit="℃", range_min=1000, range_max=1000, tolerance_value=2.5,
              tolerance_unit="℃"),
         ["sh-icv/tc-cal"], rejected={"nb-mag/tc-cal": "UNCERTAINTY_INADEQUATE", "hz-oilgas/tc-cal": "UNCERTAINTY_INADEQUATE",
                                      "wx-iot/prt-cal": "INSTRUMENT_TYPE", "sh-icv/tc-noble-cal": "INSTRUMENT_TYPE"},
         worst_point=1000, band_text="band 300–1000 °C"),
    Case("tc-1000-jjf1094", "JJF 1094 U95 ≤ MPE/3 at 1000 ℃ ±3.2 ℃; same city (宁波) ranks first",
         need(instrument_type="thermocouple", unit="°C", range_min=1000, range_max=1000, tolerance_value=3.2,
              tolerance_unit="°C", decision_rule="jjf1094", city="宁波"),
         ["nb-mag/tc-cal", "sh-icv/tc-cal"], rejected={"hz-oilgas/tc-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("tc-300-1200-reading", "% of reading of a ℃ reading (not of kelvin): 1.5 % at 300 ℃ is 4.5 ℃",
         need(instrument_type="热电偶", unit="℃", range_min=300, range_max=1200, tolerance_value=1.5,
              tolerance_unit="%"),
         ["sh-icv/tc-cal", "nb-mag/tc-cal"], rejected={"hz-oilgas/tc-cal": "UNCERTAINTY_INADEQUATE"},
         worst_point=300),
    Case("prt-minus40", "negative temperatures are legal; 0.3 ℃ / 0.05 K",
         need(instrument_type="温度传感器", unit="℃", range_min=-40, range_max=85, tolerance_value=0.3,
              tolerance_unit="℃"),
         ["wx-iot/prt-cal"], rejected={"nb-mag/tc-cal": "RANGE_NOT_COVERED"}),
    Case("prt-kelvin", "unit conversion: the need in kelvin, the capability in ℃",
         need(instrument_type="temperature sensor", unit="K", range_min=273.15, range_max=373.15, tolerance_value=0.3,
              tolerance_unit="K"),
         ["wx-iot/prt-cal"]),
    # ------------------------------------------------------------------ torque
    Case("tw-20-200-1pct", "torque wrench 20–200 N·m to 1 %: TUR ≥ 4:1; torque never matches energy",
         need(**TW, range_min=20, range_max=200, tolerance_value=1, tolerance_unit="%", city="常州", province="江苏"),
         ["cz-robot/torque-wrench-cal", "wh-robot/torque-onsite"],
         rejected={"hf-nev/energy-cal": "QUANTITY_KIND", "yc-wind/torque-large": "RANGE_NOT_COVERED",
                   "cz-robot/torque-wrench-ver": "SERVICE_KIND"},
         worst_point=20, band_text="band 1–2000 N*m"),
    Case("tw-lab-only", "site fits: an on-site-only capability is rejected for lab work",
         need(**TW, range_min=20, range_max=200, tolerance_value=1, tolerance_unit="%", site="lab"),
         ["cz-robot/torque-wrench-cal"], rejected={"wh-robot/torque-onsite": "SITE"}),
    Case("tw-kgfm", "unit conversion: 2–20 kgf·m = 19.6–196 N·m",
         need(instrument_type="扭矩扳手", unit="kgf·m", range_min=2, range_max=20, tolerance_value=1,
              tolerance_unit="%", city="常州"),
         ["cz-robot/torque-wrench-cal", "wh-robot/torque-onsite"]),
    Case("tw-deadline", "missing the deadline is a heavy penalty, not a rejection",
         need(**TW, range_min=20, range_max=200, tolerance_value=1, tolerance_unit="%", city="常州",
              deadline=TODAY + dt.timedelta(days=3)),
         ["wh-robot/torque-onsite", "cz-robot/torque-wrench-cal"]),
    Case("tw-quantity", "capacity: 150 items exceed a 100-a-month capability",
         need(**TW, range_min=20, range_max=200, tolerance_value=1, tolerance_unit="%", quantity=150),
         ["cz-robot/torque-wrench-cal"], rejected={"wh-robot/torque-onsite": "NO_CAPACITY"}),
    Case("tw-full-load", "capacity: a centre at 100 % load takes nothing",
         need(**TW, range_min=20, range_max=200, tolerance_value=1, tolerance_unit="%", city="常州"),
         ["wh-robot/torque-onsite"], rejected={"cz-robot/torque-wrench-cal": "NO_CAPACITY"},
         load={"cz-robot": 1.0}),
    Case("tw-load-ranking", "load lowers the score: a 90 %-loaded centre drops below an idle one",
         need(**TW, range_min=20, range_max=200, tolerance_value=1, tolerance_unit="%"),
         ["wh-robot/torque-onsite", "cz-robot/torque-wrench-cal"], load={"cz-robot": 0.9}),
    Case("tw-verification", "检定 only when authorised: cz-robot holds JJG 707-2014",
         need(**TW, range_min=20, range_max=200, tolerance_value=4, tolerance_unit="%", service_kind="verification"),
         ["cz-robot/torque-wrench-ver"], rejected={"cz-robot/torque-wrench-cal": "SERVICE_KIND"},
         service_kind="verification"),
    Case("wind-torque", "large torque 10–200 kN·m ±2 %: only the wind-power centre covers it",
         need(instrument_type="液压扭矩扳手", unit="kN·m", range_min=10, range_max=200, tolerance_value=2,
              tolerance_unit="%"),
         ["yc-wind/torque-large"], rejected={"cz-robot/torque-wrench-cal": "RANGE_NOT_COVERED"}),
    Case("energy-not-torque", "energy in J never matches torque capabilities (same dimension, other kind)",
         need(measurand="energy", unit="J", range_min=100, range_max=1000, tolerance_value=1, tolerance_unit="%"),
         ["hf-nev/energy-cal"], rejected={"cz-robot/torque-wrench-cal": "QUANTITY_KIND"}),
    Case("nm-as-energy", "N·m declared as energy is energy, not torque",
         need(measurand="work", unit="N·m", quantity_kind="energy", range_min=100, range_max=1000,
              tolerance_value=1, tolerance_unit="%"),
         ["hf-nev/energy-cal"], rejected={"cz-robot/torque-wrench-cal": "QUANTITY_KIND"}),
    # ------------------------------------------------------------------ EV chargers
    Case("dc-charger-not-sure", "强制检定 JJG 1149-2022: 'not sure' -> 检定, only the authorised centre",
         need(instrument_type="直流充电桩", unit="A", range_min=10, range_max=250, tolerance_value=1,
              tolerance_unit="%", city="上海"),
         ["hf-nev/dc-charger-ver"],
         rejected={"sh-icv/dc-charger-ver": "NOT_AUTHORISED", "hf-nev/ac-charger-ver": "INSTRUMENT_TYPE",
                   "sh-icv/dc-current-cal": "SERVICE_KIND"},
         service_kind="verification", legal_note_contains="JJG 1149-2022"),
    Case("ac-charger", "rule 2b INSTRUMENT_TYPE: a DC charger capability (JJG 1149) never verifies an AC charger "
         "(qualifier AC ≠ DC), before the authorisation check",
         need(instrument_type="交流充电桩", unit="A", range_min=6, range_max=63, tolerance_value=2, tolerance_unit="%"),
         ["hf-nev/ac-charger-ver"],
         rejected={"hf-nev/dc-charger-ver": "INSTRUMENT_TYPE", "sh-icv/dc-charger-ver": "INSTRUMENT_TYPE"},
         service_kind="verification", legal_note_contains="JJG 1148-2022"),
    Case("dc-charger-calibration-asked", "calibration asked for a trade-settlement charger: routed as asked, with a "
         "warning; a DC ammeter bench is no charger service (rule 2b INSTRUMENT_TYPE)",
         need(instrument_type="直流充电桩", unit="A", range_min=10, range_max=250, tolerance_value=1,
              tolerance_unit="%", service_kind="calibration"),
         [], rejected={"hf-nev/dc-charger-ver": "SERVICE_KIND", "sh-icv/dc-current-cal": "INSTRUMENT_TYPE"},
         service_kind="calibration", legal_note_contains="Warning"),
    Case("dc-charger-r-and-d", "not for trade settlement (R&D bench): calibration is acceptable",
         need(instrument_type="直流充电桩", unit="A", range_min=10, range_max=250, tolerance_value=1,
              tolerance_unit="%", legal_use=False),
         [], rejected={"sh-icv/dc-current-cal": "INSTRUMENT_TYPE"}, service_kind="calibration",
         legal_note_contains="not mandatory"),
    # ------------------------------------------------------------------ meters: 检定 and 型式评价
    Case("water-meter-te", "型式评价 only when authorised, under the water-meter regulation",
         need(instrument_type="水表 DN20", unit="m³/h", range_min=0.016, range_max=40, tolerance_value=2,
              tolerance_unit="%", service_kind="type_evaluation"),
         ["hz-oilgas/water-meter-te"],
         rejected={"sh-h2/water-meter-te": "NOT_AUTHORISED", "hz-oilgas/gas-meter-te": "INSTRUMENT_TYPE",
                   "hz-oilgas/water-meter-ver": "SERVICE_KIND"},
         service_kind="type_evaluation"),
    Case("gas-meter-te", "型式评价 of a diaphragm gas meter (JJG 577-2012), G4 0.04–6 m³/h ±3 %",
         need(instrument_type="膜式燃气表 G4", unit="m³/h", range_min=0.04, range_max=6, tolerance_value=3,
              tolerance_unit="%", service_kind="type_evaluation"),
         ["hz-oilgas/gas-meter-te"], rejected={"hz-oilgas/water-meter-te": "INSTRUMENT_TYPE"}),
    Case("water-meter-ver", "强制检定 water meter (JJG 162-2019): 'not sure' -> 检定",
         need(instrument_type="水表", unit="L/h", range_min=16, range_max=5000, tolerance_value=2, tolerance_unit="%"),
         ["hz-oilgas/water-meter-ver"], rejected={"hz-oilgas/water-meter-te": "SERVICE_KIND"},
         service_kind="verification"),
    # ------------------------------------------------------------------ length
    Case("cmm-jjf1094", "CMM 0–1000 mm MPE 4.5 µm on site: JJF 1094 U ≤ MPE/3 passes (3.5)",
         need(instrument_type="三坐标测量机 CMM", unit="mm", range_min=0, range_max=1000, tolerance_value=4.5,
              tolerance_unit="µm", decision_rule="jjf1094", site="on_site"),
         ["cz-robot/cmm-cal"], rejected={"nb-mag/gauge-block-cal": "INSTRUMENT_TYPE"},
         worst_point=1000, band_text="band 0–2000 mm"),
    Case("cmm-tur", "the same CMM under TUR ≥ 4:1 is inadequate (3.5:1)",
         need(instrument_type="CMM", unit="mm", range_min=0, range_max=1000, tolerance_value=4.5,
              tolerance_unit="µm", site="on_site"),
         [], rejected={"cz-robot/cmm-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("gauge-block", "gauge blocks 10–100 mm ±0.45 µm: worst point 100 mm (U = 0.05 µm + 0.5 ppm·L)",
         need(instrument_type="量块", unit="mm", range_min=10, range_max=100, tolerance_value=0.45,
              tolerance_unit="μm", site="lab"),
         ["nb-mag/gauge-block-cal"], rejected={"cz-robot/cmm-cal": "INSTRUMENT_TYPE"}, worst_point=100),
    # ------------------------------------------------------------------ humidity
    Case("humidity-20-80", "%RH is the relative-humidity kind; ±3.5 %RH needs U ≤ 0.875 %RH",
         need(instrument_type="温湿度计", unit="%RH", range_min=20, range_max=80, tolerance_value=3.5,
              tolerance_unit="%RH"),
         ["wx-iot/humidity-cal"], rejected={"sh-icv/humidity-cal": "UNCERTAINTY_INADEQUATE"},
         band_text="band 10–95 %"),
    Case("humidity-5-95-jjf1094", "range coverage at 5 %RH; JJF 1094 U ≤ MPE/3",
         need(instrument_type="湿度计", unit="%RH", range_min=5, range_max=95, tolerance_value=5, tolerance_unit="%RH",
              decision_rule="jjf1094"),
         ["sh-icv/humidity-cal"], rejected={"wx-iot/humidity-cal": "RANGE_NOT_COVERED"}),
    # ------------------------------------------------------------------ speed, motion, magnetism
    Case("tacho-rpm", "r/min as revolutions; 0.1 % of reading needs U ≤ 0.025 %",
         need(instrument_type="转速表", unit="r/min", range_min=100, range_max=3000, tolerance_value=0.1,
              tolerance_unit="%"),
         ["cz-robot/tacho-cal"], rejected={"wh-robot/tacho-cal": "UNCERTAINTY_INADEQUATE",
                                           "wx-iot/gyro-cal": "QUANTITY_KIND"}),
    Case("tacho-rps", "3000 r/min = 50 r/s: a need in r/s meets capabilities in r/min",
         need(instrument_type="tachometer", unit="r/s", range_min=2, range_max=50, tolerance_value=0.5,
              tolerance_unit="%"),
         ["wh-robot/tacho-cal", "cz-robot/tacho-cal"]),
    Case("gyro", "angular velocity across zero (−2000…2000 °/s), ±0.5 %FS",
         need(instrument_type="MEMS陀螺仪", unit="°/s", range_min=-2000, range_max=2000, tolerance_value=0.5,
              tolerance_unit="%FS"),
         ["wx-iot/gyro-cal"], rejected={"cz-robot/tacho-cal": "QUANTITY_KIND"}),
    Case("accelerometer", "acceleration ±50 gn, ±1 %FS",
         need(instrument_type="加速度计", unit="gn", range_min=-50, range_max=50, tolerance_value=1,
              tolerance_unit="%FS"),
         ["wx-iot/accel-cal"]),
    # ------------------------------------------------------------------ rule 2b INSTRUMENT_TYPE (instruments.py)
    Case("it-wrench-not-joint-sensor", "rule 2b INSTRUMENT_TYPE: a torque-transducer bench (same kind, range, TUR) "
         "is no torque-wrench service (wrench tester, ISO 6789 / JJG 707)",
         need(instrument_type="torque wrenches", unit="N·m", range_min=20, range_max=200, tolerance_value=1,
              tolerance_unit="%", city="常州"),
         ["cz-robot/torque-wrench-cal", "wh-robot/torque-onsite"],
         rejected={"cz-robot/joint-torque-sensor-cal": "INSTRUMENT_TYPE"}),
    Case("it-sensor-not-wrench", "rule 2b INSTRUMENT_TYPE, the other direction: wrench benches do not take a torque "
         "transducer",
         need(instrument_type="扭矩传感器", unit="N·m", range_min=10, range_max=500, tolerance_value=0.5,
              tolerance_unit="%FS"),
         ["cz-robot/joint-torque-sensor-cal"],
         rejected={"cz-robot/torque-wrench-cal": "INSTRUMENT_TYPE", "wh-robot/torque-onsite": "INSTRUMENT_TYPE",
                   "yc-wind/torque-large": "INSTRUMENT_TYPE"}),
    Case("it-gauge-not-transmitter", "rule 2b INSTRUMENT_TYPE: pressure gauges (JJG 52) are not served by transmitter or "
         "sensor benches (JJG 882); English plural folded",
         need(instrument_type="pressure gauges", unit="MPa", range_min=0, range_max=1.6, tolerance_value=1.6,
              tolerance_unit="class"),
         ["hz-oilgas/gauge-cal"],
         rejected={"sh-icv/pt-cal": "INSTRUMENT_TYPE", "wx-iot/pt-mems-cal": "INSTRUMENT_TYPE",
                   "sh-h2/pt-gap-cal": "INSTRUMENT_TYPE"}),
    Case("it-sensor-family", "rule 2b INSTRUMENT_TYPE: a pressure sensor need is served by sensor and transmitter "
         "benches (sensor family, relevance 0.8), never by a gauge bench",
         need(instrument_type="压力传感器", unit="MPa", range_min=0, range_max=10, tolerance_value=0.1,
              tolerance_unit="%FS"),
         ["wx-iot/pt-mems-cal", "sh-icv/pt-cal"],
         rejected={"hz-oilgas/gauge-cal": "INSTRUMENT_TYPE", "sh-h2/pt-gap-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("it-tc-k-not-noble", "rule 2b INSTRUMENT_TYPE: a type K need contradicts a type S/B capability; a plain "
         "热电偶 capability is not contradicted; a PRT bench is another instrument",
         need(instrument_type="K型热电偶", unit="℃", range_min=1000, range_max=1000, tolerance_value=4,
              tolerance_unit="℃"),
         ["sh-icv/tc-cal", "nb-mag/tc-cal"],
         rejected={"sh-icv/tc-noble-cal": "INSTRUMENT_TYPE", "wx-iot/prt-cal": "INSTRUMENT_TYPE",
                   "hz-oilgas/tc-cal": "UNCERTAINTY_INADEQUATE"}),
    Case("it-tc-s-noble", "rule 2b INSTRUMENT_TYPE: a type S need is served by the S/B capability (confirmed, ranks "
         "first) and the plain 热电偶 one, not by type K",
         need(instrument_type="S型热电偶", unit="℃", range_min=1000, range_max=1300, tolerance_value=1,
              tolerance_unit="%"),
         ["sh-icv/tc-noble-cal", "sh-icv/tc-cal"],
         rejected={"nb-mag/tc-cal": "INSTRUMENT_TYPE", "hz-oilgas/tc-cal": "RANGE_NOT_COVERED"}),
    Case("it-measurand-only", "rule 2b INSTRUMENT_TYPE: a need naming only the measurand (压力) rejects nothing; "
         "every covering pressure calibration is a candidate",
         need(measurand="压力", unit="MPa", range_min=0, range_max=10, tolerance_value=0.5, tolerance_unit="%FS"),
         ["wx-iot/pt-mems-cal", "sh-icv/pt-cal", "sh-h2/pt-gap-cal"], ordered=False,
         rejected={"hz-oilgas/gauge-cal": "RANGE_NOT_COVERED", "sh-h2/pt-hp-cal": "RANGE_NOT_COVERED"}),
    Case("it-unknown-instrument", "rule 2b INSTRUMENT_TYPE: an instrument the vocabulary does not know (压力扫描阀) "
         "rejects nothing; ranked by word overlap",
         need(instrument_type="压力扫描阀", unit="MPa", range_min=0, range_max=10, tolerance_value=0.5,
              tolerance_unit="%FS"),
         ["wx-iot/pt-mems-cal", "sh-icv/pt-cal", "sh-h2/pt-gap-cal"], ordered=False),
    Case("gaussmeter", "magnetic flux density in 高斯 (gauss): 100–5000 Gs = 10–500 mT",
         need(instrument_type="高斯计", unit="高斯", range_min=100, range_max=5000, tolerance_value=1,
              tolerance_unit="%"),
         ["nb-mag/flux-cal"]),
]
