"""Deterministic synthetic federation: N capabilities over 50+ specialised centres, and matching needs.

The size of a real federation comes from *diversity*, not from copies (bench/README.md argues each choice):

* **Instrument families.** A family is one instrument line a centre can list: a *base* instrument (a head
  noun of the router's vocabulary, ``instruments.HEADS``, with its quantity kind, unit, JJG/JJF method,
  service kinds and uncertainty options) x a *qualifier* (K/S type, AC/DC, liquid/gas, diaphragm/ultrasonic,
  or a construction word the router ignores: 精密, 差压, 数显 ...) x an *application* word of an industry
  chain (风电, 氢燃料电池, 半导体 ..., zh + en; in the instrument name for some families, always in the
  keywords) x a *range decade* (0–1 / 0–10 / 0–100 MPa ...). ~60 bases over 26 quantity kinds give
  ~40k families; every name is checked against ``instruments.heads_of`` so the router reads the intended
  head noun (a name it could not read would pass the instrument rule for every need of its kind).
* **Specialised centres.** Each of the 60 centres belongs to one industry chain (DOMAIN.md) plus the next
  one in the chain; it ranks the family universe by a weighted random key (weight = family popularity x
  affinity: its chain's application words x8, general ones x1, other chains' x0.15; bases its chain
  uses x3) and offers families in that order until its share of N rows is reached. A smaller federation's
  centre lists are prefixes of a larger one's.
* **A handful of rows per family** offered (1–5, mean ~2.2): the primary line, then variants a real scope
  lists separately -- another service kind (检定 only where the centre is authorised for the JJG), on-site
  work (worse U), a JJF calibration method next to the JJG, a lower range band with finer U, a two-band
  range. Never hundreds of near-copies.
* ~3 % service-only offers per centre (consultation, 建标, MMS, lab opening, instrument sharing).

Needs (``make_needs``) follow demand: a base drawn by demand weight (popularity^1.3: common instruments
dominate), named the way an enterprise names it ("压力变送器", "K型热电偶", "torque wrench", sometimes with
its application: "风电扭矩扳手"), 70 % zh / 30 % en, a sub-range of a decade, a tolerance 2–20x the
typical U; ~8 % are measurand-only ("压力", no instrument), which legitimately see every capability of
the quantity kind that covers the range.

    from bench.synthetic import make_centres, make_capabilities, make_needs
    centres = make_centres(60)
    caps = make_capabilities(100_000, centres)       # same arguments -> same rows, every time
    needs = make_needs(300)                          # kwargs for need_from_fields(...)

``python -m bench.synthetic 100000`` prints the mix: families, rows per family and per line, a sample.
"""

from __future__ import annotations

import functools
import math
import random
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

from metrofed.domain.capability import (
    Capability,
    CentreProfile,
    ExpandedUncertainty,
    LegalAuthorisations,
    RangeBand,
    ServiceKind,
    Site,
    Text,
)
from metrofed.domain.units import parse_unit, si_factor

V, C, T, TE = (ServiceKind.VERIFICATION, ServiceKind.CALIBRATION, ServiceKind.TESTING,
               ServiceKind.TYPE_EVALUATION)

# ---- industry chains (DOMAIN.md's centres) and their application words -------------------------------
INDUSTRIES = (("智能网联汽车", "intelligent connected vehicles"), ("民用航空发动机", "aero engines"),
              ("海洋动力装备", "marine power equipment"), ("集成电路", "integrated circuits"),
              ("氢燃料电池汽车", "hydrogen fuel-cell vehicles"), ("储氢装备", "hydrogen storage"),
              ("智慧照明", "smart lighting"), ("生物医药", "biomedicine"), ("北斗导航", "BeiDou navigation"),
              ("物联网感知装备", "IoT sensing"), ("工业机器人", "industrial robots"),
              ("轨道交通装备", "rail transit equipment"), ("海上风电装备", "offshore wind"),
              ("海洋油气装备", "offshore oil and gas"), ("磁性材料", "magnetic materials"),
              ("新能源汽车储供能", "EV energy storage and charging"), ("智能装备", "intelligent equipment"))
ICV, AERO, MARINE, IC, H2V, H2S, LIGHT, BIO, BDS, IOT, ROBOT, RAIL, WIND, OIL, MAG, EV, EQUIP = range(17)
ALL = tuple(range(17))

# (zh, en, industry index or None for general-purpose words)
APPS: tuple[tuple[str, str, int | None], ...] = (
    ("车载", "automotive", ICV), ("智能网联", "connected-vehicle", ICV), ("整车", "vehicle-level", ICV),
    ("底盘", "chassis", ICV),
    ("航空", "aviation", AERO), ("发动机", "aero-engine", AERO), ("燃烧室", "combustor", AERO),
    ("机载", "airborne", AERO),
    ("船用", "marine", MARINE), ("柴油机", "diesel-engine", MARINE), ("船舶动力", "ship-propulsion", MARINE),
    ("洁净室", "cleanroom", IC), ("半导体", "semiconductor", IC), ("光刻", "lithography", IC),
    ("封装", "packaging", IC),
    ("燃料电池", "fuel-cell", H2V), ("电堆", "fuel-cell-stack", H2V), ("车用氢系统", "vehicle-hydrogen", H2V),
    ("储氢", "hydrogen-storage", H2S), ("高压氢", "high-pressure-hydrogen", H2S), ("加氢站", "refuelling-station", H2S),
    ("照明", "lighting", LIGHT), ("LED", "LED", LIGHT), ("灯具", "luminaire", LIGHT),
    ("医用", "medical", BIO), ("制药", "pharmaceutical", BIO), ("冷链", "cold-chain", BIO),
    ("生物安全", "biosafety", BIO),
    ("北斗", "BeiDou", BDS), ("导航", "navigation", BDS), ("授时", "timing", BDS),
    ("物联网", "IoT", IOT), ("无线", "wireless", IOT), ("智能终端", "smart-device", IOT),
    ("机器人", "robot", ROBOT), ("关节", "robot-joint", ROBOT), ("协作", "cobot", ROBOT),
    ("减速器", "reducer", ROBOT),
    ("轨道交通", "railway", RAIL), ("机车", "locomotive", RAIL), ("转向架", "bogie", RAIL),
    ("制动", "brake", RAIL),
    ("风电", "wind-turbine", WIND), ("海上", "offshore", WIND), ("叶片", "blade", WIND),
    ("螺栓", "bolting", WIND),
    ("石油", "oilfield", OIL), ("井口", "wellhead", OIL), ("海洋平台", "offshore-platform", OIL),
    ("管道", "pipeline", OIL),
    ("磁性材料", "magnetic-material", MAG), ("永磁", "permanent-magnet", MAG), ("电机", "motor", MAG),
    ("动力电池", "traction-battery", EV), ("储能", "energy-storage", EV), ("电池包", "battery-pack", EV),
    ("换电", "battery-swap", EV),
    ("数控", "CNC", EQUIP), ("智能制造", "smart-manufacturing", EQUIP), ("机床", "machine-tool", EQUIP),
    ("工业", "industrial", None), ("实验室", "laboratory", None), ("便携式", "portable", None),
    ("高精度", "high-accuracy", None), ("在线", "in-line", None), ("防爆", "explosion-proof", None),
)


