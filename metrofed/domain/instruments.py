"""Does a capability serve the instrument a need names? — pure, explainable, zh and en.

A lab set up to calibrate robot joint torque *sensors* is not a torque-*wrench* calibration service (that
needs a torque wrench tester, ISO 6789 / JJG 707), even though quantity, range and TUR agree. The rule:

1. Both texts are normalised (NFKC, lower case, English plurals folded) and cut into segments at
   ``/ 、 , ; ( )`` ("转速表/转速传感器" names two instruments). In each segment the **head noun** is the
   vocabulary term that ends last (longest on a tie): "robot joint torque sensor" -> sensor,
   "风电螺栓拉伸扭矩扳手" -> wrench, "MEMS 压力传感器" -> sensor. ``HEADS`` is a small curated vocabulary
   of instrument head nouns with zh/en synonyms.
2. The need's heads come from its ``instrument_type`` (its ``measurand`` when that names none); the
   capability's from its ``instrument_type`` zh and en (its measurand when they name none). Keywords
   never give heads (they name the lab's own standards and topics: "piston gauge", "测功机"); they count
   only for the word-overlap relevance.
3. A capability head serves a need head when (``serves``): it is the same head (relevance 1.0); or an
   accepted equivalent listed in ``EQUIVALENT`` (0.7–0.8, each with its reason); or one side is the generic
   sensor/transducer family and the other a member of it (0.8: a "temperature sensor" need is served by a
   PRT capability; a "pressure transmitter" need by a "pressure sensor" capability, because JJG 882
   transmitters and JJG 860 transducers are calibrated on the same pressure standard with an electrical
   read-out). Anything else is a different instrument: **rejected**. Deliberately *not* equivalent:
   pressure gauge vs transmitter/sensor (JJG 52 dial gauges vs JJG 882 transmitters: different procedures
   and verdicts), torque wrench vs torque sensor (wrench tester vs torque standard machine), water/gas
   meter vs flowmeter, thermometer vs climatic chamber.
4. Qualifiers the need states must not contradict the capability's (``QUALIFIERS``): DC vs AC (直流/交流,
   非车载 = DC), thermocouple type letters (K/N/E/J/T base metal vs S/R/B noble metal), flowmeter medium
   (liquid vs gas), gas-meter principle (diaphragm vs ultrasonic vs turbine vs roots). Unstated on the
   capability's side is not a contradiction (a plain "热电偶" capability may take a type K need) but
   ranks a little lower (×0.9) than a capability that confirms it. Size words (高压 high-pressure, 微压,
   large) never exclude: the range check does that in numbers.
5. When the need names no head the vocabulary knows (only "压力", or an unlisted instrument), or the
   capability names none, nothing is rejected: relevance is the word overlap (en words, zh bigrams) of
   the need's text with the capability's instrument, measurand and keywords, scaled to 0–0.5.

A capability named after a verification device ("扭矩扳子检定装置", "charging-point verification device") is
ambiguous — the lab's own standard for torque wrenches, or the device it calibrates: it serves needs for
the device (1.0) and, weakly (0.5), needs for the instrument it is named after.

``judge(...)`` is cached on its string arguments: a million capabilities sharing a few hundred
instrument names cost a few hundred evaluations.

The accept/reject decision depends only on the two sides' head keys and qualifiers (keywords and word
overlap only move the relevance). ``capability_key(zh, en, measurand_zh, measurand_en)`` and
``need_key(instrument, measurand)`` give those parsed keys (cached per text), and ``accepts(need_key,
capability_key)`` the decision, equal to ``judge(...).match`` by construction (shared code, property-tested):
the catalog groups capabilities by key and asks ``accepts`` once per key, not ``judge`` once per raw text.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Head", "HEADS", "EQUIVALENT", "InstrumentMatch", "InstrumentKey", "judge", "heads_of", "describe_heads",
           "capability_key", "need_key", "accepts"]


@dataclass(frozen=True, slots=True)
class Head:
    key: str
    zh: str  # display name
    en: str
    terms: tuple[str, ...]  # zh substrings and en word sequences (singular), lower case
    sensor: bool = False  # a member of the sensor/transducer family
    generic: bool = False  # names the family itself (sensor, transducer, probe)
    device: bool = False  # a verification/calibration device: "X检定装置" also names X (ambiguously)


def _h(key, zh, en, terms, **kw) -> Head:
    return Head(key, zh, en, tuple(terms), **kw)


HEADS: tuple[Head, ...] = (
    # ---- sensors and transducers
    _h("sensor", "传感器", "sensor/transducer", ("传感器", "探头", "敏感元件", "sensor", "transducer", "probe", "pickup"),
       sensor=True, generic=True),
    _h("transmitter", "变送器", "transmitter", ("变送器", "transmitter"), sensor=True),
    _h("thermocouple", "热电偶", "thermocouple", ("热电偶", "thermocouple"), sensor=True),
    _h("prt", "铂电阻温度计", "platinum resistance thermometer",
       ("铂电阻温度计", "铂电阻", "热电阻", "platinum resistance thermometer", "resistance thermometer", "prt", "rtd",
        "pt100", "pt1000"), sensor=True),
    _h("thermistor", "热敏电阻", "thermistor", ("热敏电阻", "thermistor"), sensor=True),
    _h("thermometer", "温度计", "thermometer", ("温度计", "温度表", "thermometer"), sensor=True),
    _h("accelerometer", "加速度计", "accelerometer", ("加速度计", "加速度传感器", "accelerometer"), sensor=True),
    _h("gyroscope", "陀螺仪", "gyroscope", ("陀螺仪", "陀螺", "gyroscope", "gyro"), sensor=True),
    _h("imu", "惯性测量单元", "IMU", ("惯性测量单元", "惯性导航系统", "imu", "inertial measurement unit"), sensor=True),
    _h("load-cell", "称重传感器", "load cell", ("称重传感器", "load cell"), sensor=True),
    _h("microphone", "传声器", "microphone", ("传声器", "麦克风", "microphone"), sensor=True),
    # ---- pressure
    _h("pressure-gauge", "压力表", "pressure gauge",
       ("压力表", "真空表", "压力真空表", "精密压力表", "pressure gauge", "compound gauge", "manometer", "vacuum gauge")),
    _h("digital-pressure-gauge", "数字压力计", "digital pressure gauge",
       ("数字压力计", "数字压力表", "digital pressure gauge", "digital manometer")),
    _h("vacuum-meter", "真空计", "vacuum gauge", ("真空计", "vacuum gauge", "vacuum meter", "pirani")),
    _h("barometer", "气压计", "barometer", ("气压计", "气压表", "barometer")),
    # ---- torque and force
    _h("torque-wrench", "扭矩扳手", "torque wrench",
       ("扭矩扳手", "扭矩扳子", "扭力扳手", "力矩扳手", "扳手", "扳子", "torque wrench", "wrench", "spanner")),
    _h("torque-screwdriver", "扭矩螺丝刀", "torque screwdriver", ("扭矩螺丝刀", "扭矩起子", "螺丝刀", "torque screwdriver",
                                                               "screwdriver")),
    _h("testing-machine", "试验机", "testing machine", ("试验机", "testing machine", "test machine")),
    _h("force-gauge", "测力仪", "force gauge", ("测力仪", "测力计", "拉力计", "推拉力计", "force gauge", "dynamometer",
                                               "force meter")),
    # ---- speed, motion, vibration
    _h("tachometer", "转速表", "tachometer", ("转速表", "转速计", "tachometer", "rev counter")),
    _h("vibration-meter", "测振仪", "vibration meter", ("测振仪", "vibration meter")),
    _h("speed-meter", "测速仪", "speed meter", ("测速仪", "车速表", "speedometer", "speed meter", "speed gun")),
    # ---- electrical
    _h("multimeter", "万用表", "multimeter", ("万用表", "多用表", "multimeter", "dmm")),
    _h("ammeter", "电流表", "ammeter", ("电流表", "安培表", "ammeter")),
    _h("voltmeter", "电压表", "voltmeter", ("电压表", "伏特表", "voltmeter")),
    _h("clamp-meter", "钳形电流表", "clamp meter", ("钳形电流表", "钳形表", "clamp meter")),
    _h("power-meter", "功率计", "power meter", ("功率计", "功率表", "功率分析仪", "power meter", "power analyzer",
                                              "power analyser")),
    _h("electricity-meter", "电能表", "electricity meter", ("电能表", "电度表", "电表", "electricity meter", "energy meter",
                                                        "watt-hour meter", "watt hour meter", "kwh meter")),
    _h("charger", "充电桩", "EV charger", ("充电桩", "充电机", "充电设备", "charger", "charging point", "charging pile",
                                         "charging station", "charge point", "evse")),
    _h("shunt", "分流器", "shunt", ("分流器", "shunt")),
    # ---- flow and utility meters
    _h("water-meter", "水表", "water meter", ("水表", "water meter")),
    _h("gas-meter", "燃气表", "gas meter", ("燃气表", "煤气表", "gas meter")),
    _h("heat-meter", "热能表", "heat meter", ("热能表", "热量表", "heat meter")),
    _h("flowmeter", "流量计", "flowmeter", ("流量计", "flowmeter", "flow meter")),
    _h("fuel-dispenser", "加油机", "fuel dispenser", ("加油机", "fuel dispenser", "petrol pump")),
    _h("taximeter", "出租汽车计价器", "taximeter", ("计价器", "taximeter", "taxi meter")),
    # ---- length
    _h("cmm", "三坐标测量机", "CMM", ("三坐标测量机", "坐标测量机", "三坐标", "cmm", "coordinate measuring machine")),
    _h("laser-tracker", "激光跟踪仪", "laser tracker", ("激光跟踪仪", "laser tracker")),
    _h("lidar", "激光雷达", "lidar", ("激光雷达", "lidar")),
    _h("radar", "雷达", "radar", ("雷达", "radar")),
    _h("target-simulator", "目标模拟器", "target simulator", ("模拟器", "simulator")),
    _h("caliper", "卡尺", "caliper", ("卡尺", "caliper", "calliper")),
    _h("micrometer", "千分尺", "micrometer", ("千分尺", "micrometer")),
    _h("dial-indicator", "百分表", "dial indicator", ("百分表", "千分表", "dial indicator", "dial gauge")),
    _h("gauge-block", "量块", "gauge block", ("量块", "gauge block", "slip gauge")),
    _h("thickness-gauge", "测厚仪", "thickness gauge", ("测厚仪", "thickness gauge", "thickness meter")),
    _h("total-station", "全站仪", "total station / EDM", ("全站仪", "测距仪", "total station", "edm", "rangefinder")),
    _h("wafer", "晶圆", "wafer", ("晶圆", "wafer")),
    # ---- humidity, climate, thermal equipment
    _h("hygrometer", "湿度计", "hygrometer", ("湿度计", "温湿度计", "湿度表", "hygrometer", "thermohygrometer",
                                           "humidity meter")),
    _h("chamber", "试验箱", "climatic chamber", ("试验箱", "恒温恒湿箱", "温湿度箱", "培养箱", "干燥箱", "恒温箱", "温箱",
                                              "chamber", "incubator", "oven")),
    _h("furnace", "炉", "furnace", ("热处理炉", "furnace")),
    _h("radiation-thermometer", "辐射温度计", "radiation thermometer",
       ("红外测温仪", "红外温度计", "辐射温度计", "infrared thermometer", "radiation thermometer", "pyrometer")),
    # ---- mass
    _h("balance", "天平", "balance", ("天平", "balance")),
    _h("scale", "秤", "weighing scale", ("电子秤", "台秤", "地磅", "汽车衡", "weighing scale", "weighbridge")),
    _h("weight", "砝码", "weight", ("砝码", "weight")),
    # ---- magnetism, light, sound, others
    _h("teslameter", "特斯拉计", "teslameter", ("特斯拉计", "高斯计", "teslameter", "gaussmeter")),
    _h("magnetometer", "磁强计", "magnetometer", ("磁强计", "magnetometer")),
    _h("illuminance-meter", "照度计", "illuminance meter", ("照度计", "illuminance meter", "lux meter", "luxmeter")),
    _h("sound-level-meter", "声级计", "sound level meter", ("声级计", "sound level meter")),
    _h("anemometer", "风速计", "anemometer", ("风速计", "风速仪", "测风仪", "anemometer")),
    _h("gas-detector", "气体检测报警器", "gas detector", ("检测报警器", "报警器", "气体检测仪", "泄漏检测仪", "gas detector",
                                                      "leak detector", "gas alarm")),
    _h("stopwatch", "秒表", "stopwatch", ("秒表", "stopwatch")),
    # ---- verification / calibration devices (named after what they verify: see the module docstring)
    _h("device", "检定装置", "verification device", ("检定装置", "校准装置", "检定仪", "校验仪", "检验台", "校准器",
                                                   "verification device", "calibration device", "calibrator", "tester",
                                                   "checker"), device=True),
)

HEAD_BY_KEY: dict[str, Head] = {h.key: h for h in HEADS}

# Accepted equivalents (symmetric): (head, head) -> (relevance, reason). Everything else that is not the
# same head or the sensor family is a different instrument.
EQUIVALENT: dict[frozenset, tuple[float, str]] = {
    frozenset(("pressure-gauge", "digital-pressure-gauge")): (
        0.8, "dial and digital pressure gauges are both indicating gauges compared with a pressure standard "
             "(JJG 52 / JJG 875)"),
    frozenset(("thermometer", "prt")): (0.8, "thermometers with probes are calibrated by comparison in a bath, "
                                             "as PRTs are"),
    frozenset(("thermometer", "thermocouple")): (0.7, "a thermometer with a thermocouple probe is calibrated as "
                                                      "thermocouples are"),
    frozenset(("torque-wrench", "torque-screwdriver")): (0.8, "hand torque tools (ISO 6789): same kind of tester"),
    frozenset(("balance", "scale")): (0.8, "non-automatic weighing instruments, both tested with weights"),
    frozenset(("force-gauge", "sensor")): (0.8, "force gauges and force transducers are both calibrated on a force "
                                                "standard machine (JJG 455 / JJG 391)"),
    frozenset(("force-gauge", "load-cell")): (0.8, "both calibrated on a force standard machine"),
    frozenset(("tachometer", "sensor")): (0.7, "tachometers and speed probes are both calibrated against a "
                                               "standard speed source (JJG 105)"),
    frozenset(("teslameter", "magnetometer")): (0.8, "both calibrated in a reference field"),
    frozenset(("teslameter", "sensor")): (0.7, "a teslameter and a Hall probe are both calibrated in a reference "
                                               "field"),
    frozenset(("ammeter", "multimeter")): (0.8, "both calibrated with a multifunction calibrator"),
    frozenset(("voltmeter", "multimeter")): (0.8, "both calibrated with a multifunction calibrator"),
    frozenset(("clamp-meter", "ammeter")): (0.8, "both are current meters"),
    frozenset(("hygrometer", "sensor")): (0.8, "humidity sensors and hygrometers are both calibrated in a humidity "
                                               "generator"),
}

SENSOR_FAMILY_RELEVANCE = 0.8
UNCONFIRMED_QUALIFIER_FACTOR = 0.9
DEVICE_NAMESAKE_RELEVANCE = 0.5
OVERLAP_MAX = 0.5

# ---- qualifiers: (group, scope heads or None for any, [(value, terms)]) -----------------------------
_TC_BASE = frozenset("knejt")
_TC_NOBLE = frozenset("srb")

_QUALIFIERS: tuple[tuple[str, frozenset | None, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("current", None, (
        ("DC", ("直流", "非车载", "dc", "direct current")),
        ("AC", ("交流", "ac", "alternating current")),
    )),
    ("medium", frozenset({"flowmeter"}), (
        ("liquid", ("液体", "liquid", "水", "water", "油", "oil")),
        ("gas", ("气体", "gas", "空气", "air", "氢气", "hydrogen", "天然气")),
    )),
    ("principle", frozenset({"gas-meter"}), (
        ("diaphragm", ("膜式", "diaphragm")),
        ("ultrasonic", ("超声", "ultrasonic")),
        ("turbine", ("涡轮", "turbine")),
        ("roots", ("罗茨", "腰轮", "roots", "rotary")),
    )),
)
QUALIFIERS = tuple(g for g, _, _ in _QUALIFIERS) + ("thermocouple type",)

_QUAL_ZH = {"DC": "直流", "AC": "交流", "liquid": "液体", "gas": "气体", "diaphragm": "膜式", "ultrasonic": "超声",
            "turbine": "涡轮", "roots": "罗茨"}

# ---- normalisation ------------------------------------------------------------------------------
_SEP = re.compile(r"[/、,;|()\[\]（），；：:]+|\s+(?:and|or|&)\s+|[和及与或]")
_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]+")
_CJK = re.compile(r"[\u3400-\u9fff]")
# _QUALIFIERS with each term's kind worked out once: (term, 0 CJK | 1 one word | 2 several words (padded))
_QUALIFIER_TERMS = tuple(
    (group, scope, tuple((value, tuple((t, 0) if _CJK.search(t) else (t, 1) if " " not in t else (f" {t} ", 2)
                                       for t in terms)) for value, terms in values))
    for group, scope, values in _QUALIFIERS)


def _singular(w: str) -> str:
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "sses")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def _tokens(seg: str) -> str:
    """A segment as ' '-joined tokens: en words singular, CJK runs kept whole (so 'torque wrenches' and
    '扭矩扳手' both become searchable)."""
    return " ".join(_singular(t) if not _CJK.match(t) else t for t in _TOKEN.findall(seg))


_TERMS: list[tuple[str, bool, Head]] = []  # (term, is_cjk, head)
for _hd in HEADS:
    for _t in _hd.terms:
        _cjk_term = bool(_CJK.search(_t))
        _TERMS.append((_t if _cjk_term else " ".join(_singular(w) for w in _t.split()), _cjk_term, _hd))


# term by its first character: (position in _TERMS, term, is CJK, head)
_TERMS_BY_FIRST: dict[str, list[tuple[int, str, bool, Head]]] = {}
for _i, (_t, _cjk_term, _hd) in enumerate(_TERMS):
    _TERMS_BY_FIRST.setdefault(_t[0], []).append((_i, _t, _cjk_term, _hd))


def _find(s: str) -> list[tuple[int, int, Head]]:
    """Every vocabulary match in the token string ``s``: (start, end, head) -- CJK terms anywhere, others as
    whole tokens; in vocabulary order, then by position (the order a tie in ``_segment_heads`` keeps). Only
    the terms starting with the character at hand are tried at each position."""
    hits = []
    n = len(s)
    by_first = _TERMS_BY_FIRST
    for i, ch in enumerate(s):
        terms = by_first.get(ch)
        if terms is None:
            continue
        for ti, term, cjk, hd in terms:
            if s.startswith(term, i):
                end = i + len(term)
                if cjk or ((i == 0 or s[i - 1] == " ") and (end == n or s[end] == " ")):
                    hits.append((ti, i, end, hd))
    hits.sort(key=_TERM_ORDER)
    return [(a, b, hd) for _, a, b, hd in hits]


_TERM_ORDER = operator.itemgetter(0, 1)


@dataclass(frozen=True, slots=True)
class _Heads:
    heads: tuple[tuple[str, float], ...]  # (head key, factor): 1.0, or 0.5 for a device's namesake
    qualifiers: tuple[tuple[str, frozenset], ...]  # (group, values)


def _segment_heads(text: str, capability_side: bool) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for seg in _SEP.split(_norm(text)):
        s = _tokens(seg)
        if not s:
            continue
        found = _find(s)
        if not found:
            continue
        # the head: the match ending last, the longest on a tie
        found.sort(key=lambda m: (m[1], m[1] - m[0]))
        start, end, hd = found[-1]
        out.append((hd.key, 1.0))
        if hd.device and capability_side:
            before = [m for m in found if m[1] <= start and not m[2].device]
            if before:
                out.append((before[-1][2].key, DEVICE_NAMESAKE_RELEVANCE))
    return out


_TC_LETTERS = re.compile(r"(?<![a-z])([knejtsrb](?:\s*/\s*[knejtsrb])*)\s*(?:型|分度|[-\s]*type(?![a-z]))")
_TC_TYPE_FIRST = re.compile(r"type[-\s]*([knejtsrb](?:\s*/\s*[knejtsrb])*)(?![a-z])")


def _qualifiers(text: str, head_keys: set[str]) -> list[tuple[str, frozenset]]:
    t = _norm(text)
    tokens = _TOKEN.findall(t)
    words = set(tokens)
    joined = f" {' '.join(tokens)} "
    out = []
    for group, scope, values in _QUALIFIER_TERMS:
        if scope is not None and not (scope & head_keys):
            continue
        got = set()
        for value, terms in values:
            for term, kind in terms:
                # CJK: anywhere in the text; a word: a token; several words: consecutive tokens
                if term in (t if kind == 0 else words if kind == 1 else joined):
                    got.add(value)
                    break
        if "交直流" in t:
            got |= {"AC", "DC"} if group == "current" else set()
        if got:
            out.append((group, frozenset(got)))
    if "thermocouple" in head_keys:
        letters: set[str] = set()
        for rx in (_TC_LETTERS, _TC_TYPE_FIRST):
            for m in rx.finditer(t):
                letters |= {c for c in m.group(1) if c.isalpha()}
        if not letters:
            if "廉金属" in t or "base-metal" in t or "base metal" in t:
                letters = set(_TC_BASE)
            elif "贵金属" in t or "noble-metal" in t or "noble metal" in t or "precious" in t:
                letters = set(_TC_NOBLE)
        if letters:
            out.append(("thermocouple type", frozenset(c.upper() for c in letters)))
    return out


def _word_tokens(text: str) -> set[str]:
    """en words (singular, ≥ 2 letters) and zh bigrams (single characters stand alone)."""
    out: set[str] = set()
    for t in _TOKEN.findall(_norm(text)):
        if _CJK.match(t):
            if len(t) == 1:
                out.add(t)
            out.update(t[i:i + 2] for i in range(len(t) - 1))
        elif len(t) >= 2 and not t.isdigit():
            out.add(_singular(t))
    return out


# Sized above the number of distinct instrument texts of a 1M-row catalog (~16k groups, both sides).
@functools.lru_cache(maxsize=262_144)
def _heads_quals(instrument: str, measurand: str, capability_side: bool) -> tuple[tuple, tuple]:
    """(heads, qualifiers) of one side: ((head key, factor), ...) sorted, ((group, values), ...)."""
    heads = _segment_heads(instrument, capability_side)
    if not heads:
        heads = _segment_heads(measurand, capability_side)
    merged: dict[str, float] = {}
    for k, f in heads:
        merged[k] = max(merged.get(k, 0.0), f)
    quals = _qualifiers(f"{instrument} {measurand}", set(merged))
    return tuple(sorted(merged.items())), tuple(quals)


def _profile(instrument: str, measurand: str, capability_side: bool) -> _Heads:
    # not cached itself: _heads_quals is, and a second cache of the same parse as objects would only add
    # a long-lived tracked object per text for the cyclic collector to traverse
    return _Heads(*_heads_quals(instrument, measurand, capability_side))


def capability_tokens(cap_instrument_zh: str, cap_instrument_en: str, cap_measurand_zh: str, cap_measurand_en: str,
                      cap_keywords: tuple[str, ...]) -> frozenset[str]:
    """The capability's side of judge's word overlap -- the very cache entry judge reads (the catalog index
    asks once per distinct text when it first meets one, so that no request pays for tokenising it)."""
    return _profile_tokens(*_cap_texts(cap_instrument_zh, cap_instrument_en, cap_measurand_zh, cap_measurand_en),
                           " ".join(cap_keywords))


def need_tokens(need_instrument: str, need_measurand: str) -> frozenset[str]:
    """The need's side of judge's word overlap."""
    return _profile_tokens(need_instrument, need_measurand, "")


@functools.lru_cache(maxsize=262_144)
def _profile_tokens(instrument: str, measurand: str, extra: str) -> frozenset[str]:
    """The words of a side, for ranking by overlap -- only when a side names no known instrument (tokenising
    every capability text a request meets would cost more than all the rest of judge)."""
    return frozenset(_word_tokens(f"{instrument} {measurand} {extra}"))


# ---- parsed instrument keys: what the accept/reject decision of ``judge`` depends on -----------------
# A key is (head keys sorted, qualifiers): ((str, ...), ((group, frozenset of values), ...)). Relevance may
# depend on more (the device-namesake factor, word overlap for unknown instruments), the decision does not.
InstrumentKey = tuple


def _cap_texts(cap_instrument_zh: str, cap_instrument_en: str, cap_measurand_zh: str,
               cap_measurand_en: str) -> tuple[str, str]:
    """The capability side's (instrument, measurand) texts exactly as ``judge`` profiles them."""
    return f"{cap_instrument_zh} / {cap_instrument_en}", f"{cap_measurand_zh} / {cap_measurand_en}"


