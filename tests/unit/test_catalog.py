"""The federated catalog projection: version rules, tombstones, snapshots, index and search."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrofed.domain.capability import (
    Capability,
    CentreProfile,
    ExpandedUncertainty,
    LegalAuthorisations,
    RangeBand,
    ServiceKind,
    Text,
)
from metrofed.domain.catalog import (
    Catalog,
    CatalogBuilder,
    CatalogSnapshot,
    Stamp,
    covers,
    joined_coverage,
    overlaps,
)

CAL = ServiceKind.CALIBRATION
VER = ServiceKind.VERIFICATION


def centre(cid: str, zh: str, en: str, city=("上海", "Shanghai"), province=("上海", "Shanghai")) -> CentreProfile:
    return CentreProfile(cid, Text(zh, en), "host institute", Text(*city), Text(*province))


def mpa(lo: float, hi: float, rel: float = 0.0005, abs_si: float = 0.0) -> RangeBand:
    return RangeBand(lo, hi, "MPa", ExpandedUncertainty(relative=rel, absolute=abs_si, absolute_unit="Pa",
                                                        absolute_si=abs_si), lo_si=lo * 1e6, hi_si=hi * 1e6)


def nm(lo: float, hi: float, rel: float = 0.003) -> RangeBand:
    return RangeBand(lo, hi, "N*m", ExpandedUncertainty(relative=rel), lo_si=lo, hi_si=hi)


def cap(cid: str, capid: str, version: int = 1, *, sk=CAL, qk="pressure", bands=None,
        inst=("压力变送器", "pressure transmitter"), meas=("压力", "pressure"), code="JJG 882-2019",
        keywords=()) -> Capability:
    return Capability(cid, capid, version, sk, qk, Text(*meas), Text(*inst), code,
                      bands=tuple(bands if bands is not None else [mpa(0, 25)]), keywords=tuple(keywords))


def torque_wrench(cid="cz-robot", capid="torque-wrench", version=1, sk=CAL, lo=1, hi=2000):
    return cap(cid, capid, version, sk=sk, qk="torque", bands=[nm(lo, hi)], inst=("扭矩扳手", "torque wrench"),
               meas=("扭矩", "torque"), code="JJG 707-2014", keywords=("扳手",))


def pressure_gauge(cid="hz-oil", capid="pressure-gauge", version=1):
    return cap(cid, capid, version, sk=VER, bands=[mpa(-0.1, 0), mpa(0, 60)], inst=("一般压力表", "pressure gauge"),
               code="JJG 52-2013", keywords=("压力表",))


def loaded(*caps: Capability, centres=()) -> Catalog:
    cat = Catalog()
    b = cat.rebuild()
    for i, p in enumerate(centres):
        b.upsert_centre(p, Stamp(i))
    for i, c in enumerate(caps):
        b.upsert_capability(c, Stamp(1000 + i))
    cat.install(b)
    return cat


CENTRES = (
    centre("sh-icv", "国家智能网联汽车产业计量测试中心", "National ICV Metrology Centre"),
    centre("cz-robot", "国家智能工业机器人产业计量测试中心", "National Industrial Robot Metrology Centre",
           city=("常州", "Changzhou"), province=("江苏", "Jiangsu")),
    centre("hz-oil", "国家海洋油气资源开发装备产业计量测试中心", "National Offshore Oil and Gas Equipment Centre",
           city=("杭州", "Hangzhou"), province=("浙江", "Zhejiang")),
)


# -- version rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("live", [True, False], ids=["live", "builder"])
def test_revision_replaces_and_stale_version_is_ignored(live):
    v1 = cap("sh-icv", "pt", 1, bands=[mpa(0, 25)])
    v2 = cap("sh-icv", "pt", 2, bands=[mpa(0, 100)], inst=("数字压力计", "digital manometer"))
    cat = loaded(v1) if live else Catalog()
    if live:
        assert cat.upsert_capability(v2, Stamp(5)) is True
        assert cat.upsert_capability(v1, Stamp(6)) is False  # late older version
        assert cat.upsert_capability(v2, Stamp(7)) is False  # replay of the same version
    else:
        b = cat.rebuild()
        assert b.upsert_capability(v1)
        assert b.upsert_capability(v2)
        assert not b.upsert_capability(v1)
        cat.install(b)
    s = cat.current()
    assert len(s) == 1
    assert s.get("sh-icv", "pt").version == 2
    # the index and the text index follow the revision, with no trace of v1
    assert [c.version for c in s.candidates("pressure", [CAL], 50e6, 90e6)] == [2]
    assert s.search("压力变送器").total == 0
    assert s.search("digital manometer").total == 1
    assert s.stats().by_centre == {"sh-icv": 1}


@pytest.mark.parametrize("live", [True, False], ids=["live", "builder"])
def test_tombstone_removes_from_search_candidates_and_stats(live):
    tw, pg = torque_wrench(), pressure_gauge()
    if live:
        cat = loaded(tw, pg, centres=CENTRES)
        assert cat.remove_capability("cz-robot", "torque-wrench", Stamp(50))
    else:
        cat = Catalog()
        b = cat.rebuild()
        b.upsert_capability(tw)
        b.upsert_capability(pg)
        assert b.remove_capability("cz-robot", "torque-wrench", Stamp(50))
        cat.install(b)
    s = cat.current()
    assert s.get("cz-robot", "torque-wrench") is None
    assert s.search("扭矩扳手").total == 0
    assert s.search("torque wrench").total == 0
    assert s.search("").total == 1
    assert s.candidates("torque", [CAL], 20, 200) == []
    assert s.stats().by_quantity_kind == {"pressure": 1}
    assert s.stats().capabilities == 1


def test_withdrawn_capability_stays_withdrawn_until_a_newer_version():
    cat = loaded(torque_wrench(version=3))
    cat.remove_capability("cz-robot", "torque-wrench", Stamp(10))
    assert cat.upsert_capability(torque_wrench(version=3), Stamp(11)) is False  # replayed old event
    assert cat.upsert_capability(torque_wrench(version=2), Stamp(12)) is False
    assert cat.current().search("torque wrench").total == 0
    assert cat.upsert_capability(torque_wrench(version=4), Stamp(13)) is True  # republished
    assert cat.current().search("torque wrench").total == 1


def test_remove_centre_drops_its_capabilities_profile_and_freshness():
    cat = loaded(torque_wrench(), torque_wrench(capid="tw2"), pressure_gauge(), centres=CENTRES)
    assert cat.remove_centre("cz-robot")
    s = cat.current()
    assert len(s) == 1 and s.centre("cz-robot") is None and cat.freshness("cz-robot") is None
    assert s.candidates("torque", [CAL]) == []
    assert "cz-robot" not in s.stats().by_centre


def test_freshness_is_latest_event_time_per_centre_even_for_ignored_events():
    cat = loaded(torque_wrench(version=2), centres=CENTRES)
    first = cat.freshness("cz-robot")
    assert first is not None
    cat.upsert_capability(torque_wrench(version=1), Stamp(5_000, partition=3, offset=77))  # stale but seen
    assert cat.freshness("cz-robot") == Stamp(5_000, 3, 77)
    cat.upsert_capability(torque_wrench(version=9), Stamp(4_000, partition=1, offset=900))  # older event time
    assert cat.freshness("cz-robot") == Stamp(5_000, 3, 77)
    cat.remove_capability("cz-robot", "torque-wrench", Stamp(6_000, 3, 78))
    assert cat.freshness("cz-robot").timestamp_ms == 6_000
    assert cat.freshness("nowhere") is None
    assert cat.current().stats().freshness["cz-robot"].timestamp_ms == 6_000


def test_snapshots_are_immutable_values():
    cat = loaded(torque_wrench())
    before = cat.current()
    cat.upsert_capability(pressure_gauge(), Stamp(1))
    cat.remove_capability("cz-robot", "torque-wrench", Stamp(2))
    assert len(before) == 1 and before.search("torque wrench").total == 1  # the old snapshot is untouched
    assert len(cat.current()) == 1 and cat.current().search("torque wrench").total == 0
    assert cat.current().generation > before.generation


# -- never empty while rebuilding -------------------------------------------------------------------------


def test_rebuild_swap_never_exposes_an_empty_or_partial_catalog_to_concurrent_readers():
    n = 3000
    cat = Catalog()
    b = cat.rebuild()
    for i in range(n):
        b.upsert_capability(cap("sh-icv", f"c{i}", bands=[mpa(0, 10 + i % 90)]))
    cat.install(b)
    assert cat.ready

    stop = threading.Event()
    seen: list[int] = []
    errors: list[str] = []

    def reader():
        while not stop.is_set():
            s = cat.current()
            size = len(s)
            # one snapshot answers consistently: counts, index and search agree
            if size != n:
                errors.append(f"size {size}")
            if len(s.candidates("pressure", [CAL], 0, 5e6)) != size:
                errors.append("candidates disagree")
            if s.stats().capabilities != size:
                errors.append("stats disagree")
            seen.append(s.generation)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for round_ in range(5):  # rebuild from the log, slowly, while readers keep going
            nb = cat.rebuild()
            for i in range(n):
                nb.upsert_capability(cap("sh-icv", f"c{i}", 1 + round_, bands=[mpa(0, 10 + i % 90)]))
            cat.install(nb)
        for i in range(200):  # live revisions after the catch-up
            cat.upsert_capability(cap("sh-icv", f"c{i}", 100, bands=[mpa(0, 50)]), Stamp(i))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    assert len(set(seen)) > 1  # readers did see swaps happen


def test_catalog_not_ready_until_first_install():
    cat = Catalog()
    assert not cat.ready and len(cat.current()) == 0
    cat.install(CatalogBuilder())
    assert cat.ready and cat.wait_ready(0)


# -- search ------------------------------------------------------------------------------------------------


@pytest.fixture
def federation() -> CatalogSnapshot:
    caps = [
        torque_wrench(),
        torque_wrench("sh-icv", "torque-wrench", sk=VER, lo=5, hi=1000),
        cap("cz-robot", "torque-sensor", qk="torque", bands=[nm(0.1, 500)], inst=("扭矩传感器", "torque sensor"),
            meas=("扭矩", "torque"), code="JJF 1xxx"),
        pressure_gauge(),
        cap("hz-oil", "pt", bands=[mpa(0, 100, rel=0.0002)], code="JJG 882-2019"),
        cap("sh-icv", "pt", bands=[mpa(0, 25, rel=0.002)]),
        cap("sh-icv", "lidar", qk="length", sk=ServiceKind.TESTING,
            bands=[RangeBand(0.5, 300, "m", ExpandedUncertainty(absolute=0.002, absolute_unit="m",
                                                                 absolute_si=0.002), 0.5, 300)],
            inst=("激光雷达", "lidar"), meas=("距离", "distance"), code="in-house: ICV-LR-01"),
    ]
    return loaded(*caps, centres=CENTRES).current()


def ids(result):
    return [f"{h.capability.centre_id}/{h.capability.capability_id}" for h in result.hits]


def test_search_chinese_and_english_find_the_same_entries(federation):
    zh = federation.search("扭矩扳手")
    en = federation.search("torque wrench")
    assert sorted(ids(zh)) == sorted(ids(en)) == ["cz-robot/torque-wrench", "sh-icv/torque-wrench"]
    assert "cz-robot/torque-sensor" not in ids(federation.search("torque wrenches"))
    assert sorted(ids(federation.search("压力变送器"))) == ["hz-oil/pt", "sh-icv/pt"]
    assert ids(federation.search("JJG 52")) == ["hz-oil/pressure-gauge"]
    assert ids(federation.search("jjg52-2013")) == ["hz-oil/pressure-gauge"]
    assert ids(federation.search("激光雷达")) == ["sh-icv/lidar"]


def test_search_service_kind_words_narrow_to_that_kind(federation):
    assert ids(federation.search("校准扭矩扳手")) == ["cz-robot/torque-wrench"]
    assert ids(federation.search("扭矩扳手检定")) == ["sh-icv/torque-wrench"]
    r = federation.search("who can calibrate a torque wrench 20-200 N·m to 1%?")
    assert ids(r) == ["cz-robot/torque-wrench"]


def test_a_kind_word_that_is_part_of_an_instrument_name_is_searched_as_text():
    machine = cap("sh-icv", "utm", qk="force", bands=[RangeBand(1, 600, "kN", ExpandedUncertainty(relative=0.001),
                                                                1e3, 6e5)],
                  inst=("材料试验机", "materials testing machine"), meas=("力", "force"), code="JJG 139-2014")
    s = loaded(machine, torque_wrench()).current()
    assert ids(s.search("testing machine")) == ["sh-icv/utm"]
    assert s.search("test torque wrench").total == 0  # "test" is a kind word here: testing only


def test_search_by_centre_name_city_and_province(federation):
    assert federation.search("机器人").total == 2  # centre name
    r = federation.search("Changzhou torque wrench")  # 3 tokens: a hit needs 2, ranks by all 3
    assert ids(r)[0] == "cz-robot/torque-wrench" and r.hits[0].score > r.hits[1].score
    assert set(r.hits[0].matched) == {"changzhou", "torque", "wrench"}
    assert federation.search("", province="浙江").total == 2
    assert federation.search("", province="zhejiang").total == 2
    assert federation.search("", city="上海").total == 3


def test_search_ranks_whole_term_matches_first(federation):
    r = federation.search("扭矩")
    assert r.total == 3
    assert r.hits[0].score >= r.hits[-1].score


def test_search_filters_range_and_uncertainty(federation):
    r = federation.search("压力变送器", range_lo_si=0, range_hi_si=60e6)
    assert ids(r) == ["hz-oil/pt"]
    r = federation.search("pressure", max_relative_u=0.001)
    assert sorted(ids(r)) == ["hz-oil/pressure-gauge", "hz-oil/pt"]
    r = federation.search("", quantity_kind="torque", range_lo_si=20, range_hi_si=200)
    assert sorted(ids(r)) == ["cz-robot/torque-sensor", "cz-robot/torque-wrench", "sh-icv/torque-wrench"]
    assert federation.search("lidar", max_relative_u=0.01, range_lo_si=1, range_hi_si=100).total == 1
    assert federation.search("lidar", max_relative_u=0.001, range_lo_si=1, range_hi_si=100).total == 0


def test_facets_count_the_filtered_hits_not_the_page(federation):
    r = federation.search("扭矩", limit=1)
    assert r.total == 3 and len(r.hits) == 1
    assert r.facets["service_kind"] == {"calibration": 2, "verification": 1}
    assert r.facets["quantity_kind"] == {"torque": 3}
    assert r.facets["centre"] == {"cz-robot": 2, "sh-icv": 1}
    assert r.facets["province"] == {"江苏": 2, "上海": 1}
    assert r.facets["city"] == {"常州": 2, "上海": 1}
    r = federation.search("", service_kind="calibration", province="江苏")
    assert r.facets["service_kind"] == {"calibration": 2} and r.total == 2
    assert sum(federation.search("").facets["centre"].values()) == len(federation)


def test_search_paging(federation):
    allhits = ids(federation.search("", limit=100))
    pages = ids(federation.search("", limit=3)) + ids(federation.search("", limit=3, offset=3)) + \
        ids(federation.search("", limit=3, offset=6))
    assert pages == allhits and len(allhits) == len(federation)


def test_stats_counts(federation):
    st_ = federation.stats()
    assert st_.capabilities == 7 and st_.centres == 3
    assert st_.by_centre == {"cz-robot": 2, "hz-oil": 2, "sh-icv": 3}
    assert st_.by_service_kind == {"calibration": 4, "testing": 1, "verification": 2}
    assert st_.by_centre_service_kind["sh-icv"] == {"calibration": 1, "testing": 1, "verification": 1}


# -- the routing index ------------------------------------------------------------------------------------


def test_joined_coverage_and_gaps():
    c = cap("a", "x", bands=[mpa(0, 25), mpa(25, 100), mpa(200, 300)])
    assert joined_coverage(c) == ((0.0, 100e6), (200e6, 300e6))
    assert covers(c, 10e6, 90e6) and covers(c, 0, 100e6) and covers(c, 250e6, 300e6)
    assert not covers(c, 90e6, 210e6)
    assert overlaps(c, 90e6, 210e6) and not overlaps(c, 120e6, 150e6)
    s = loaded(c).current()
    assert s.candidates("pressure", [CAL], 90e6, 210e6) == []
    assert len(s.candidates("pressure", [CAL], 90e6, 210e6, partial=True)) == 1
    assert len(s.candidates("pressure", [CAL], 210e6, 220e6)) == 1
    assert s.candidates("pressure", [VER], 10e6, 20e6) == []
    assert s.candidates("torque", [CAL], 10, 20) == []


def test_candidates_tolerate_unit_conversion_rounding():
    c = cap("a", "x", bands=[mpa(0, 25)])
    s = loaded(c).current()
    assert len(s.candidates("pressure", [CAL], 0, 25e6 * (1 + 1e-12))) == 1


_kinds = st.sampled_from([CAL, VER])
_qks = st.sampled_from(["pressure", "torque"])
_band = st.tuples(st.integers(-5, 60), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1]))
_cap = st.builds(lambda i, v, sk, qk, bands: cap("c%d" % (i % 4), "k%d" % i, v, sk=sk, qk=qk,
                                                 bands=[mpa(a, b) for a, b in bands]),
                 st.integers(0, 40), st.integers(1, 4), _kinds, _qks, st.lists(_band, min_size=1, max_size=3))
_op = st.one_of(st.tuples(st.just("up"), _cap),
                st.tuples(st.just("rm"), st.integers(0, 40)))


def _brute(snapshot: CatalogSnapshot, qk, sks, lo, hi, partial=False):
    f = overlaps if partial else covers
    return {c.key for c in snapshot.capabilities() if c.quantity_kind == qk and c.service_kind in sks
            and f(c, lo, hi)}


def _live_and_rebuilt(initial, ops):
    """Snapshots of one history (a build, then live upserts "up" and removals "rm" of key k<i> at centre
    c<i % 4>): the live catalog's, and the same content built again in one pass."""
    cat = Catalog()
    b = cat.rebuild()
    for c in initial:
        b.upsert_capability(c)
    cat.install(b)
    for op in ops:
        if op[0] == "up":
            cat.upsert_capability(op[1], Stamp(1))
        else:
            cat.remove_capability("c%d" % (op[1] % 4), "k%d" % op[1], Stamp(2))
    rebuilt = CatalogBuilder()
    for c in cat.current().capabilities():
        rebuilt.upsert_capability(c)
    return cat.current(), rebuilt.build()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(initial=st.lists(_cap, max_size=60), ops=st.lists(_op, max_size=40),
       queries=st.lists(st.tuples(_qks, st.lists(_kinds, min_size=1, max_size=2), _band, st.booleans()),
                        min_size=1, max_size=8))