@dataclass(frozen=True)
class Qual:
    zh: str
    en: str
    w: float = 1.0
    method: str | None = None  # overrides the base's method (DC chargers: JJG 1149)
    max_hi: float | None = None  # decades above this are not built for this qualifier
    min_hi: float | None = None


@dataclass(frozen=True)
class Base:
    slug: str
    head: str  # instruments.HEADS key the names must resolve to
    quantity_kind: str
    unit: str
    measurand: Text
    name: Text  # the base instrument name; qualifiers and application words are prefixed
    method: str
    kinds: tuple[ServiceKind, ...]
    decades: tuple[tuple[float, float], ...]
    rel: tuple[float, ...]  # relative expanded U options (fractions)
    abs_: tuple[float, ...]  # absolute expanded U options, in abs_unit
    abs_unit: str
    quals: tuple[Qual, ...]
    industries: tuple[int, ...]  # chains that use it most; ALL for general-purpose instruments
    w: float  # supply popularity (demand: w ** 1.3)
    cal_method: str = ""  # a JJF calibration specification listed next to the JJG


def _b(slug, head, qk, unit, mz, me, nz, ne, method, kinds, decades, rel, abs_=(0.0,), abs_unit=None,
       quals=(("", ""),), ind=ALL, w=10, cal=""):
    qs = tuple(q if isinstance(q, Qual) else Qual(*q) for q in quals)
    return Base(slug, head, qk, unit, Text(mz, me), Text(nz, ne), method, tuple(kinds), tuple(decades),
                tuple(rel), tuple(abs_), abs_unit or unit, qs, tuple(ind), w, cal)


_TC = tuple(Qual(f"{t}型", f"type {t}", w, None, 1300 if t in "KNEJT" else None, None if t in "KNEJT" else 1000)
            for t, w in (("K", 5), ("N", 2), ("E", 1), ("J", 1), ("T", 1), ("S", 2), ("R", 1), ("B", 1)))
_DCAC = (Qual("直流", "DC"), Qual("交流", "AC"))