@functools.lru_cache(maxsize=262_144)
def capability_key(cap_instrument_zh: str, cap_instrument_en: str, cap_measurand_zh: str = "",
                   cap_measurand_en: str = "") -> InstrumentKey:
    """The parsed instrument of a capability (head keys + qualifiers): equal keys are accepted or rejected
    alike by every need (``judge(...).match == accepts(need_key(...), capability_key(...))``)."""
    heads, quals = _heads_quals(*_cap_texts(cap_instrument_zh, cap_instrument_en, cap_measurand_zh,
                                            cap_measurand_en), True)
    return tuple(k for k, _ in heads), quals


@functools.lru_cache(maxsize=65_536)
def need_key(need_instrument: str, need_measurand: str = "") -> InstrumentKey:
    """The parsed instrument of a need (head keys + qualifiers), for :func:`accepts`."""
    heads, quals = _heads_quals(need_instrument, need_measurand, False)
    return tuple(k for k, _ in heads), quals


def _conflict(need_quals: tuple, cap_quals: tuple) -> tuple[str, frozenset, frozenset] | None:
    """The first qualifier group the need states and the capability contradicts: (group, cap, need)."""
    cap_q = dict(cap_quals)
    for group, values in need_quals:
        cv = cap_q.get(group)
        if cv is not None and not (cv & values):
            return group, cv, values
    return None