def test_index_matches_brute_force_scan_through_builds_and_live_updates(initial, ops, queries, monkeypatch_chunks):
    for s in _live_and_rebuilt(initial, ops):  # the same state built in one pass gives the same answers
        for qk, sks, (lo, hi), partial in queries:
            got = s.candidates(qk, sks, lo * 1e6, hi * 1e6, partial=partial)
            keys = [c.key for c in got]
            assert len(keys) == len(set(keys))  # no duplicates
            want = _brute(s, qk, set(sks), lo * 1e6, hi * 1e6, partial)
            assert set(keys) >= want  # a superset of the eligible ones ...
            assert set(keys) == want  # ... and here exactly them (coverage is exact up to 1e-9)
        assert len(s.search("").hits) == min(50, len(s))


_icap = st.builds(lambda i, v, sk, bands, inst, meas: cap("c%d" % (i % 4), "k%d" % i, v, sk=sk,
                                                            bands=[mpa(a, b) for a, b in bands], inst=inst, meas=meas),
                  st.integers(0, 40), st.integers(1, 4), _kinds, st.lists(_band, min_size=1, max_size=2),
                  st.sampled_from([("压力变送器", "pressure transmitter"), ("风电压力变送器", ""), ("一般压力表", ""),
                                   ("压力传感器", "pressure sensor"), ("未知装置", ""), ("", ""),
                                   ("直流充电桩", "DC charger"), ("交流充电桩", "AC charger"), ("交直流充电桩", ""),
                                   ("电动汽车非车载充电机", ""), ("K型热电偶", ""), ("S型热电偶", "type S thermocouple"),
                                   ("热电偶", ""), ("压力变送器检定装置", "")]),
                  st.sampled_from([("压力", "pressure"), ("", ""), ("温度", "temperature")]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(initial=st.lists(_icap, max_size=50),
       ops=st.lists(st.one_of(st.tuples(st.just("up"), _icap), st.tuples(st.just("rm"), st.integers(0, 40))),
                    max_size=30),
       queries=st.lists(st.tuples(_kinds, _band, st.booleans(), st.sampled_from(
           ["压力变送器", "压力表", "压力扫描阀", "", "直流充电桩", "AC charger", "充电桩", "K型热电偶", "S型热电偶",
            "热电偶", "温度传感器"])), min_size=1, max_size=8))
def test_instrument_narrowing_matches_judge_on_every_capability(initial, ops, queries, monkeypatch_chunks):
    """Grouping by *parsed* instrument: the narrowed lookup is exactly the brute-force scan filtered by
    ``judge(...).match`` on each capability's own texts, through builds, live moves between groups and removals."""
    from metrofed.domain.catalog import instrument_filter, instrument_group
    from metrofed.domain.instruments import judge
    from metrofed.domain.need import need_from_fields

    for s in _live_and_rebuilt(initial, ops):
        for (qk, sk), groups in s._buckets.items():  # one sub-bucket per parsed instrument, none empty
            assert set(groups) == {instrument_group(c) for c in s.capabilities()
                                   if (c.quantity_kind, c.service_kind) == (qk, sk)}
            assert all(bk.n for bk in groups.values())
        for sk, (lo, hi), partial, inst in queries:
            need = need_from_fields(instrument_type=inst, measurand="压力", quantity_kind="pressure",
                                    range_min=0, range_max=1, unit="MPa", service_kind=sk.value,
                                    tolerance_value=1, tolerance_unit="%")
            acc = instrument_filter(need, sk)
            got = s.candidates("pressure", [sk], lo * 1e6, hi * 1e6, partial=partial, accept_instrument=acc)
            keys = [c.key for c in got]
            assert len(keys) == len(set(keys))
            want = {k for k in _brute(s, "pressure", {sk}, lo * 1e6, hi * 1e6, partial)
                    if (c := s.get(*k.split("/"))) is not None and judge(
                        inst, "压力", c.instrument_type.zh, c.instrument_type.en, c.measurand.zh, c.measurand.en,
                        c.keywords).match}
            assert set(keys) == want


@pytest.fixture
def monkeypatch_chunks(monkeypatch):
    """Tiny blocks so that the property test exercises several blocks per table, tail appends, removals and
    compactions."""
    import metrofed.domain.catalog as catalog
    import metrofed.domain.route_table as route_table

    monkeypatch.setattr(route_table, "_BLOCK", 4)
    monkeypatch.setattr(route_table, "_TAIL", 3)
    monkeypatch.setattr(catalog, "_SMALL_SET", 3)
    return None


# -- against the router: the index never hides a capability the router would accept ----------------------

_instruments = st.sampled_from([("压力变送器", "pressure transmitter"), ("一般压力表", "pressure gauge"),
                                ("压力传感器", "pressure sensor"), ("数字压力计", "digital pressure gauge"),
                                ("未知装置", ""), ("风电压力变送器", "wind-power pressure transmitter"),
                                ("精密压力表", ""), ("压力扫描阀", "pressure scanner"),
                                ("直流充电桩", "DC charger"), ("交流充电桩", "AC charging point"),
                                ("交直流充电桩", ""), ("K型热电偶", "type K thermocouple"),
                                ("S/B 型贵金属热电偶", "noble-metal thermocouple"), ("热电偶", "thermocouple"),
                                ("压力变送器检定装置", "pressure transmitter calibrator")])
# what a need names: heads, qualifiers that contradict some capabilities (AC/DC, K/S), unknown or no instrument
_need_instruments = st.sampled_from(["压力变送器", "pressure transmitter", "一般压力表", "压力传感器", "压力扫描阀",
                                     "", "直流充电桩", "AC charger", "K型热电偶", "type S thermocouple",
                                     "压力变送器检定装置"])
_tol_kind = st.sampled_from([("%", None), ("%FS", None), ("MPa", None), ("class", None)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(st.tuples(st.integers(-1, 50), st.integers(1, 60), st.sampled_from([0.0, 1e-4, 1e-3, 1e-2]),
                                st.sampled_from([0.0, 100.0, 5e3, 5e4]), st.sampled_from([2.0, 3.0]),
                                st.sampled_from([0.95, 0.99]), _kinds, _instruments), min_size=1, max_size=25),
       need_lo=st.integers(-1, 40), need_span=st.integers(0, 40), tol=st.sampled_from([0.05, 0.2, 1.0, 2.5]),
       tol_kind=_tol_kind, sk=_kinds, need_inst=_need_instruments)
def test_index_with_uncertainty_bound_keeps_everything_the_router_accepts(specs, need_lo, need_span, tol, tol_kind,
                                                                         sk, need_inst):
    import datetime as dt

    from metrofed.domain.catalog import adequacy_probe, instrument_filter
    from metrofed.domain.need import need_from_fields
    from metrofed.domain.routing import route

    caps = []
    for i, (lo, span, rel, ab, k, p, kind, inst) in enumerate(specs):
        band = RangeBand(lo, lo + span, "MPa", ExpandedUncertainty(relative=rel, absolute=ab, absolute_unit="Pa",
                                                                    k=k, coverage_probability=p, absolute_si=ab),
                         lo_si=lo * 1e6, hi_si=(lo + span) * 1e6)
        caps.append(cap("cz-robot", f"k{i}", sk=kind, bands=[band], code="JJG 882-2019", inst=inst))
    profile = CentreProfile("cz-robot", Text("中心", "centre"), "host", Text("常州", "Changzhou"), Text("江苏", "Jiangsu"),
                            authorisations=LegalAuthorisations(verification=frozenset({"JJG 882-2019"})))
    unit = tol_kind[0]
    from hypothesis import reject

    from metrofed.domain.capability import DomainError

    try:
        need = need_from_fields(instrument_type=need_inst, measurand="压力", range_min=need_lo, range_max=need_lo + need_span,
                                unit="MPa", tolerance_value=tol if unit != "MPa" else tol / 10, tolerance_unit=unit,
                                service_kind=sk.value, legal_use=False)
    except DomainError:
        reject()  # a need the gateway would refuse (e.g. % of reading on 0-0 MPa)
    snap = loaded(*caps, centres=[profile]).current()
    today = dt.date(2026, 11, 27)
    full = route(need, list(snap.capabilities()), snap.centres, {}, today)
    got = snap.candidates(need.quantity_kind, [sk], need.lo_si, need.hi_si, u95_at=adequacy_probe(need),
                          accept_instrument=instrument_filter(need, sk))
    got_ids = {c.capability_id for c in got}
    assert {c.capability_id for c in full.candidates} <= got_ids
    narrowed = route(need, got, snap.centres, {}, today)
    assert [c.capability_id for c in narrowed.candidates] == [c.capability_id for c in full.candidates]
    if not full.candidates:  # the split material comes from the partial lookup
        part = snap.candidates(need.quantity_kind, [sk], need.lo_si, need.hi_si, partial=True)
        assert route(need, part, snap.centres, {}, today).split == full.split
    # the gateway's path (GatewayApp.route -> route_need): the same candidates, in the same order, with the
    # same explanations, and the same split as routing over the whole catalog
    from metrofed.domain.catalog import route_need

    stats: dict = {}
    gw = route_need(snap, need, {}, today, stats=stats)
    assert gw.candidates == full.candidates
    assert gw.split == full.split
    assert gw.candidates_total == full.candidates_total
    assert stats["partial"] == (not full.candidates)
    assert not route_need(snap, need, {}, today, exclude_centres=frozenset({"cz-robot"})).candidates


def test_live_upsert_copies_only_the_buckets_it_touches(monkeypatch):
    import metrofed.domain.route_table as route_table

    monkeypatch.setattr(route_table, "_BLOCK", 256)
    caps = [cap("sh-icv", f"p{i}", bands=[mpa(0, 10 + i)]) for i in range(2000)] + \
        [torque_wrench(capid=f"t{i}") for i in range(50)]
    cat = loaded(*caps)
    before = cat.current()
    cat.upsert_capability(cap("sh-icv", "p7", 2, bands=[mpa(0, 99)]), Stamp(1))
    after = cat.current()
    torque = ("torque", CAL)
    pressure = ("pressure", CAL)
    assert after._buckets[torque] is before._buckets[torque]  # untouched bucket shared
    (b0,), (b1,) = before._buckets[pressure].values(), after._buckets[pressure].values()
    shared = sum(1 for c in b1.blocks if any(c is d for d in b0.blocks))
    assert len(b1.blocks) > 4 and shared >= len(b1.blocks) - 2  # only the blocks it touched copied
    same_shards = sum(1 for x, y in zip(before._entries._shards, after._entries._shards) if x is y)
    assert same_shards == len(after._entries._shards) - 1
    assert before.get("sh-icv", "p7").version == 1 and after.get("sh-icv", "p7").version == 2