BASES: tuple[Base, ...] = (
    # ---- pressure
    _b("pressure-gauge", "pressure-gauge", "pressure", "MPa", "压力", "pressure", "压力表", "pressure gauge",
       "JJG 52-2013", (V, C), [(-0.1, 0), (0, 0.6), (0, 6), (0, 60)], (0.0005, 0.001, 0.002),
       quals=(("", "", 4), ("精密", "precision", 2), ("耐震", "vibration-resistant"), ("隔膜", "diaphragm-seal"),
              ("电接点", "electric-contact"), ("氨用", "ammonia")), w=24, cal="JJF 1xxx-20xx (pressure gauge)"),
    _b("pressure-transmitter", "transmitter", "pressure", "MPa", "压力", "pressure", "压力变送器",
       "pressure transmitter", "JJG 882-2019", (C, V, T), [(0, 0.01), (0, 0.1), (0, 1), (0, 10), (0, 100)],
       (0.0002, 0.0005, 0.001), (0.0, 2e-6), quals=(("", "", 4), ("差压", "differential", 2),
                                                    ("绝压", "absolute"), ("智能", "smart"),
                                                    ("扩散硅", "diffused-silicon")), w=20, cal="JJF 1xxx (transmitter)"),
    _b("digital-manometer", "digital-pressure-gauge", "pressure", "kPa", "压力", "pressure", "数字压力计",
       "digital pressure gauge", "JJG 875-2019", (C, V), [(-100, 0), (0, 100), (0, 1000), (0, 10000), (0, 100000)],
       (0.0001, 0.0002, 0.0005), (0.0, 0.002), quals=(("", "", 3), ("精密", "precision"), ("手持", "handheld")),
       w=12),
    _b("pressure-sensor", "sensor", "pressure", "MPa", "压力", "pressure", "压力传感器", "pressure sensor",
       "JJG 860-2015", (C, T), [(0, 0.1), (0, 1), (0, 10), (0, 100)], (0.0005, 0.001, 0.002),
       quals=(("", "", 2), ("MEMS", "MEMS", 2), ("压阻式", "piezoresistive"), ("压电", "piezoelectric")),
       ind=(IOT, ICV, H2V, H2S, AERO, ROBOT), w=10),
    _b("barometer", "barometer", "pressure", "hPa", "大气压力", "barometric pressure", "气压计", "barometer",
       "JJG 272-2007", (C,), [(500, 1100)], (0.0001, 0.0003), (0.1, 0.2),
       quals=(("", ""), ("数字", "digital"), ("空盒", "aneroid")), ind=(BDS, IOT, AERO), w=3),
    _b("vacuum-meter", "vacuum-meter", "pressure", "Pa", "真空度", "vacuum", "真空计", "vacuum meter",
       "JJF 1062-2018", (C,), [(0.0001, 0.1), (0.1, 1000), (1, 100000)], (0.05, 0.1),
       quals=(("电离", "ionization"), ("皮拉尼", "Pirani"), ("电容薄膜", "capacitance-diaphragm")),
       ind=(IC, H2S, LIGHT), w=3),
    # ---- temperature
    _b("thermocouple", "thermocouple", "temperature", "degC", "温度", "temperature", "热电偶", "thermocouple",
       "JJF 1637-2017", (C, V), [(-40, 400), (0, 800), (300, 1200), (600, 1600)], (0.0,), (1.0, 1.5, 2.0),
       "delta_degC", quals=_TC, w=18),
    _b("prt", "prt", "temperature", "degC", "温度", "temperature", "铂电阻温度计", "platinum resistance thermometer",
       "JJG 229-2010", (V, C), [(-200, 0), (-80, 300), (0, 420), (0, 660)], (0.0,), (0.02, 0.05, 0.1),
       "delta_degC", quals=(("工业", "industrial", 3), ("标准", "standard"), ("铠装", "sheathed"),
                            ("Pt1000", "Pt1000")), w=15),
    _b("thermometer", "thermometer", "temperature", "degC", "温度", "temperature", "温度计", "thermometer",
       "JJG 130-2011", (V, C), [(-40, 100), (0, 300)], (0.0,), (0.1, 0.2, 0.5), "delta_degC",
       quals=(("玻璃液体", "liquid-in-glass"), ("双金属", "bimetallic"), ("数字", "digital", 2),
              ("压力式", "pressure-type")), w=10),
    _b("ir-thermometer", "radiation-thermometer", "temperature", "degC", "温度", "temperature", "红外测温仪",
       "infrared thermometer", "JJG 856-2015", (C, V), [(-30, 300), (300, 1500), (600, 3000)], (0.005, 0.01),
       (0.5, 1.0), "delta_degC", quals=(("", ""), ("手持", "handheld"), ("在线", "fixed-mount")), w=6),
    _b("climatic-chamber", "chamber", "temperature", "degC", "温度", "temperature", "试验箱", "climatic chamber",
       "JJF 1101-2019", (C, T), [(-70, 150), (-40, 180), (0, 300)], (0.0,), (0.3, 0.5, 1.0), "delta_degC",
       quals=(("高低温", "temperature", 2), ("恒温恒湿", "humidity"), ("盐雾", "salt-spray"), ("老化", "ageing")),
       w=10),
    _b("furnace", "furnace", "temperature", "degC", "温度", "temperature", "热处理炉", "heat-treatment furnace",
       "JJF 1376-2012", (C, T), [(300, 1200), (600, 1300)], (0.0,), (3.0, 5.0), "delta_degC",
       quals=(("", ""), ("真空", "vacuum")), ind=(AERO, MARINE, RAIL, EQUIP, MAG), w=4),
    _b("temp-sensor", "sensor", "temperature", "degC", "温度", "temperature", "温度传感器", "temperature sensor",
       "JJF 1xxx (temperature sensor)", (C, T), [(-40, 150), (-200, 600)], (0.0,), (0.1, 0.3), "delta_degC",
       quals=(("", ""), ("数字", "digital"), ("无线", "wireless")), ind=(IOT, ICV, BIO, EV), w=6),
    # ---- humidity
    _b("hygrometer", "hygrometer", "relative_humidity", "percent", "相对湿度", "relative humidity", "温湿度计",
       "thermohygrometer", "JJF 1076-2020", (C,), [(10, 95), (5, 98)], (0.0,), (1.0, 1.5, 2.0),
       quals=(("", ""), ("数字", "digital"), ("自记", "recording")), w=8),
    _b("humidity-sensor", "sensor", "relative_humidity", "percent", "相对湿度", "relative humidity",
       "湿度传感器", "humidity sensor", "JJF 1xxx (humidity sensor)", (C, T), [(10, 95)], (0.0,), (1.5, 2.0, 3.0),
       ind=(IOT, BIO, IC), w=3),
    # ---- torque and force
    _b("torque-wrench", "torque-wrench", "torque", "N*m", "扭矩", "torque", "扭矩扳手", "torque wrench",
       "JJG 707-2014", (V, C), [(1, 20), (5, 100), (20, 340), (100, 1000), (200, 2000), (1000, 6000)],
       (0.003, 0.005, 0.01), quals=(("", "", 3), ("预置式", "click-type", 2), ("指示式", "dial-type"),
                                    ("电子", "electronic"), ("定扭", "preset")), w=20),
    _b("torque-screwdriver", "torque-screwdriver", "torque", "N*m", "扭矩", "torque", "扭矩螺丝刀",
       "torque screwdriver", "JJG 707-2014", (C,), [(0.05, 1), (0.5, 10), (1, 25)], (0.005, 0.01),
       quals=(("", ""), ("电动", "electric")), ind=(IC, IOT, ROBOT, EQUIP), w=5),
    _b("torque-sensor", "sensor", "torque", "N*m", "扭矩", "torque", "扭矩传感器", "torque transducer",
       "JJF 1xxx (torque transducer)", (C, T), [(0.1, 10), (1, 100), (10, 1000), (100, 5000), (1000, 50000)],
       (0.0005, 0.001, 0.002), quals=(("静态", "static"), ("旋转", "rotary")), ind=(ROBOT, ICV, WIND, MARINE, RAIL),
       w=8),
    _b("testing-machine", "testing-machine", "force", "kN", "力", "force", "试验机", "testing machine",
       "JJG 139-2014", (V, C), [(0.1, 10), (1, 100), (10, 600), (50, 2000)], (0.001, 0.003),
       quals=(("拉力", "tensile"), ("压力", "compression"), ("万能", "universal", 2), ("疲劳", "fatigue")), w=12),
    _b("force-gauge", "force-gauge", "force", "N", "力", "force", "测力计", "force gauge", "JJG 455-2000",
       (V, C), [(0.5, 50), (5, 500), (50, 5000)], (0.003, 0.005), quals=(("", ""), ("推拉", "push-pull"),
                                                                       ("数显", "digital")), w=6),
    _b("load-cell", "load-cell", "force", "kN", "力", "force", "称重传感器", "load cell", "JJG 669-2003",
       (C, T, TE), [(0.01, 1), (0.1, 50), (10, 500)], (0.0002, 0.0005), quals=(("", ""), ("电阻应变式", "strain-gauge")),
       w=6),
    _b("force-sensor", "sensor", "force", "kN", "力", "force", "力传感器", "force transducer", "JJG 391-2009",
       (C, T), [(0.001, 1), (0.1, 100), (10, 5000)], (0.0005, 0.001), quals=(("", ""), ("多分量", "multi-axis")),
       ind=(ROBOT, AERO, RAIL, WIND, ICV), w=6),
    # ---- mass
    _b("balance", "balance", "mass", "g", "质量", "mass", "天平", "balance", "JJG 1036-2008", (V, C),
       [(0, 220), (0, 2200), (0, 32000)], (0.0,), (0.0001, 0.001, 0.01),
       quals=(("电子", "electronic", 3), ("分析", "analytical"), ("精密", "precision")), w=12),
    _b("scale", "scale", "mass", "kg", "质量", "mass", "电子秤", "weighing scale", "JJG 539-2016", (V, C),
       [(0, 30), (0, 300), (0, 3000)], (0.0,), (0.001, 0.01, 0.1), quals=(("", "", 2), ("台式", "bench"),
                                                                        ("计价", "price-computing")), w=8),
    _b("weight", "weight", "mass", "g", "质量", "mass", "砝码", "weight", "JJG 99-2022", (V, C),
       [(0.001, 1), (1, 1000), (1000, 20000)], (0.000002, 0.00001),
       quals=(("E2级", "class E2"), ("F1级", "class F1"), ("M1级", "class M1")), w=6),
    # ---- length
    _b("cmm", "cmm", "length", "mm", "长度", "length", "坐标测量机", "coordinate measuring machine", "JJF 1064-2010",
       (C,), [(0, 500), (0, 1000), (0, 2000), (0, 5000)], (0.000003,), (0.0015, 0.002),
       quals=(("", ""), ("桥式", "bridge-type"), ("关节臂", "articulated-arm")), ind=(AERO, ICV, RAIL, EQUIP, ROBOT),
       w=6),
    _b("caliper", "caliper", "length", "mm", "长度", "length", "卡尺", "caliper", "JJG 30-2012", (V, C),
       [(0, 150), (0, 300), (0, 1000)], (0.0,), (0.005, 0.01),
       quals=(("游标", "vernier", 2), ("数显", "digital"), ("带表", "dial")), w=10),
    _b("micrometer", "micrometer", "length", "mm", "长度", "length", "千分尺", "micrometer", "JJG 21-2008", (V, C),
       [(0, 25), (25, 100), (100, 500)], (0.0,), (0.001, 0.002), quals=(("外径", "outside"), ("内径", "inside"),
                                                                        ("数显", "digital")), w=8),
    _b("dial-indicator", "dial-indicator", "length", "mm", "长度", "length", "百分表", "dial indicator",
       "JJG 34-2008", (V, C), [(0, 3), (0, 10), (0, 50)], (0.0,), (0.002, 0.005), w=6),
    _b("gauge-block", "gauge-block", "length", "mm", "长度", "length", "量块", "gauge block", "JJG 146-2011",
       (V, C), [(0.5, 100), (100, 1000)], (0.000001,), (0.00005, 0.0001),
       quals=(("钢质", "steel"), ("陶瓷", "ceramic")), ind=(EQUIP, AERO, IC), w=4),
    _b("laser-tracker", "laser-tracker", "length", "m", "长度", "length", "激光跟踪仪", "laser tracker",
       "JJF 1242-2010", (C,), [(0, 40), (0, 80)], (0.000005,), (0.00001,), ind=(AERO, WIND, RAIL, MARINE), w=2),
    _b("total-station", "total-station", "length", "m", "距离", "distance", "全站仪", "total station",
       "JJG 100-2003", (V, C), [(0, 2000), (0, 10000)], (0.000002,), (0.001, 0.002), ind=(BDS, RAIL, OIL), w=3),
    _b("lidar", "lidar", "length", "m", "距离", "distance", "激光雷达", "lidar", "in-house: ICV-LR-01", (T, C),
       [(0.5, 150), (0.5, 300)], (0.0,), (0.002, 0.005), quals=(("", ""), ("机械", "mechanical"),
                                                               ("固态", "solid-state")), ind=(ICV, ROBOT), w=4),
    _b("thickness-gauge", "thickness-gauge", "length", "mm", "长度", "thickness", "测厚仪", "thickness gauge",
       "JJG 403-1986", (C,), [(0, 10), (0, 300)], (0.005,), (0.001, 0.01),
       quals=(("超声", "ultrasonic"), ("涂层", "coating")), ind=(MARINE, OIL, WIND, H2S), w=3),
    # ---- velocity, acceleration, rotation
    _b("speed-meter", "speed-meter", "velocity", "km/h", "速度", "speed", "测速仪", "speed meter", "JJG 528-2015",
       (V, C, T), [(0, 250), (20, 180)], (0.0,), (0.1, 0.3), quals=(("雷达", "radar", 2), ("毫米波", "mm-wave"),
                                                                   ("激光", "laser")), ind=(ICV, RAIL), w=4),
    _b("anemometer", "anemometer", "velocity", "m/s", "风速", "air speed", "风速仪", "anemometer", "JJG 431-2014",
       (C,), [(0.5, 30), (0.5, 60)], (0.01, 0.02), (0.1,), quals=(("热式", "thermal"), ("超声", "ultrasonic"),
                                                                 ("杯式", "cup")), ind=(WIND, BIO, IC), w=3),
    _b("accelerometer", "accelerometer", "acceleration", "m/s**2", "加速度", "acceleration", "加速度计",
       "accelerometer", "JJG 233-2008", (C, T), [(-160, 160), (-490, 490), (-2000, 2000)], (0.005, 0.01),
       quals=(("MEMS", "MEMS", 2), ("压电", "piezoelectric"), ("电容", "capacitive")), ind=(IOT, ICV, AERO, RAIL),
       w=6),
    _b("vibration-meter", "vibration-meter", "acceleration", "m/s**2", "振动加速度", "vibration", "测振仪",
       "vibration meter", "JJG 676-2019", (C,), [(0.1, 100), (1, 1000)], (0.03, 0.05),
       quals=(("", ""), ("便携", "handheld")), ind=(WIND, RAIL, MARINE, EQUIP), w=4),
    _b("gyroscope", "gyroscope", "angular_velocity", "deg/s", "角速度", "angular rate", "陀螺仪", "gyroscope",
       "in-house: IOT-GY-02", (T, C), [(-500, 500), (-2000, 2000)], (0.0005, 0.001),
       quals=(("MEMS", "MEMS", 2), ("光纤", "fibre-optic")), ind=(IOT, BDS, ICV, AERO), w=4),
    _b("imu", "imu", "angular_velocity", "deg/s", "角速度", "angular rate", "惯性测量单元",
       "inertial measurement unit", "in-house: BDS-IMU-01", (T, C), [(-500, 500)], (0.001,),
       ind=(BDS, ICV, ROBOT), w=2),
    _b("tachometer", "tachometer", "rotational_speed", "rpm", "转速", "rotational speed", "转速表", "tachometer",
       "JJG 105-2019", (V, C), [(10, 20000), (30, 99999)], (0.0001, 0.0005),
       quals=(("光电", "optical", 2), ("接触式", "contact"), ("手持", "handheld")), w=5),
    # ---- electrical
    _b("multimeter", "multimeter", "voltage", "V", "电压", "voltage", "数字多用表", "digital multimeter",
       "JJF 1587-2016", (C,), [(0, 1), (0, 10), (0, 1000)], (0.00001, 0.00005, 0.0001), (0.0, 1e-6),
       quals=(("", "", 2), ("手持", "handheld"), ("台式", "bench")), w=10),
    _b("voltmeter", "voltmeter", "voltage", "V", "电压", "voltage", "电压表", "voltmeter", "JJG 315-1983",
       (V, C), [(0, 10), (0, 1000)], (0.0005, 0.001), quals=_DCAC, ind=(EV, RAIL, MAG, EQUIP), w=4),
    _b("ammeter", "ammeter", "current", "A", "电流", "current", "电流表", "ammeter", "JJG 124-2005", (V, C),
       [(0, 1), (0, 100)], (0.0005, 0.001), quals=_DCAC, ind=(EV, RAIL, MAG, EQUIP), w=4),
    _b("clamp-meter", "clamp-meter", "current", "A", "电流", "current", "钳形电流表", "clamp meter",
       "JJF 1075-2015", (C,), [(0, 100), (0, 1000)], (0.005, 0.01), quals=_DCAC, w=4),
    _b("shunt", "shunt", "current", "A", "电流", "current", "分流器", "current shunt", "JJG 1xxx (shunt)", (C,),
       [(0, 10), (0, 100), (0, 600), (0, 5000)], (0.0001, 0.0005), quals=(Qual("直流", "DC"),),
       ind=(EV, RAIL, MAG), w=4),
    _b("power-meter", "power-meter", "electrical_power", "W", "电功率", "electrical power", "功率分析仪",
       "power analyzer", "JJG 780-1992", (C,), [(0, 1000), (0, 100000)], (0.0005, 0.001),
       quals=(("", ""), ("三相", "three-phase")), ind=(EV, MAG, WIND, LIGHT), w=4),
    _b("electricity-meter", "electricity-meter", "electrical_energy", "kWh", "电能", "electrical energy",
       "电能表", "electricity meter", "JJG 596-2012", (V, TE), [(0, 1000)], (0.002, 0.005),
       quals=(("", "", 2), ("智能", "smart"), ("三相", "three-phase")), w=6),
    _b("ev-charger", "charger", "electrical_energy", "kWh", "电能", "electrical energy", "充电桩", "charging point",
       "JJG 1148-2022", (V, TE, C), [(0, 1000)], (0.001, 0.002, 0.005),
       quals=(Qual("交流", "AC", 1.0, "JJG 1148-2022"), Qual("直流", "DC", 1.0, "JJG 1149-2022")),
       ind=(EV, ICV, H2V), w=6),
    # ---- flow
    _b("water-meter", "water-meter", "volume_flow", "m**3/h", "流量", "flow", "水表", "water meter", "JJG 162-2019",
       (V, TE), [(0.016, 4), (0.1, 40), (1, 600)], (0.002, 0.005),
       quals=(("冷", "cold-", 2), ("热", "hot-"), ("智能", "smart"), ("超声波", "ultrasonic")), w=8),
    _b("gas-meter", "gas-meter", "volume_flow", "m**3/h", "流量", "flow", "燃气表", "gas meter", "JJG 577-2012",
       (V, TE), [(0.016, 2.5), (0.04, 6), (0.16, 160)], (0.003, 0.005),
       quals=(Qual("膜式", "diaphragm", 3), Qual("超声", "ultrasonic", 1, "JJG 1030-2007"),
              Qual("涡轮", "turbine", 1, "JJG 1037-2008"), Qual("罗茨", "roots", 1, "JJG 633-2005")),
       ind=(OIL, H2S, EQUIP), w=6),
    _b("flowmeter", "flowmeter", "volume_flow", "m**3/h", "流量", "flow", "流量计", "flowmeter", "JJG 1033-2007",
       (C, V), [(0.01, 10), (1, 1000), (10, 10000)], (0.001, 0.002, 0.005),
       quals=(("液体涡轮", "liquid turbine"), ("气体涡轮", "gas turbine"), ("电磁", "electromagnetic", 2),
              ("液体超声", "liquid ultrasonic"), ("气体超声", "gas ultrasonic"), ("涡街", "vortex")), w=8),
    _b("mass-flowmeter", "flowmeter", "mass_flow", "kg/h", "质量流量", "mass flow", "质量流量计",
       "mass flowmeter", "JJG 1038-2008", (C, V), [(10, 3000), (100, 60000)], (0.0005, 0.001),
       quals=(("科里奥利", "Coriolis", 2), ("液体科里奥利", "liquid Coriolis"), ("氢气", "hydrogen")),
       ind=(OIL, H2S, H2V, BIO), w=5),
    _b("fuel-dispenser", "fuel-dispenser", "volume_flow", "L/min", "流量", "flow", "加油机", "fuel dispenser",
       "JJG 443-2023", (V,), [(5, 60)], (0.001, 0.002), ind=(OIL,), w=3),
    _b("heat-meter", "heat-meter", "energy", "kWh", "热量", "thermal energy", "热量表", "heat meter",
       "JJG 225-2001", (V, TE), [(0, 1000)], (0.01, 0.02), quals=(("", ""), ("超声波", "ultrasonic")), w=3),
    # ---- light, sound, magnetism, time, gas
    _b("lux-meter", "illuminance-meter", "illuminance", "lx", "照度", "illuminance", "照度计", "illuminance meter",
       "JJG 245-2005", (V, C), [(1, 2000), (10, 200000)], (0.02, 0.04), ind=(LIGHT, BIO, ICV), w=4),
    _b("sound-level", "sound-level-meter", "sound_pressure_level", "dBSPL", "声压级", "sound pressure level",
       "声级计", "sound level meter", "JJG 188-2017", (V, C), [(30, 130), (20, 140)], (0.0,), (0.3, 0.5),
       quals=(("1级", "class 1"), ("2级", "class 2"), ("积分", "integrating")), w=4),
    _b("microphone", "microphone", "sound_pressure_level", "dBSPL", "声压级", "sound pressure level", "传声器",
       "microphone", "JJG 175-2015", (C,), [(20, 140)], (0.0,), (0.1, 0.2),
       quals=(("测量", "measurement"), ("MEMS", "MEMS")), ind=(IOT, ICV, AERO), w=2),
    _b("teslameter", "teslameter", "magnetic_flux_density", "mT", "磁感应强度", "magnetic flux density", "特斯拉计",
       "teslameter", "JJG 242-1995", (C,), [(0.01, 100), (0.1, 2000)], (0.005, 0.01),
       quals=(("", ""), ("数字", "digital")), ind=(MAG, IOT, EV), w=4),
    _b("magnetometer", "magnetometer", "magnetic_flux_density", "uT", "磁感应强度", "magnetic flux density",
       "磁强计", "magnetometer", "JJF 1xxx (magnetometer)", (C,), [(0.01, 100)], (0.005,),
       quals=(("磁通门", "fluxgate"), ("三轴", "three-axis")), ind=(MAG, BDS, IOT), w=2),
    _b("stopwatch", "stopwatch", "time_interval", "s", "时间间隔", "time interval", "秒表", "stopwatch",
       "JJG 237-2010", (V, C), [(0, 86400)], (0.0,), (0.01, 0.05), quals=(("电子", "electronic"), ("机械", "mechanical")),
       w=3),
    _b("gas-detector", "gas-detector", "mass_concentration", "mg/m**3", "浓度", "concentration",
       "气体检测报警器", "gas detector", "JJG 693-2011", (V, C), [(0, 1000), (0, 10000)], (0.02, 0.03),
       quals=(("可燃", "combustible"), ("有毒", "toxic"), ("氢气", "hydrogen")), ind=(OIL, H2S, H2V, BIO, IC), w=5),
)
BASE_BY_SLUG = {b.slug: b for b in BASES}