@functools.lru_cache(maxsize=262_144)
def accepts(need: InstrumentKey, cap: InstrumentKey) -> bool:
    """``judge``'s accept/reject decision from the two parsed keys alone (no texts, no relevance)."""
    need_heads, need_quals = need
    cap_heads, cap_quals = cap
    if not need_heads or not cap_heads:
        return True  # ranked by word overlap, never rejected
    if not any(serves(ck, nk) is not None for nk in need_heads for ck in cap_heads):
        return False
    return _conflict(need_quals, cap_quals) is None


accepts_uncached = accepts.__wrapped__  # see judge_uncached


def heads_of(text: str) -> tuple[str, ...]:
    """The head keys a need's instrument text names (for tests and tooling)."""
    return tuple(k for k, _ in _profile(text, "", False).heads)


def describe_heads(keys) -> str:
    return " / ".join(f"{HEAD_BY_KEY[k].zh} {HEAD_BY_KEY[k].en}" for k in keys)


def serves(cap_head: str, need_head: str) -> tuple[float, str] | None:
    """(relevance, reason) when a capability for ``cap_head`` serves a need for ``need_head``, else None."""
    if cap_head == need_head:
        return 1.0, "same instrument"
    eq = EQUIVALENT.get(frozenset((cap_head, need_head)))
    if eq is not None:
        return eq
    c, n = HEAD_BY_KEY[cap_head], HEAD_BY_KEY[need_head]
    if n.generic and c.sensor:
        return SENSOR_FAMILY_RELEVANCE, f"the need names the sensor family; the capability is for {c.en}"
    if c.generic and n.sensor:
        return SENSOR_FAMILY_RELEVANCE, (f"{n.en} is calibrated like the sensors/transducers the capability takes "
                                         f"(same standard, electrical read-out)")
    return None


