"""The seed data of the 18 centres (seed/centres/*.yaml) loads through the domain parser and is coherent:
legal routes only where authorised, bands on every measuring capability, known quantity kinds."""

from __future__ import annotations

from collections import Counter

import pytest

from metrofed.domain.capability import MEASURING_KINDS, ServiceKind
from metrofed.domain.units import QUANTITY_KINDS
from metrofed.seed import DEFAULT_SEED_DIR, SeedCentre, SeedError, load_seed, load_seed_file

# The 18 national and provincial industry metrology test centres of the region (DOMAIN.md).
EXPECTED_IDS = {
    "sh-icv", "sh-aero-engine", "sh-marine-power", "sh-ic-metrology", "sh-h2-fcv", "sh-h2-storage",
    "sh-space-energy", "sh-smart-lighting", "sh-biomed", "sh-beidou", "wx-iot-sensing", "cz-robot", "cz-rail",
    "yc-offshore-wind", "hz-oil-gas", "nb-magnetic", "hf-nev-energy", "wh-robot",
}

# Hosts DOMAIN.md names; every other centre's host must stay empty rather than invented.
DOMAIN_HOSTS = {
    "sh-marine-power": "中船动力(集团)",
    "sh-ic-metrology": "同济大学、张江实验室",
    "sh-h2-fcv": "上海机动车检测认证技术研究中心",
    "sh-h2-storage": "上海电气核电集团",
    "sh-space-energy": "上海精密计量测试研究所",
    "wx-iot-sensing": "无锡市计量测试院",
    "cz-robot": "常州市计量院",
    "yc-offshore-wind": "盐城市计量测试所",
    "hz-oil-gas": "浙江省计量科学研究院",
    "nb-magnetic": "宁波市计量测试研究院",
    "hf-nev-energy": "安徽省计量科学研究院",
    "wh-robot": "芜湖市计量测试研究所",
}


@pytest.fixture(scope="module")
def seed() -> list[SeedCentre]:
    return load_seed()


@pytest.fixture(scope="module")
def by_id(seed) -> dict[str, SeedCentre]:
    return {s.centre_id: s for s in seed}


def _all_caps(seed):
    for s in seed:
        for c in s.capabilities:
            yield s, c


def test_all_18_centres_load_with_unique_ids(seed):
    ids = [s.centre_id for s in seed]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    assert set(ids) == EXPECTED_IDS
    for s in seed:
        assert s.source.stem == s.centre_id
        assert s.source.parent == DEFAULT_SEED_DIR


def test_load_seed_accepts_an_explicit_directory(tmp_path):
    (tmp_path / "hz-oil-gas.yaml").write_bytes((DEFAULT_SEED_DIR / "hz-oil-gas.yaml").read_bytes())
    loaded = load_seed(tmp_path)
    assert [s.centre_id for s in loaded] == ["hz-oil-gas"]


def test_profiles_are_complete(seed):
    for s in seed:
        p = s.profile
        assert p.name.zh and p.name.en, p.centre_id
        assert p.city.zh and p.city.en and p.province.zh and p.province.en, p.centre_id
        assert p.province.en in {"Shanghai", "Jiangsu", "Zhejiang", "Anhui"}, p.centre_id
        assert p.industries, p.centre_id
        assert p.accreditations and all(a.startswith("CNAS L") for a in p.accreditations), p.centre_id
        assert p.host_institution == DOMAIN_HOSTS.get(p.centre_id, ""), p.centre_id


def test_at_least_ten_capabilities_per_centre(seed):
    for s in seed:
        assert len(s.capabilities) >= 10, (s.centre_id, len(s.capabilities))
        ids = [c.capability_id for c in s.capabilities]
        assert len(ids) == len(set(ids)), s.centre_id


def test_capability_keys_unique_across_federation(seed):
    keys = [c.key for _, c in _all_caps(seed)]
    assert len(keys) == len(set(keys))


def test_every_measuring_capability_has_bands_with_uncertainty(seed):
    for s, c in _all_caps(seed):
        if c.service_kind in MEASURING_KINDS:
            assert c.bands, c.key
            assert c.method_code, c.key
            for b in c.bands:
                u = b.uncertainty
                assert u.relative > 0 or u.absolute > 0, c.key
                assert u.k == 2 and u.coverage_probability == 0.95, c.key
                assert b.lo_si <= b.hi_si, c.key
        else:
            assert not c.bands, f"{c.key}: {c.service_kind.value} should carry no range bands"


def test_legal_routes_only_where_authorised(seed):
    """检定 and 型式评价 may only be offered under a regulation the centre is authorised for."""
    for s, c in _all_caps(seed):
        auth = s.profile.authorisations
        if c.service_kind is ServiceKind.VERIFICATION:
            assert c.method_code in auth.verification, c.key
        elif c.service_kind is ServiceKind.TYPE_EVALUATION:
            assert c.method_code in auth.type_evaluation, c.key