SERVICE_ONLY = (
    (ServiceKind.CONSULTATION, Text("计量技术咨询", "metrology consultation"), "JJF 1069-2012"),
    (ServiceKind.STANDARD_SETUP, Text("计量标准建标", "measurement standard set-up"), "JJF 1033-2023"),
    (ServiceKind.MMS_SUPPORT, Text("测量管理体系", "measurement management system"), "GB/T 19022-2003"),
    (ServiceKind.LAB_OPENING, Text("实验室开放", "lab opening"), "in-house: open lab"),
    (ServiceKind.INSTRUMENT_SHARING, Text("仪器共享", "instrument sharing"), "in-house: sharing"),
)
SERVICE_SHARE = 0.03

CITIES = (("上海", "Shanghai", "上海", "Shanghai"), ("无锡", "Wuxi", "江苏", "Jiangsu"),
          ("常州", "Changzhou", "江苏", "Jiangsu"), ("盐城", "Yancheng", "江苏", "Jiangsu"),
          ("南京", "Nanjing", "江苏", "Jiangsu"), ("苏州", "Suzhou", "江苏", "Jiangsu"),
          ("杭州", "Hangzhou", "浙江", "Zhejiang"), ("宁波", "Ningbo", "浙江", "Zhejiang"),
          ("温州", "Wenzhou", "浙江", "Zhejiang"), ("合肥", "Hefei", "安徽", "Anhui"),
          ("芜湖", "Wuhu", "安徽", "Anhui"), ("马鞍山", "Ma'anshan", "安徽", "Anhui"))