@dataclass(frozen=True, slots=True)
class InstrumentMatch:
    match: bool  # False: the capability is for another instrument (INSTRUMENT_TYPE)
    relevance: float  # 0..1, added to the ranking score (routing.ScoreWeights.instrument)
    why: str  # one clause for the rejection reason or the candidate's explanation


def _name(zh: str, en: str) -> str:
    zh, en = (zh or "").strip(), (en or "").strip()
    if zh and en and zh != en:
        return f"{zh} ({en})"
    return zh or en or "(unnamed)"


def _qual_text(group: str, values: frozenset) -> str:
    vs = sorted(values)
    if group == "thermocouple type":
        return f"type {'/'.join(vs)}"
    return "/".join(f"{v} ({_QUAL_ZH[v]})" if v in _QUAL_ZH else v for v in vs)


def overlap_relevance(overlap: float) -> float:
    """judge's relevance for a capability ranked by word overlap: ``overlap`` the share of the need's words
    its text has."""
    return round(OVERLAP_MAX * overlap, 6)


def _overlap(need_instrument: str, need_measurand: str, cap_texts: tuple[str, str],
             cap_keywords: tuple[str, ...]) -> float:
    n_tok = _profile_tokens(need_instrument, need_measurand, "")
    return len(n_tok & _profile_tokens(*cap_texts, " ".join(cap_keywords))) / len(n_tok) if n_tok else 0.0