def test_every_quantity_kind_is_known(seed):
    for _, c in _all_caps(seed):
        assert c.quantity_kind in QUANTITY_KINDS, c.key


def test_temperature_uncertainties_are_differences(seed):
    """U for a temperature band is a difference: 1.2 K, never 274.35 K (DOMAIN.md)."""
    for _, c in _all_caps(seed):
        if c.quantity_kind == "temperature":
            for b in c.bands:
                assert b.uncertainty.absolute_si < 50, c.key
                assert b.uncertainty.absolute_unit in ("K", "delta_degC"), c.key


def test_legal_metrology_facts_from_domain(by_id):
    hz = by_id["hz-oil-gas"].profile.authorisations
    for code in ("JJG 162-2019", "JJG 577-2012", "JJG 225-2001", "JJG 596-2012"):
        assert code in hz.type_evaluation  # Hangzhou's type-evaluation labs: water, gas, heat, electricity
    hf = by_id["hf-nev-energy"].profile.authorisations
    assert {"JJG 1148-2022", "JJG 1149-2022"} <= hf.verification
    gauge_centres = [cid for cid, s in by_id.items() if "JJG 52-2013" in s.profile.authorisations.verification]
    assert len(gauge_centres) >= 3
    # Only centres authorised for the charger regulations verify chargers.
    for cid, s in by_id.items():
        for c in s.capabilities:
            if c.service_kind is ServiceKind.VERIFICATION and c.method_code in ("JJG 1148-2022", "JJG 1149-2022"):
                assert cid in ("hf-nev-energy", "hz-oil-gas")


def test_mix_makes_routing_interesting(seed):
    kinds = Counter(c.service_kind for _, c in _all_caps(seed))
    assert set(kinds) == set(ServiceKind), kinds  # every service kind appears at least once
    pressure_cities = {s.profile.city.en for s, c in _all_caps(seed)
                       if c.quantity_kind == "pressure" and c.service_kind is ServiceKind.CALIBRATION}
    assert len(pressure_cities) >= 3
    # adjacent bands (0–10 MPa then 10–60 MPa) in one capability
    assert any(
        len(c.bands) >= 2 and any(a.hi_si == b.lo_si for a, b in zip(c.bands, c.bands[1:]))
        for _, c in _all_caps(seed)
    )
    for qk in ("torque", "angular_velocity", "acceleration", "magnetic_flux_density", "relative_humidity",
               "velocity", "volume_flow", "temperature", "length"):
        assert any(c.quantity_kind == qk and c.bands for _, c in _all_caps(seed)), qk


def test_bad_unit_names_file_and_field(tmp_path):
    src = (DEFAULT_SEED_DIR / "hz-oil-gas.yaml").read_text(encoding="utf-8")
    bad = src.replace("unit: MPa,", "unit: MPaa,", 1)
    assert bad != src
    f = tmp_path / "hz-oil-gas.yaml"
    f.write_text(bad, encoding="utf-8")
    with pytest.raises(SeedError) as ei:
        load_seed_file(f)
    msg = str(ei.value)
    assert "hz-oil-gas.yaml" in msg and "capabilities[0].bands[0].unit" in msg and "MPaa" in msg
    assert ei.value.field == "capabilities[0].bands[0].unit"


def test_bad_yaml_and_shape_errors_name_the_file(tmp_path):
    f = tmp_path / "x-centre.yaml"
    f.write_text("centre: {id: x-centre\ncapabilities: [\n", encoding="utf-8")
    with pytest.raises(SeedError, match=r"x-centre\.yaml: invalid YAML: line \d+"):
        load_seed_file(f)
    f.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(SeedError, match=r"x-centre\.yaml: expected a mapping"):
        load_seed_file(f)


def test_missing_bands_and_mismatched_file_name_are_rejected(tmp_path):
    src = (DEFAULT_SEED_DIR / "hf-nev-energy.yaml").read_text(encoding="utf-8")
    f = tmp_path / "other-name.yaml"
    f.write_text(src, encoding="utf-8")
    with pytest.raises(SeedError, match=r"centre\.id: 'hf-nev-energy' does not match the file name"):
        load_seed_file(f)
    import yaml

    data = yaml.safe_load(src)
    del data["capabilities"][0]["bands"]
    g = tmp_path / "hf-nev-energy.yaml"
    g.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SeedError, match=r"capabilities\[0\]\.bands: at least one band"):
        load_seed_file(g)


def test_duplicate_centre_ids_across_files_are_rejected(tmp_path):
    src = (DEFAULT_SEED_DIR / "nb-magnetic.yaml").read_bytes()
    (tmp_path / "nb-magnetic.yaml").write_bytes(src)
    (tmp_path / "nb-magnetic.yml").write_bytes(src)
    with pytest.raises(SeedError, match="already defined"):
        load_seed(tmp_path)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SeedError, match="does not exist"):
        load_seed(tmp_path / "nope")