# ---- families -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    fid: int
    base: Base
    qual: Qual
    app: tuple[str, str, int | None] | None
    decade: tuple[float, float]
    instrument: Text
    keywords: tuple[str, ...]
    w: float  # supply popularity

    @property
    def industry(self) -> int | None:
        return None if self.app is None else self.app[2]


def _name(base: Base, qual: Qual, app, in_name: bool) -> Text:
    zh = f"{app[0] if app and in_name else ''}{qual.zh}{base.name.zh}"
    en = " ".join(p for p in ((app[1] if app and in_name else ""), qual.en, base.name.en) if p)
    return Text(zh, en.replace("- ", "-"))


@functools.lru_cache(maxsize=1)
def families() -> tuple[Family, ...]:
    """The family universe, in a fixed order (deterministic; no randomness but a fixed hash)."""
    from metrofed.domain.instruments import heads_of

    out: list[Family] = []
    skipped = 0
    for base in BASES:
        apps = [None] + [a for a in APPS if a[2] is None or base.industries == ALL or a[2] in base.industries]
        for qual in base.quals:
            decades = [d for d in base.decades if (qual.max_hi is None or d[1] <= qual.max_hi)
                       and (qual.min_hi is None or d[1] >= qual.min_hi)]
            for app in apps:
                # the application word is part of the listed name ("风电扭矩扳手", "制药压力变送器"), as scopes
                # name application-specific lines; a centre never lists the same name and range twice for
                # two applications (that would be a near-copy), so a keyword alone is not enough
                name = _name(base, qual, app, True)
                if heads_of(name.zh) != (base.head,) or heads_of(name.en) != (base.head,):
                    skipped += 1
                    continue
                kw = (base.name.zh,) + ((app[0], app[1]) if app else ())
                aw = 3.0 if app is None else 1.0
                for d in decades:
                    out.append(Family(len(out), base, qual, app, d, name, kw, base.w * qual.w * aw))
    if skipped:
        raise AssertionError(f"{skipped} family names do not resolve to their head noun")
    return tuple(out)


