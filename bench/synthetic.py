"""Deterministic synthetic federation: N realistic capabilities over 50+ centres, and matching needs.

Built from the domain types directly (no YAML, no pint per row: SI factors come from
``metrofed.domain.units.si_factor``, cached per unit). The mix follows DOMAIN.md: pressure gauges and
transmitters, thermocouples, torque wrenches, CMMs, EV chargers, water and gas meters, MEMS inertial
sensors, lidar ..., each with several range bands, uncertainty per band (relative and/or absolute), a
JJG/JJF code, and verification / calibration / testing / type-evaluation variants.

    from bench.synthetic import make_centres, make_capabilities, make_needs
    centres = make_centres(60)
    caps = make_capabilities(100_000, centres)       # same seed -> same rows, every time
    needs = make_needs(300)                          # kwargs for need_from_fields(...)

``python -m bench.synthetic 1000`` prints a sample and the mix.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Template:
    slug: str
    quantity_kind: str
    unit: str
    measurand: Text
    instrument: Text
    method: str
    kinds: tuple[ServiceKind, ...]
    ranges: tuple[tuple[float, float], ...]  # typical measuring ranges, in ``unit``
    rel: tuple[float, ...]  # relative expanded U options (fractions)
    abs_: tuple[float, ...]  # absolute expanded U options, in the difference form of ``unit``
    abs_unit: str
    keywords: tuple[str, ...] = ()
    weight: int = 10


def _t(slug, qk, unit, mz, me, iz, ie, method, kinds, ranges, rel, abs_=(0.0,), abs_unit=None, kw=(), w=10):
    return Template(slug, qk, unit, Text(mz, me), Text(iz, ie), method, kinds, tuple(ranges), tuple(rel),
                    tuple(abs_), abs_unit or unit, tuple(kw), w)


TEMPLATES: tuple[Template, ...] = (
    _t("pressure-gauge", "pressure", "MPa", "压力", "pressure", "一般压力表", "general pressure gauge",
       "JJG 52-2013", (V, C), [(-0.1, 0), (0, 0.6), (0, 1.6), (0, 6), (0, 25), (0, 60)],
       (0.0005, 0.001, 0.002), kw=("压力表", "gauge"), w=30),
    _t("pressure-transmitter", "pressure", "MPa", "压力", "pressure", "压力变送器", "pressure transmitter",
       "JJG 882-2019", (C, V, T), [(0, 0.1), (0, 1), (0, 10), (0, 25), (0, 60), (0, 100)],
       (0.0002, 0.0005, 0.001), (0.0, 2e-6), kw=("变送器", "transmitter"), w=30),
    _t("digital-manometer", "pressure", "kPa", "压力", "pressure", "数字压力计", "digital pressure gauge",
       "JJG 875-2019", (C, V), [(-100, 0), (0, 10), (0, 100), (0, 1000), (0, 7000)],
       (0.0001, 0.0002, 0.0005), (0.0, 0.002), kw=("数字压力计",), w=15),
    _t("barometer", "pressure", "hPa", "大气压力", "barometric pressure", "气压计", "barometer",
       "JJG 272-2007", (C,), [(500, 1100), (800, 1100)], (0.0001, 0.0003), (0.1, 0.2), w=4),
    _t("thermocouple", "temperature", "degC", "温度", "temperature", "工作用廉金属热电偶",
       "base-metal thermocouple", "JJF 1637-2017", (C,), [(300, 1200), (0, 800), (-40, 400)],
       (0.0,), (1.0, 1.5, 2.0), "delta_degC", kw=("热电偶", "K型", "N型"), w=15),
    _t("prt", "temperature", "degC", "温度", "temperature", "工业铂电阻温度计", "industrial platinum RTD",
       "JJG 229-2010", (V, C), [(-80, 300), (0, 420), (-200, 660)], (0.0,), (0.02, 0.05, 0.1), "delta_degC",
       kw=("铂电阻", "Pt100"), w=15),
    _t("climatic-chamber", "temperature", "degC", "温度", "temperature", "环境试验箱", "climatic chamber",
       "JJF 1101-2019", (C, T), [(-70, 150), (-40, 180)], (0.0,), (0.3, 0.5), "delta_degC",
       kw=("温湿度箱",), w=8),
    _t("torque-wrench", "torque", "N*m", "扭矩", "torque", "扭矩扳子", "torque wrench", "JJG 707-2014",
       (V, C), [(1, 20), (5, 100), (20, 200), (60, 340), (100, 1000), (200, 2000)], (0.003, 0.005, 0.01),
       kw=("扭矩扳手", "扳手", "torque tool"), w=20),
    _t("torque-sensor", "torque", "N*m", "扭矩", "torque", "扭矩传感器", "torque transducer", "JJF 1xxx-20xx",
       (C, T), [(0.1, 10), (1, 100), (10, 1000), (100, 5000)], (0.0005, 0.001, 0.002), w=8),
    _t("force-machine", "force", "kN", "力", "force", "材料试验机", "materials testing machine", "JJG 139-2014",
       (V, C), [(0.1, 10), (1, 100), (10, 600), (50, 2000)], (0.001, 0.003), kw=("试验机", "拉力"), w=12),
    _t("load-cell", "force", "kN", "力", "force", "称重传感器", "load cell", "JJG 669-2003",
       (C, T, TE), [(0.01, 1), (0.1, 50), (10, 500)], (0.0002, 0.0005), w=6),
    _t("balance", "mass", "g", "质量", "mass", "电子天平", "electronic balance", "JJG 1036-2008",
       (V, C), [(0, 220), (0, 2200), (0, 32000)], (0.0,), (0.0001, 0.001, 0.01), w=12),
    _t("cmm", "length", "mm", "长度", "length", "坐标测量机", "coordinate measuring machine", "JJF 1064-2010",
       (C,), [(0, 500), (0, 1000), (0, 2000)], (0.000003,), (0.0015, 0.002), kw=("三坐标", "CMM"), w=6),
    _t("caliper", "length", "mm", "长度", "length", "卡尺", "caliper", "JJG 30-2012", (V, C),
       [(0, 150), (0, 300), (0, 1000)], (0.0,), (0.005, 0.01), kw=("游标卡尺",), w=10),
    _t("lidar", "length", "m", "距离", "distance", "激光雷达", "lidar", "in-house: ICV-LR-01", (T, C),
       [(0.5, 300), (0.5, 150)], (0.0,), (0.002, 0.005), kw=("雷达", "智能网联"), w=4),
    _t("radar-speed", "velocity", "km/h", "速度", "speed", "毫米波雷达测速仪", "mm-wave radar speed meter",
       "JJG 528-2015", (V, C, T), [(0, 250), (20, 180)], (0.0,), (0.1, 0.3), w=4),
    _t("mems-gyro", "angular_velocity", "deg/s", "角速度", "angular rate", "MEMS陀螺仪", "MEMS gyroscope",
       "in-house: IOT-GY-02", (T, C), [(-2000, 2000), (-500, 500)], (0.0005, 0.001), w=5),
    _t("mems-accel", "acceleration", "m/s**2", "加速度", "acceleration", "MEMS加速度计", "MEMS accelerometer",
       "JJG 233-2008", (T, C), [(-490, 490), (-160, 160)], (0.005, 0.01), kw=("加速度计",), w=5),
    _t("ac-charger", "electrical_energy", "kWh", "电能", "electrical energy", "电动汽车交流充电桩",
       "EV AC charging point", "JJG 1148-2022", (V, TE), [(0, 1000)], (0.002, 0.005), kw=("充电桩", "charger"),
       w=6),
    _t("dc-charger", "electrical_energy", "kWh", "电能", "electrical energy", "电动汽车非车载充电机",
       "EV DC charger", "JJG 1149-2022", (V, TE), [(0, 1000)], (0.001, 0.002), kw=("充电桩", "charger"), w=6),
    _t("multimeter", "voltage", "V", "电压", "voltage", "数字多用表", "digital multimeter", "JJF 1587-2016",
       (C,), [(0, 1), (0, 10), (0, 1000)], (0.00001, 0.00005, 0.0001), (0.0, 1e-6), w=10),
    _t("current-shunt", "current", "A", "电流", "current", "分流器", "current shunt", "JJG 1xxx", (C,),
       [(0, 10), (0, 100), (0, 600)], (0.0001, 0.0005), w=5),
    _t("water-meter", "volume_flow", "m**3/h", "流量", "flow", "水表", "water meter", "JJG 162-2019",
       (V, TE), [(0.016, 4), (0.1, 40), (1, 600)], (0.002, 0.005), kw=("冷水水表",), w=8),
    _t("gas-meter", "volume_flow", "m**3/h", "流量", "flow", "膜式燃气表", "diaphragm gas meter",
       "JJG 577-2012", (V, TE), [(0.016, 2.5), (0.04, 6), (0.16, 160)], (0.003, 0.005), kw=("燃气表",), w=6),
    _t("flowmeter", "mass_flow", "kg/h", "质量流量", "mass flow", "科里奥利质量流量计", "Coriolis mass flowmeter",
       "JJG 1038-2008", (C, V), [(10, 3000), (100, 60000)], (0.0005, 0.001), w=5),
    _t("hygrometer", "relative_humidity", "percent", "相对湿度", "relative humidity", "温湿度计",
       "thermohygrometer", "JJF 1076-2020", (C,), [(10, 95), (5, 98)], (0.0,), (1.0, 1.5, 2.0), w=6),
    _t("lux-meter", "illuminance", "lx", "照度", "illuminance", "照度计", "illuminance meter", "JJG 245-2005",
       (V, C), [(1, 2000), (10, 200000)], (0.02, 0.04), kw=("照明",), w=4),
    _t("sound-level", "sound_pressure_level", "dBSPL", "声压级", "sound pressure level", "声级计",
       "sound level meter", "JJG 188-2017", (V, C), [(30, 130), (20, 140)], (0.0,), (0.3, 0.5), w=4),
    _t("gaussmeter", "magnetic_flux_density", "mT", "磁感应强度", "magnetic flux density", "特斯拉计",
       "teslameter", "JJG 242-1995", (C,), [(0.1, 2000), (0.01, 100)], (0.005, 0.01), kw=("磁性材料",), w=4),
    _t("tachometer", "rotational_speed", "rpm", "转速", "rotational speed", "转速表", "tachometer",
       "JJG 105-2019", (V, C), [(10, 20000), (30, 99999)], (0.0001, 0.0005), w=5),
    _t("stopwatch", "time_interval", "s", "时间间隔", "time interval", "秒表", "stopwatch", "JJG 237-2010",
       (V, C), [(0, 86400)], (0.0,), (0.01, 0.05), w=3),
)
SERVICE_ONLY = (
    (ServiceKind.CONSULTATION, "dimensionless", Text("计量技术咨询", "metrology consultation"), "JJF 1069-2012"),
    (ServiceKind.STANDARD_SETUP, "dimensionless", Text("计量标准建标", "measurement standard set-up"),
     "JJF 1033-2023"),
    (ServiceKind.MMS_SUPPORT, "dimensionless", Text("测量管理体系", "measurement management system"),
     "GB/T 19022-2003"),
    (ServiceKind.LAB_OPENING, "dimensionless", Text("实验室开放", "lab opening"), "in-house: open lab"),
    (ServiceKind.INSTRUMENT_SHARING, "dimensionless", Text("仪器共享", "instrument sharing"), "in-house: sharing"),
)

CITIES = (("上海", "Shanghai", "上海", "Shanghai"), ("无锡", "Wuxi", "江苏", "Jiangsu"),
          ("常州", "Changzhou", "江苏", "Jiangsu"), ("盐城", "Yancheng", "江苏", "Jiangsu"),
          ("南京", "Nanjing", "江苏", "Jiangsu"), ("苏州", "Suzhou", "江苏", "Jiangsu"),
          ("杭州", "Hangzhou", "浙江", "Zhejiang"), ("宁波", "Ningbo", "浙江", "Zhejiang"),
          ("温州", "Wenzhou", "浙江", "Zhejiang"), ("合肥", "Hefei", "安徽", "Anhui"),
          ("芜湖", "Wuhu", "安徽", "Anhui"), ("马鞍山", "Ma'anshan", "安徽", "Anhui"))
INDUSTRIES = (("智能网联汽车", "intelligent connected vehicles"), ("民用航空发动机", "aero engines"),
              ("海洋动力装备", "marine power equipment"), ("集成电路", "integrated circuits"),
              ("氢燃料电池汽车", "hydrogen fuel-cell vehicles"), ("储氢装备", "hydrogen storage"),
              ("智慧照明", "smart lighting"), ("生物医药", "biomedicine"), ("北斗导航", "BeiDou navigation"),
              ("物联网感知装备", "IoT sensing"), ("工业机器人", "industrial robots"),
              ("轨道交通装备", "rail transit equipment"), ("海上风电装备", "offshore wind"),
              ("海洋油气装备", "offshore oil and gas"), ("磁性材料", "magnetic materials"),
              ("新能源汽车储供能", "EV energy storage and charging"), ("智能装备", "intelligent equipment"))


def make_centres(n: int = 60, seed: int = 7) -> list[CentreProfile]:
    """``n`` industry metrology test centres spread over the region's cities (50+ at the 2025 target)."""
    rnd = random.Random(seed)
    verif_codes = sorted({t.method for t in TEMPLATES if V in t.kinds})
    te_codes = sorted({t.method for t in TEMPLATES if TE in t.kinds})
    out = []
    for i in range(n):
        cz, ce, pz, pe = CITIES[i % len(CITIES)]
        iz, ie = INDUSTRIES[i % len(INDUSTRIES)]
        level = "国家" if i % 3 == 0 else pz + "省" if pz != "上海" else "上海市"
        out.append(CentreProfile(
            centre_id=f"c{i:03d}-{ce.lower().replace(chr(39), '')}",
            name=Text(f"{level}{iz}产业计量测试中心", f"Industry Metrology Centre for {ie} ({ce} #{i})"),
            host_institution=f"{cz}市计量测试研究院",
            city=Text(cz, ce), province=Text(pz, pe), industries=(iz, ie),
            accreditations=(f"CNAS L{1000 + i:04d}",),
            authorisations=LegalAuthorisations(
                verification=frozenset(rnd.sample(verif_codes, k=max(1, len(verif_codes) * 2 // 3))),
                type_evaluation=frozenset(rnd.sample(te_codes, k=len(te_codes) // 2) if i % 4 == 0 else ())),
        ))
    return out


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


def _bands(t: Template, rnd: random.Random, lo: float, hi: float) -> tuple[RangeBand, ...]:
    """1-3 contiguous bands over [lo, hi], the lower ones finer in absolute terms."""
    m, o = _factor(t.unit, t.quantity_kind)
    am, _ = _factor(t.abs_unit, t.quantity_kind) if t.abs_unit else (1.0, 0.0)
    unit, abs_unit = _canon(t.unit), _canon(t.abs_unit)
    nb = rnd.choice((1, 1, 2, 3))
    cuts = sorted({lo, hi, *(lo + (hi - lo) * f for f in rnd.sample((0.1, 0.25, 0.5), nb - 1))})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        rel = rnd.choice(t.rel)
        ab = rnd.choice(t.abs_)
        if rel == 0 and ab == 0:
            ab = max(abs(b) * 0.001, 1e-9)
        out.append(RangeBand(a, b, unit, ExpandedUncertainty(relative=rel, absolute=ab, absolute_unit=abs_unit,
                                                               k=2.0, coverage_probability=0.95,
                                                               absolute_si=ab * am),
                             lo_si=a * m + o, hi_si=b * m + o))
    return tuple(out)


def iter_capabilities(n: int, centres: list[CentreProfile] | None = None, seed: int = 11
                      ) -> Iterator[Capability]:
    """``n`` capabilities, deterministic for a given (n, centres, seed). ~3 % are service-only offers."""
    centres = centres or make_centres()
    rnd = random.Random(seed)
    weights = [t.weight for t in TEMPLATES]
    for i in range(n):
        c = centres[(i * 7919) % len(centres)]
        if i % 33 == 32:
            sk, qk, name, code = SERVICE_ONLY[(i // 33) % len(SERVICE_ONLY)]
            yield Capability(c.centre_id, f"svc-{i}", 1, sk, qk, name, name, code,
                             lead_time_days=rnd.randint(3, 30), price_cny=float(rnd.randint(500, 20000)),
                             capacity_per_month=rnd.randint(2, 20), basis="", keywords=(name.zh,))
            continue
        t = rnd.choices(TEMPLATES, weights)[0]
        lo, hi = rnd.choice(t.ranges)
        if rnd.random() < 0.3:  # a centre's own variant of the range (within physical limits)
            hi = lo + (hi - lo) * rnd.choice((0.5, 0.8) if t.quantity_kind == "relative_humidity"
                                             else (0.5, 0.8, 1.5, 2.0))
        sk = rnd.choice(t.kinds)
        code = t.method if sk is not TE else t.method.replace("JJG", "JJG(型评)")
        yield Capability(
            centre_id=c.centre_id, capability_id=f"{t.slug}-{sk.value[:3]}-{i}", version=1, service_kind=sk,
            quantity_kind=t.quantity_kind, measurand=t.measurand, instrument_type=t.instrument,
            method_code=code, bands=_bands(t, rnd, lo, hi),
            conditions="(20 ± 2) °C" if t.quantity_kind != "temperature" else "",
            site=rnd.choice((Site.LAB, Site.LAB, Site.ON_SITE, Site.BOTH)),
            lead_time_days=rnd.randint(1, 20), price_cny=float(rnd.randint(50, 3000)),
            capacity_per_month=rnd.randint(10, 500), basis=f"CNAS L{1000 + i % 60:04d}" if sk is not V else code,
            keywords=t.keywords)


def make_capabilities(n: int, centres: list[CentreProfile] | None = None, seed: int = 11) -> list[Capability]:
    return list(iter_capabilities(n, centres, seed))


def make_needs(n: int = 300, seed: int = 5) -> list[dict]:
    """``n`` realistic needs as keyword arguments for ``need_from_fields``: a sub-range of a typical range,
    a tolerance a few times the typical uncertainty (some adequate, some not), mixed service kinds."""
    rnd = random.Random(seed)
    weights = [t.weight for t in TEMPLATES]
    out = []
    for _ in range(n):
        t = rnd.choices(TEMPLATES, weights)[0]
        lo, hi = rnd.choice(t.ranges)
        a = lo + (hi - lo) * rnd.choice((0.0, 0.0, 0.1, 0.2))
        b = lo + (hi - lo) * rnd.choice((0.5, 0.8, 1.0, 1.0))
        sk = rnd.choice(t.kinds + (None,))
        rel = max(t.rel)
        if rel > 0:
            tol = dict(tolerance_value=round(rel * 100 * rnd.choice((2, 4, 8, 20)), 6), tolerance_unit="%")
        else:
            tol = dict(tolerance_value=max(t.abs_) * rnd.choice((2, 4, 8, 20)), tolerance_unit=t.abs_unit)
        out.append(dict(measurand=t.measurand.zh, instrument_type=t.instrument.zh, quantity_kind=t.quantity_kind,
                        range_min=a, range_max=b, unit=t.unit, service_kind=sk.value if sk else None, **tol))
    return out


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 1000
    centres = make_centres()
    caps = make_capabilities(n, centres)
    print(f"{len(centres)} centres, {len(caps)} capabilities")
    print("by service kind:", dict(Counter(c.service_kind.value for c in caps).most_common()))
    print("by quantity kind:", dict(Counter(c.quantity_kind for c in caps).most_common()))
    for c in caps[:3]:
        print(c)
    print(make_needs(3))


if __name__ == "__main__":
    main(sys.argv[1:])
