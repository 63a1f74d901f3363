"""instruments.judge: does a capability serve the instrument a need names? (zh and en, both directions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrofed.domain.instruments import accepts, capability_key, judge, need_key

# (id, need instrument, need measurand, capability instrument zh, capability instrument en, match?, why)
ROWS = [
    ("wrench-not-joint-sensor", "torque wrenches", "torque", "机器人关节扭矩传感器", "robot joint torque sensor", False,
     "wrench tester (ISO 6789 / JJG 707) ≠ torque standard machine"),
    ("wrench-not-dyno-transducer", "扭矩扳手", "", "试车台扭矩传感器", "test-bed torque transducer", False, "same"),
    ("joint-sensor-not-wrench", "扭矩传感器", "", "扭矩扳子", "torque wrench", False, "both directions"),
    ("wrench-zh-en", "扭矩扳手", "", "扭矩扳子", "torque wrench", True, "扳手 = 扳子 (JJG 707 name)"),
    ("wrench-en-zh", "torque wrench", "", "扭矩扳子", "", True, "en need, zh capability"),
    ("wrench-verification", "扭力扳手", "", "扭矩扳子检定装置", "torque wrench verification device", True,
     "a device named after wrenches: ambiguous, accepted weakly"),
    ("wrench-not-tester", "扭矩扳子检定仪", "", "扭矩扳子", "torque wrench", False,
     "a need for the tester is not served by a wrench bench"),
    ("wind-hydraulic-wrench", "液压扭矩扳手", "", "风电螺栓拉伸扭矩扳手", "", True, "head wrench"),
    ("pt-zh-en", "压力变送器", "", "", "pressure transmitter", True, "same head"),
    ("pt-hp", "pressure transmitter", "", "高压压力传感器/变送器", "high-pressure transducer / transmitter", True,
     "size words never exclude; the range check decides"),
    ("pt-transducer", "pressure transmitter", "", "压力传感器", "pressure transducer", True,
     "transmitter ≈ transducer: same pressure standard, electrical read-out (JJG 882 / JJG 860)"),
    ("gauge-not-pt", "压力表", "", "压力变送器", "pressure transmitter", False, "JJG 52 gauges ≠ JJG 882 transmitters"),
    ("pt-not-gauge", "pressure transmitter", "", "一般压力表", "general pressure gauge", False, "both directions"),
    ("gauge-digital", "一般压力表", "", "数字压力计", "digital pressure gauge", True, "indicating gauges (JJG 875)"),
    ("tc-k-base", "K型热电偶", "", "K/N 型廉金属热电偶", "type K/N base-metal thermocouple", True, "K in K/N"),
    ("tc-k-not-noble", "K型热电偶", "", "S/B 型贵金属热电偶", "type S/B noble-metal thermocouple", False, "K vs S/B"),
    ("tc-en-type-k", "thermocouple, type K", "", "贵金属热电偶", "noble-metal thermocouple", False, "K vs noble metal"),
    ("tc-s-generic", "S型热电偶", "", "热电偶", "", True, "unstated type is no contradiction"),
    ("tc-not-prt", "热电偶", "", "工业铂电阻温度计", "industrial platinum resistance thermometer", False, "TC ≠ PRT"),
    ("temp-sensor-prt", "温度传感器", "", "工业铂电阻", "industrial PRT", True, "the need names the sensor family"),
    ("thermometer-not-chamber", "温度计", "", "高低温试验箱", "climatic test chamber", False, "JJF 1101 ≠ thermometer"),
    ("dc-not-ac", "直流充电桩", "", "电动汽车交流充电桩", "EV AC charging point", False, "DC vs AC"),
    ("ac-not-dc-en", "AC charging point", "", "电动汽车非车载充电机", "EV off-board DC charger", False, "AC vs DC (非车载)"),
    ("dc-charger", "DC fast charger", "", "电动汽车非车载充电机", "EV off-board DC charger", True, "same"),
    ("charger-not-ammeter", "直流充电桩", "", "直流电流表", "DC ammeter", False, "a charger is not an ammeter"),
    ("water-meter", "water meter DN20", "", "饮用冷水水表", "cold potable water meter", True, "same"),
    ("water-not-gas", "水表", "", "膜式燃气表", "diaphragm gas meter", False, "different meters"),
    ("gas-diaphragm-not-ultrasonic", "超声波燃气表", "", "膜式燃气表", "diaphragm gas meter", False, "principle"),
    ("flow-liquid-not-gas", "液体涡轮流量计", "", "气体超声流量计", "ultrasonic gas flowmeter", False, "medium"),
    ("cmm", "CMM", "", "坐标测量机", "coordinate measuring machine (CMM)", True, "synonyms"),
    ("gaussmeter", "高斯计", "", "特斯拉计", "teslameter", True, "synonyms"),
    ("hygrometer", "湿度计", "", "温湿度计", "thermohygrometer", True, "head 湿度计"),
    ("balance-scale", "电子秤", "", "电子天平", "electronic balance", True, "weighing instruments"),
    ("weights-not-balance", "砝码", "", "电子天平", "electronic balance", False, "weights ≠ balances"),
    ("lidar-not-radar", "激光雷达", "", "毫米波雷达目标模拟器", "mm-wave radar target simulator", False, "different"),
    ("multimeter", "digital multimeters", "", "万用表", "", True, "plural folded"),
]

UNKNOWN_ROWS = [
    # (id, need instrument, need measurand, capability zh, capability en): never rejected, ranked by words
    ("measurand-only-transmitter", "", "压力", "压力变送器", "pressure transmitter"),
    ("measurand-only-gauge", "", "压力", "一般压力表", "general pressure gauge"),
    ("measurand-only-sensor", "", "pressure", "MEMS 压力传感器", "MEMS pressure sensor"),
    ("unknown-need", "压力扫描阀", "压力", "压力变送器", "pressure transmitter"),
    ("unknown-capability", "扭矩扳手", "扭矩", "风电传动链试验台扭矩测量系统", "wind drivetrain test-bench torque system"),
    ("unknown-both", "voltage monitor", "", "燃料电池电压巡检仪", "fuel cell voltage monitor"),
]


def test_table_is_big_enough():
    assert len(ROWS) >= 25
    assert len({r[0] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_judge(row):
    _, need_i, need_m, cap_zh, cap_en, expected, why = row
    m = judge(need_i, need_m, cap_zh, cap_en)
    assert m.match is expected, f"{why}: {m.why}"
    assert m.why and "\n" not in m.why
    if expected:
        assert 0.0 < m.relevance <= 1.0
    else:
        assert m.relevance == 0.0


@pytest.mark.parametrize("row", UNKNOWN_ROWS, ids=[r[0] for r in UNKNOWN_ROWS])
def test_unknown_or_measurand_only_never_rejects(row):
    _, need_i, need_m, cap_zh, cap_en = row
    m = judge(need_i, need_m, cap_zh, cap_en, "压力", "pressure")
    assert m.match and 0.0 <= m.relevance <= 0.5, m.why
    assert "word overlap" in m.why


def test_measurand_only_matches_every_pressure_capability_alike():
    rels = {judge("", "压力", zh, en, "压力", "pressure").relevance
            for zh, en in (("压力变送器", "pressure transmitter"), ("一般压力表", "general pressure gauge"),
                           ("数字压力计", "digital pressure gauge"))}
    assert rels == {0.5}


def test_relevance_orders_same_equivalent_unconfirmed():
    same = judge("K型热电偶", "", "K 型热电偶", "type K thermocouple").relevance
    unconfirmed = judge("K型热电偶", "", "热电偶", "thermocouple").relevance
    family = judge("pressure transmitter", "", "压力传感器", "pressure sensor").relevance
    assert same == 1.0 and unconfirmed == pytest.approx(0.9) and family == pytest.approx(0.8)


def test_rejection_names_both_instruments():
    m = judge("torque wrench", "", "机器人关节扭矩传感器", "robot joint torque sensor")
    assert "robot joint torque sensor" in m.why and "torque wrench" in m.why
    m = judge("直流充电桩", "", "电动汽车交流充电桩", "EV AC charging point")
    assert "AC" in m.why and "DC" in m.why


def test_cached_on_strings():
    a = judge("扭矩扳手", "", "扭矩扳子", "torque wrench")
    assert judge("扭矩扳手", "", "扭矩扳子", "torque wrench") is a


# -- parsed keys: the accept/reject decision depends only on (head keys, qualifiers) of both sides --------


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_accepts_on_parsed_keys_is_judges_decision(row):
    _, need_i, need_m, cap_zh, cap_en, expected, _why = row
    assert accepts(need_key(need_i, need_m), capability_key(cap_zh, cap_en)) is expected
    assert accepts(need_key(need_i, need_m), capability_key(cap_zh, cap_en, "压力", "pressure")) is \
        judge(need_i, need_m, cap_zh, cap_en, "压力", "pressure").match


@pytest.mark.parametrize("row", UNKNOWN_ROWS, ids=[r[0] for r in UNKNOWN_ROWS])
def test_unknown_instruments_are_accepted_on_keys_too(row):
    _, need_i, need_m, cap_zh, cap_en = row
    assert accepts(need_key(need_i, need_m), capability_key(cap_zh, cap_en, "压力", "pressure"))


def test_application_and_construction_words_share_one_key_qualifiers_do_not():
    wrench = capability_key("扭矩扳子", "torque wrench")
    assert capability_key("风电扭矩扳手", "wind-power torque wrench") == wrench
    assert capability_key("精密数显扭力扳手", "") == wrench
    assert capability_key("直流充电桩", "DC charger") != capability_key("交流充电桩", "AC charger")
    assert capability_key("K型热电偶", "") != capability_key("S型热电偶", "")
    assert capability_key("K型热电偶", "") != capability_key("热电偶", "")  # unstated is its own key
    assert capability_key("风电传动链试验台扭矩测量系统", "")[0] == ()  # unknown instrument: no heads
    # keywords never give heads: they are not part of the key (judge's relevance may still use them)
    assert judge("扭矩扳手", "", "未知系统", "", "", "", ("扭矩扳手",)).match


# text fragments: heads (zh/en, several per family), qualifiers (AC/DC, thermocouple types, medium, gas-meter
# principle), application/construction words the vocabulary ignores, devices, unknown instruments
_FRAG = st.sampled_from([
    "扭矩扳手", "torque wrench", "扭矩传感器", "torque sensor", "扭矩扳子检定装置", "torque wrench tester",
    "压力变送器", "pressure transmitter", "压力表", "pressure gauge", "数字压力计", "压力传感器",
    "热电偶", "thermocouple", "K型", "S型", "type K", "type S/B", "K/N 型", "廉金属", "贵金属", "铂电阻", "温度计",
    "充电桩", "charger", "直流", "交流", "非车载", "AC", "DC", "交直流", "电流表", "万用表",
    "流量计", "flowmeter", "液体", "气体", "燃气表", "gas meter", "膜式", "超声", "涡轮", "罗茨", "水表",
    "风电", "精密", "数显", "hydrogen", "wind", "MEMS", "高压", "", "", "压力扫描阀", "电压巡检仪", "试验台",
    "/", "、", " and ", "(", ")",
])
_TEXT = st.lists(_FRAG, max_size=5).map("".join)


@settings(max_examples=400, deadline=None)
@given(need_i=_TEXT, need_m=st.sampled_from(["", "压力", "温度", "扭矩", "电流", "流量"]), cap_zh=_TEXT,
       cap_en=_TEXT, cap_m=st.sampled_from(["", "压力", "温度", "流量", "扭矩"]),
       keywords=st.lists(_FRAG, max_size=2).map(tuple))
def test_decision_on_keys_equals_judge_for_arbitrary_texts(need_i, need_m, cap_zh, cap_en, cap_m, keywords):
    m = judge(need_i, need_m, cap_zh, cap_en, cap_m, "", keywords)
    assert accepts(need_key(need_i, need_m), capability_key(cap_zh, cap_en, cap_m, "")) is m.match