def _chain(i: int) -> tuple[int, ...]:
    """A centre's industry chain: its own industry and the next one (suppliers/customers)."""
    a = i % len(INDUSTRIES)
    return a, (a + 1) % len(INDUSTRIES)


def make_centres(n: int = 60, seed: int = 7) -> list[CentreProfile]:
    """``n`` industry metrology test centres over the region's cities (50+ at the 2025 target). A centre is
    authorised for the JJG verification regulations of the bases its chain uses (~80 %) and of ~40 % of the
    general-purpose ones; every fourth holds type-evaluation authorisations."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cz, ce, pz, pe = CITIES[i % len(CITIES)]
        chain = _chain(i)
        iz, ie = INDUSTRIES[chain[0]]
        level = "国家" if i % 3 == 0 else pz + "省" if pz != "上海" else "上海市"
        verif, te = set(), set()
        for b in BASES:
            codes = {q.method or b.method for q in b.quals}
            mine = b.industries != ALL and any(c in b.industries for c in chain)
            p = 0.8 if mine else 0.4 if b.industries == ALL else 0.1
            if V in b.kinds and rnd.random() < p:
                verif |= codes
            if TE in b.kinds and i % 4 == 0 and rnd.random() < p:
                te |= {c.replace("JJG", "JJG(型评)") for c in codes}
        out.append(CentreProfile(
            centre_id=f"c{i:03d}-{ce.lower().replace(chr(39), '')}",
            name=Text(f"{level}{iz}产业计量测试中心", f"Industry Metrology Centre for {ie} ({ce} #{i})"),
            host_institution=f"{cz}市计量测试研究院",
            city=Text(cz, ce), province=Text(pz, pe),
            industries=tuple(x for c in chain for x in INDUSTRIES[c]),
            accreditations=(f"CNAS L{1000 + i:04d}",),
            authorisations=LegalAuthorisations(verification=frozenset(verif), type_evaluation=frozenset(te)),
        ))
    return out


def _centre_chain(p: CentreProfile) -> tuple[int, ...]:
    names = {zh for zh, _ in INDUSTRIES}
    return tuple(i for i, (zh, _) in enumerate(INDUSTRIES) if zh in p.industries and zh in names)


def _priority(p: CentreProfile, idx: int, seed: int) -> list[Family]:
    """The centre's family list, most likely first: weighted random order (Efraimidis–Spirakis keys)."""
    rnd = random.Random(f"{seed}/{idx}/{p.centre_id}")
    chain = set(_centre_chain(p))
    keyed = []
    rand = rnd.random
    for f in families():
        ind = f.industry
        a = 1.0 if ind is None else 8.0 if ind in chain else 0.15
        if f.base.industries != ALL and chain & set(f.base.industries):
            a *= 3.0
        keyed.append((-math.log(1.0 - rand()) / (f.w * a), f.fid))
    keyed.sort()
    fams = families()
    return [fams[i] for _, i in keyed]