@functools.lru_cache(maxsize=262_144)
def judge(need_instrument: str, need_measurand: str, cap_instrument_zh: str, cap_instrument_en: str,
          cap_measurand_zh: str = "", cap_measurand_en: str = "",
          cap_keywords: tuple[str, ...] = ()) -> InstrumentMatch:
    """Does the capability (its instrument and measurand, zh/en, and keywords) serve the need's instrument?"""
    need = _profile(need_instrument, need_measurand, False)
    cap_texts = _cap_texts(cap_instrument_zh, cap_instrument_en, cap_measurand_zh, cap_measurand_en)
    cap = _profile(*cap_texts, True)
    cap_name = _name(cap_instrument_zh, cap_instrument_en)
    need_name = (need_instrument or need_measurand).strip() or "(unnamed)"
    if not need.heads or not cap.heads:
        overlap = _overlap(need_instrument, need_measurand, cap_texts, cap_keywords)
        rel = overlap_relevance(overlap)
        if not need.heads:
            why = (f"the need names no instrument the vocabulary knows ({need_name}): ranked by word overlap "
                   f"with {cap_name} ({overlap:.0%})")
        else:
            why = (f"{cap_name} is not in the instrument vocabulary: ranked by word overlap with {need_name} "
                   f"({overlap:.0%})")
        return InstrumentMatch(True, rel, why)
    best: tuple[float, str, str, str] | None = None  # (relevance, reason, need head, cap head)
    for nk, _ in need.heads:
        for ck, factor in cap.heads:
            s = serves(ck, nk)
            if s is None:
                continue
            rel = s[0] * factor
            reason = s[1] if factor == 1.0 else (f"named after a device for {HEAD_BY_KEY[ck].en}: the lab's standard "
                                                 f"for it, or a device it calibrates (ambiguous)")
            if best is None or rel > best[0]:
                best = (rel, reason, nk, ck)
    if best is None:
        return InstrumentMatch(False, 0.0, (
            f"{cap_name} [{describe_heads(k for k, _ in cap.heads)}], not {need_name} "
            f"[{describe_heads(k for k, _ in need.heads)}]: a different instrument"))
    rel, reason, nk, ck = best
    conflict = _conflict(need.qualifiers, cap.qualifiers)
    if conflict is not None:
        group, cv, values = conflict
        return InstrumentMatch(False, 0.0, (
            f"{cap_name} [{_qual_text(group, cv)}], not {need_name} [{_qual_text(group, values)}]: "
            f"contradicting {group}"))
    cap_q = dict(cap.qualifiers)
    confirmed = all(group in cap_q for group, _ in need.qualifiers)
    if not confirmed:
        rel *= UNCONFIRMED_QUALIFIER_FACTOR
        reason += "; the need's " + ", ".join(_qual_text(g, v) for g, v in need.qualifiers if g not in cap_q) + \
            " not stated by the capability"
    if nk == ck:
        why = f"instrument {cap_name} serves {need_name} ({reason}: {HEAD_BY_KEY[nk].en})"
    else:
        why = (f"instrument {cap_name} [{HEAD_BY_KEY[ck].en}] serves {need_name} [{HEAD_BY_KEY[nk].en}] "
               f"({reason})")
    return InstrumentMatch(True, round(rel, 6), why)


# The router's own, not remembered across calls: its answers depend on the need, so a process-wide cache of
# them grows with every new need and each entry is a long-lived object the cyclic collector then traverses
# (inside later requests). The router memoises them per call instead, by capability text.
judge_uncached = judge.__wrapped__