_FACTOR_CACHE: dict[tuple[str, str], tuple[float, float]] = {}


def _factor(unit: str, kind: str) -> tuple[float, float]:
    f = _FACTOR_CACHE.get((unit, kind))
    if f is None:
        f = _FACTOR_CACHE[(unit, kind)] = si_factor(unit, kind)
    return f


_CANON: dict[str, str] = {}


def _canon(unit: str) -> str:
    """The unit as ``units.parse_unit`` spells it (what a decoded record carries)."""
    c = _CANON.get(unit)
    if c is None:
        c = _CANON[unit] = parse_unit(unit)
    return c


def _abs_per_unit(b: Base) -> float:
    """1 range unit in abs_unit (they differ only for temperatures, where both are kelvin-sized)."""
    return 1.0


def _band(b: Base, lo: float, hi: float, rel: float, ab: float) -> RangeBand:
    m, o = _factor(b.unit, b.quantity_kind)
    am, _ = _factor(b.abs_unit, b.quantity_kind)
    if rel == 0 and ab == 0:
        ab = max(abs(hi) * 0.001, 1e-9)
    return RangeBand(lo, hi, _canon(b.unit),
                     ExpandedUncertainty(relative=rel, absolute=ab, absolute_unit=_canon(b.abs_unit), k=2.0,
                                         coverage_probability=0.95, absolute_si=ab * am),
                     lo_si=lo * m + o, hi_si=hi * m + o)


_ROWS_PER_FAMILY = ((1, 35), (2, 30), (3, 20), (4, 10), (5, 5))


def _rows(f: Family, p: CentreProfile, rnd: random.Random, k: int, seq: int) -> list[Capability]:
    """``k`` distinct lines of one centre for one family: primary, then real scope variants."""
    b, q = f.base, f.qual
    lo, hi = f.decade
    method = q.method or b.method
    auth = p.authorisations
    kinds = [sk for sk in b.kinds if (sk is not V or method in auth.verification)
             and (sk is not TE or method.replace("JJG", "JJG(型评)") in auth.type_evaluation)]
    if not kinds:
        kinds = [C] if C in b.kinds else [T]
    rel, ab = rnd.choice(b.rel), rnd.choice(b.abs_)
    if rel > 0:
        # scopes state U as "a % of reading + b" with b set by the standard's span (DOMAIN.md: "0.045 % +
        # 0.10 Pa"): a 0–100 MPa bench has a coarser floor than a 0–1 MPa one, so a wide-range line does
        # not qualify for a narrow low-range need just because its relative part does
        ab += rel * max(abs(lo), abs(hi)) * rnd.choice((0.05, 0.1, 0.2)) * _abs_per_unit(b)
    variants = ["primary", "kind", "on-site", "method", "low-band", "two-band"]
    if len(kinds) == 1:
        variants.remove("kind")
    chosen = ["primary"] + rnd.sample(variants[1:], min(k - 1, len(variants) - 1))
    out = []
    for j, v in enumerate(chosen):
        sk, site, code, r, a = kinds[0], Site.LAB, method, rel, ab
        bands = None
        if v == "kind":
            sk = kinds[1 + (seq % (len(kinds) - 1))]
        elif v == "on-site":
            site, r, a = Site.ON_SITE, rel * 2, ab * 2
        elif v == "method":
            code = b.cal_method or method.replace("JJG", "JJF") + " (calibration)"
            if sk is V:
                sk = C if C in b.kinds else T
        elif v == "low-band":  # the lower part of the range with a finer standard
            bands = (_band(b, lo, lo + (hi - lo) * 0.25, r / 2, a / 2),)
        elif v == "two-band":
            cut = lo + (hi - lo) * 0.1
            bands = (_band(b, lo, cut, r / 2, a / 2), _band(b, cut, hi, r, a))
        if bands is None:
            bands = (_band(b, lo, hi, r, a),)
        if sk is TE:
            code = code.replace("JJG", "JJG(型评)")
        out.append(Capability(
            centre_id=p.centre_id, capability_id=f"f{f.fid}-{b.slug}-{sk.value[:3].replace('_', '')}-{v}-{seq}-{j}", version=1,
            service_kind=sk, quantity_kind=b.quantity_kind, measurand=b.measurand, instrument_type=f.instrument,
            method_code=code, bands=bands,
            conditions="(20 ± 2) °C" if b.quantity_kind != "temperature" else "",
            site=site, lead_time_days=rnd.randint(1, 20), price_cny=float(rnd.randint(50, 3000)),
            capacity_per_month=rnd.randint(10, 500),
            basis=code if sk in (V, TE) else p.accreditations[0], keywords=f.keywords))
    return out


def iter_capabilities(n: int, centres: list[CentreProfile] | None = None, seed: int = 11
                      ) -> Iterator[Capability]:
    """``n`` capabilities, deterministic for a given (n, centres, seed): each centre gets an equal share,
    ~3 % of it service-only offers, the rest 1–5 rows per family down its priority list."""
    centres = centres or make_centres()
    nc = len(centres)
    sizes, ws = zip(*_ROWS_PER_FAMILY)
    for idx, p in enumerate(centres):
        quota = n // nc + (1 if idx < n % nc else 0)
        rnd = random.Random(f"{seed}/rows/{p.centre_id}")
        n_svc = round(quota * SERVICE_SHARE)
        for j in range(n_svc):
            sk, name, code = SERVICE_ONLY[j % len(SERVICE_ONLY)]
            b = BASES[(idx * 7 + j) % len(BASES)]  # a topic per offer: "压力 计量技术咨询"
            yield Capability(p.centre_id, f"svc-{sk.value[:4].replace('_', '')}-{j}", 1, sk, "dimensionless", b.measurand, name, code,
                             lead_time_days=rnd.randint(3, 30), price_cny=float(rnd.randint(500, 20000)),
                             capacity_per_month=rnd.randint(2, 20), basis="",
                             keywords=(name.zh, b.measurand.zh))
        left = quota - n_svc
        if left <= 0:
            continue
        seq = 0
        for f in _priority(p, idx, seed):
            k = min(rnd.choices(sizes, ws)[0], left)
            for cap in _rows(f, p, rnd, k, seq):
                yield cap
            seq += 1
            left -= k
            if left <= 0:
                break
        else:
            raise ValueError(f"{n} capabilities exceed what {nc} centres can offer from {len(families())} families")


def make_capabilities(n: int, centres: list[CentreProfile] | None = None, seed: int = 11) -> list[Capability]:
    return list(iter_capabilities(n, centres, seed))


MEASURAND_ONLY_SHARE = 0.08


def make_needs(n: int = 300, seed: int = 5) -> list[dict]:
    """``n`` needs as keyword arguments for ``need_from_fields``. Named needs: a base by demand (w^1.3), a
    qualifier by its weight, named plainly ("压力变送器", "K型热电偶", "torque wrench") or, one in four, with an
    application word ("风电扭矩扳手"); 70 % zh. ~8 % name only the measurand (``instrument_type`` empty).
    Range: a sub-range of a decade of the family; tolerance 2–20x the typical U (some cannot be met)."""
    rnd = random.Random(seed)
    dw = [b.w ** 1.3 for b in BASES]
    out = []
    for _ in range(n):
        b = rnd.choices(BASES, dw)[0]
        q = rnd.choices(b.quals, [x.w for x in b.quals])[0]
        decades = [d for d in b.decades if (q.max_hi is None or d[1] <= q.max_hi)
                   and (q.min_hi is None or d[1] >= q.min_hi)] or list(b.decades)
        lo, hi = rnd.choice(decades)
        a = lo + (hi - lo) * rnd.choice((0.0, 0.0, 0.1, 0.2))
        z = lo + (hi - lo) * rnd.choice((0.3, 0.5, 0.8, 1.0))
        sk = rnd.choice(b.kinds + (None,))
        rel = max(b.rel)
        if rel > 0:
            tol = dict(tolerance_value=round(rel * 100 * rnd.choice((2, 4, 8, 20)), 6), tolerance_unit="%")
        else:
            tol = dict(tolerance_value=max(b.abs_) * rnd.choice((2, 4, 8, 20)), tolerance_unit=b.abs_unit)
        zh = rnd.random() < 0.7
        if rnd.random() < MEASURAND_ONLY_SHARE:
            instrument, measurand = "", (b.measurand.zh if zh else b.measurand.en)
        else:
            apps = [x for x in APPS if x[2] is not None and (b.industries == ALL or x[2] in b.industries)]
            app = rnd.choice(apps) if rnd.random() < 0.25 else None
            name = _name(b, q, app, True)
            instrument, measurand = (name.zh if zh else name.en), (b.measurand.zh if zh else b.measurand.en)
        out.append(dict(measurand=measurand, instrument_type=instrument, quantity_kind=b.quantity_kind,
                        range_min=a, range_max=z, unit=b.unit, service_kind=sk.value if sk else None, **tol))
    return out


def _fid(cap: Capability) -> int:
    """The family index of a generated measuring capability (its id starts with ``f<index>-``)."""
    return int(cap.capability_id.split("-", 1)[0][1:])


def describe(caps: list[Capability]) -> dict:
    """Figures a reader can judge the mix by: families, rows per (centre, family), rows per line."""
    meas = [c for c in caps if c.bands]
    fam_of = Counter()
    lines = Counter()
    for c in meas:
        fam_of[(c.centre_id, _fid(c))] += 1
        lines[(c.centre_id, c.instrument_type, c.service_kind, c.bands[0].lo_si, c.bands[-1].hi_si)] += 1
    fams = {f for _, f in fam_of}
    per_cf = sorted(fam_of.values())
    per_line = sorted(lines.values())
    groups = {(c.quantity_kind, c.service_kind, c.instrument_type, c.measurand, c.keywords) for c in meas}
    heads = Counter(families()[_fid(c)].base.head for c in meas)

    def q(xs, p):
        return xs[min(len(xs) - 1, int(p / 100 * (len(xs) - 1)))] if xs else 0

    return dict(capabilities=len(caps), families=len(fams), universe=len(families()),
                centre_family_pairs=len(fam_of), rows_per_centre_family=(q(per_cf, 50), q(per_cf, 99), per_cf[-1]),
                rows_per_line=(q(per_line, 50), q(per_line, 99), per_line[-1]), instrument_groups=len(groups),
                heads=len(heads), top_heads=heads.most_common(5))


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 1000
    centres = make_centres()
    caps = make_capabilities(n, centres)
    print(f"{len(centres)} centres, {len(caps)} capabilities")
    d = describe(caps)
    print(f"families used {d['families']:,} of {d['universe']:,}; (centre, family) pairs {d['centre_family_pairs']:,}; "
          f"rows per (centre, family) median/p99/max {d['rows_per_centre_family']}; rows per (centre, instrument, "
          f"kind, range) line median/p99/max {d['rows_per_line']}; instrument groups {d['instrument_groups']:,}; "
          f"head nouns {d['heads']}; top heads {d['top_heads']}")
    print("by service kind:", dict(Counter(c.service_kind.value for c in caps).most_common()))
    print("by quantity kind:", dict(Counter(c.quantity_kind for c in caps).most_common()))
    for c in caps[len(caps) // 2:len(caps) // 2 + 3]:
        print(c)
    for kw in make_needs(6):
        print(kw)


if __name__ == "__main__":
    main(sys.argv[1:])
