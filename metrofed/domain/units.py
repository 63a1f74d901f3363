"""Units and quantity kinds: one pint registry, Chinese unit text, SI conversion for the hot path.

Traps handled here (DOMAIN.md, measured with pint 0.25):

* ``℃`` / ``摄氏度`` make pint's parser fail: :func:`normalise_unit_text` rewrites them to ``degC``.
* Temperatures in uncertainties and tolerances are *differences*: use :func:`delta_to_si`
  (0.5 °C -> 0.5 K), never :func:`to_si` (which would give 273.65 K).
* ``r/min`` is undefined in pint and ``rpm -> Hz`` gives radians (3000 rpm -> 314 Hz). Rotational speed
  and frequency are counted here in *cycles* (revolutions) per second: 3000 r/min -> 50 (rev/s = Hz).
  Angular velocity stays in rad/s. The kind decides the convention, see :func:`to_si`.
* ``%RH`` parses in pint as percent x ronnahenry: it is rewritten to ``percent`` and the relative
  humidity *kind* is kept apart (:func:`kind_hint`).
* N·m and J have one dimension: the quantity *kind* (torque, energy, electrical_energy) is kept beside
  the unit, and :func:`check_kind` only checks the dimension.
* pint's ``gauss`` and ``oersted`` are Gaussian-CGS units that do not convert to tesla / A/m; we define
  SI-convertible ``gauss_si`` / ``oersted_si`` and map the usual spellings to them.
* ``dB`` in pint is a logarithmic unit; a sound pressure level is handled as a level in its own
  dimension (``dBSPL``), so that uncertainties in dB add linearly like every other band.

Pure domain: no grpc, kafka or sqlalchemy.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass

import pint

from metrofed.domain.capability import DomainError
from metrofed.domain.limits import quote

__all__ = [
    "UREG",
    "UnitError",
    "QuantityKind",
    "QUANTITY_KINDS",
    "normalise_unit_text",
    "parse_unit",
    "check_kind",
    "infer_kind",
    "kind_hint",
    "to_si",
    "delta_to_si",
    "si_factor",
    "from_si",
    "delta_from_si",
    "as_delta_unit",
    "is_offset_unit",
    "parse_quantity_text",
    "parse_relative",
    "format_value",
]

UREG = pint.UnitRegistry()
# SI-convertible gauss / oersted (pint's own are Gaussian-CGS and refuse to convert to tesla / A/m).
UREG.define("gauss_si = 1e-4 * tesla")
UREG.define("oersted_si = 1000 / (4 * pi) * ampere / meter")
# A sound pressure level is a level (dB re 20 µPa); kept linear in its own dimension.
UREG.define("decibel_spl = [sound_pressure_level] = dBSPL")

_TWO_PI = 2.0 * math.pi


class UnitError(DomainError):
    """A unit text that cannot be read, or that does not fit the quantity kind."""


# --------------------------------------------------------------------------------------------------
# Quantity kinds
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuantityKind:
    name: str
    dimensionality: str  # pint dimensionality, e.g. "[mass] / [length] / [time] ** 2"
    si_unit: str  # the unit SI values of this kind are expressed in (what to_si returns)
    zh: str
    en: str
    # Radian exponent the unit must carry (pint treats the radian as dimensionless, so the dimension
    # alone cannot tell an angle from a ratio): 1 for angle / angular velocity, 0 for "no angle",
    # None when either is accepted (rotational speed: r/min or Hz; illuminance: lx carries sr).
    radian_power: int | None = 0
    # Rotational speed and frequency count cycles: 1 revolution = 1 (not 2π).
    cycles: bool = False
    allows_negative: bool = True  # −0.1 MPa vacuum, −40 °C, CCW torque are legal values
    min_si: float | None = None  # absolute lower bound in SI (0 K)
    max_si: float | None = None  # absolute upper bound in SI (100 %RH = 1.0)
    display_unit: str = ""  # the unit a person would expect to read (defaults to si_unit)


_KIND_DIMS: dict[str, object] = {}  # kind -> pint dimensionality container (compare these, not strings)


def _k(name, dim_unit, si, zh, en, **kw) -> QuantityKind:
    dim = UREG.Unit(dim_unit).dimensionality
    _KIND_DIMS[name] = dim
    return QuantityKind(name=name, dimensionality=str(dim), si_unit=si, zh=zh, en=en, **kw)


QUANTITY_KINDS: dict[str, QuantityKind] = {
    q.name: q
    for q in (
        _k("pressure", "Pa", "Pa", "压力", "pressure"),
        _k("temperature", "K", "K", "温度", "temperature", min_si=0.0, display_unit="°C"),
        _k("torque", "N*m", "N*m", "扭矩", "torque"),
        _k("force", "N", "N", "力", "force"),
        _k("mass", "kg", "kg", "质量", "mass", allows_negative=False),
        _k("length", "m", "m", "长度", "length"),
        _k("angle", "rad", "rad", "角度", "plane angle", radian_power=1, display_unit="deg"),
        _k("angular_velocity", "rad/s", "rad/s", "角速度", "angular velocity", radian_power=1,
           display_unit="deg/s"),
        _k("acceleration", "m/s**2", "m/s**2", "加速度", "acceleration"),
        _k("velocity", "m/s", "m/s", "速度", "velocity"),
        _k("rotational_speed", "rpm", "rps", "转速", "rotational speed", radian_power=None, cycles=True,
           allows_negative=False, display_unit="rpm"),
        _k("voltage", "V", "V", "电压", "voltage"),
        _k("current", "A", "A", "电流", "electric current"),
        _k("resistance", "ohm", "ohm", "电阻", "resistance", allows_negative=False),
        _k("electrical_power", "W", "W", "电功率", "electrical power"),
        _k("electrical_energy", "J", "J", "电能", "electrical energy", display_unit="kWh"),
        _k("frequency", "Hz", "Hz", "频率", "frequency", radian_power=None, cycles=True,
           allows_negative=False),
        _k("time_interval", "s", "s", "时间间隔", "time interval", allows_negative=False),
        _k("volume", "m**3", "m**3", "容积/体积", "volume", allows_negative=False),
        _k("volume_flow", "m**3/s", "m**3/s", "体积流量", "volume flow rate", display_unit="m**3/h"),
        _k("mass_flow", "kg/s", "kg/s", "质量流量", "mass flow rate", display_unit="kg/h"),
        _k("relative_humidity", "percent", "dimensionless", "相对湿度", "relative humidity",
           allows_negative=False, max_si=1.0, display_unit="%"),
        _k("illuminance", "lx", "lx", "照度", "illuminance", radian_power=None, allows_negative=False),
        _k("luminous_intensity", "cd", "cd", "发光强度", "luminous intensity", allows_negative=False),
        _k("sound_pressure_level", "dBSPL", "dBSPL", "声压级", "sound pressure level"),
        _k("magnetic_flux_density", "T", "T", "磁通密度", "magnetic flux density"),
        _k("magnetic_field_strength", "A/m", "A/m", "磁场强度", "magnetic field strength"),
        _k("amount_concentration", "mol/m**3", "mol/m**3", "物质的量浓度", "amount concentration",
           allows_negative=False, display_unit="mol/L"),
        _k("mass_concentration", "kg/m**3", "kg/m**3", "质量浓度", "mass concentration",
           allows_negative=False, display_unit="mg/m**3"),
        _k("energy", "J", "J", "能量", "energy"),
        _k("dimensionless", "dimensionless", "dimensionless", "无量纲", "dimensionless"),
    )
}


# --------------------------------------------------------------------------------------------------
# Normalising unit text
# --------------------------------------------------------------------------------------------------

# Whole-text aliases (after whitespace and symbol clean-up), longest Chinese forms first.
_ALIASES: dict[str, str] = {
    # temperature
    "℃": "degC", "°C": "degC", "摄氏度": "degC", "度C": "degC", "oC": "degC", "deg C": "degC",
    "℉": "degF", "°F": "degF", "华氏度": "degF", "开尔文": "K", "开": "K",
    "Δ℃": "delta_degC", "Δ°C": "delta_degC", "ΔdegC": "delta_degC", "Δ°F": "delta_degF", "ΔK": "K",
    # pressure
    "兆帕": "MPa", "千帕": "kPa", "百帕": "hPa", "帕斯卡": "Pa", "帕": "Pa", "吉帕": "GPa",
    "巴": "bar", "毫巴": "mbar", "标准大气压": "atm", "毫米汞柱": "mmHg", "毫米水柱": "mmH2O",
    "米水柱": "mH2O", "mmH₂O": "mmH2O", "inH₂O": "inH2O", "kgf/cm2": "kgf/cm**2",
    # force / torque
    "牛顿米": "N*m", "牛·米": "N*m", "牛米": "N*m", "千牛·米": "kN*m", "千牛米": "kN*m", "Nm": "N*m",
    "kNm": "kN*m", "mNm": "mN*m", "N.m": "N*m", "kN.m": "kN*m", "cNm": "cN*m", "Ncm": "N*cm",
    "牛顿": "N", "牛": "N", "千牛": "kN", "兆牛": "MN", "千克力": "kgf", "公斤力": "kgf",
    # rotational speed (revolutions, not radians: DOMAIN.md)
    "r/min": "rpm", "rev/min": "rpm", "RPM": "rpm", "r·min⁻¹": "rpm", "r*min**-1": "rpm",
    "转/分": "rpm", "转/分钟": "rpm", "转每分": "rpm", "转每分钟": "rpm",
    "r/s": "rps", "rev/s": "rps", "转/秒": "rps", "RPS": "rps",
    # length / mass / volume
    "米": "m", "毫米": "mm", "厘米": "cm", "微米": "um", "纳米": "nm", "千米": "km", "公里": "km",
    "千克": "kg", "公斤": "kg", "克": "g", "毫克": "mg", "微克": "ug", "吨": "t",
    "升": "L", "毫升": "mL", "微升": "uL", "立方米": "m**3", "立方厘米": "cm**3",
    # electrical
    "伏": "V", "伏特": "V", "千伏": "kV", "毫伏": "mV", "微伏": "uV", "安": "A", "安培": "A",
    "毫安": "mA", "微安": "uA", "千安": "kA", "欧": "ohm", "欧姆": "ohm", "千欧": "kohm", "兆欧": "Mohm",
    "Ω": "ohm", "kΩ": "kohm", "MΩ": "Mohm", "mΩ": "mohm", "μΩ": "uohm",
    "瓦": "W", "瓦特": "W", "千瓦": "kW", "兆瓦": "MW", "千瓦时": "kWh", "千瓦·时": "kWh", "kW*h": "kWh",
    "W*h": "Wh", "VA": "V*A", "kVA": "kV*A",
    # time / frequency
    "秒": "s", "毫秒": "ms", "微秒": "us", "分钟": "min", "小时": "h", "天": "d",
    "赫兹": "Hz", "赫": "Hz", "千赫": "kHz", "兆赫": "MHz", "吉赫": "GHz",
    # angle / angular velocity
    # "度" alone is left out on purpose: it is an angle, a Celsius degree or a kWh ("1度电") by context.
    "°": "deg", "弧度": "rad", "′": "arcmin", "″": "arcsec", "'": "arcmin", "\"": "arcsec",
    "°/s": "deg/s", "度/秒": "deg/s", "rad/sec": "rad/s",
    # acceleration
    "gn": "g0", "g_n": "g0", "m/s2": "m/s**2",
    # photometry / acoustics / magnetism
    "勒克斯": "lx", "勒": "lx", "坎德拉": "cd", "坎": "cd",
    "分贝": "dBSPL", "dB": "dBSPL", "dB(A)": "dBSPL", "dBA": "dBSPL", "dB(C)": "dBSPL", "dB(Z)": "dBSPL",
    "dB SPL": "dBSPL", "dBSPL": "dBSPL",
    "特斯拉": "T", "特": "T", "毫特": "mT", "高斯": "gauss_si", "Gs": "gauss_si", "gauss": "gauss_si",
    "G": "gauss_si", "mGs": "mgauss_si", "奥斯特": "oersted_si", "Oe": "oersted_si", "oersted": "oersted_si",
    # ratios / humidity / concentration
    "%RH": "percent", "%rh": "percent", "RH%": "percent", "%R.H.": "percent", "%相对湿度": "percent",
    "%": "percent", "百分比": "percent", "ppm": "ppm", "ppb": "ppb", "1": "dimensionless", "": "dimensionless",
    "mol/L": "mol/L", "摩尔/升": "mol/L",
}

_CHAR_MAP = str.maketrans(
    {
        "µ": "u",  # U+00B5 micro sign
        "μ": "u",  # U+03BC Greek small mu
        "·": "*", "⋅": "*", "•": "*", "×": "*", "∙": "*",
        "²": "**2", "³": "**3",
        "／": "/", "（": "(", "）": ")", "％": "%", "－": "-", "﹪": "%",
        "Ω": "ohm", "Ω": "ohm",
        "^": "**",
    }
)

_CJK = re.compile(r"[\u3400-\u9fff]")


def normalise_unit_text(text: str) -> str:
    """Rewrite Chinese and odd unit text into something pint reads (``℃`` -> ``degC``,
    ``千帕`` -> ``kPa``, ``牛·米`` -> ``N*m``, ``r/min`` -> ``rpm``, ``%RH`` -> ``percent``, ``µ`` -> ``u``).

    Unknown text is returned cleaned but otherwise unchanged; :func:`parse_unit` rejects it.
    Cached per distinct text (a federation writes a few hundred).
    """
    if text is None:
        return ""
    if type(text) is str:
        return _normalise_cached(text)
    return _normalise(str(text))


@functools.lru_cache(maxsize=8192)
def _normalise_cached(text: str) -> str:
    return _normalise(text)


def _normalise(text: str) -> str:
    t = text.strip()
    t = re.sub(r"\s+", " ", t)
    # Whole-text aliases first (so "Ω" alone and "%RH" win before the character map).
    if t in _ALIASES:
        return _ALIASES[t]
    compact = t.replace(" ", "")
    if compact in _ALIASES:
        return _ALIASES[compact]
    if compact.upper() in ("%RH", "RH%", "%R.H."):
        return "percent"
    t = compact.replace("⁻¹", "**-1")
    t = t.translate(_CHAR_MAP)
    if t in _ALIASES:
        return _ALIASES[t]
    # Per-factor aliases: "牛·米" -> "N*m" handled above; "千帕/秒" -> "kPa/s" here.
    if _CJK.search(t) or any(ch in t for ch in "℃℉°′″"):
        parts = re.split(r"([*/()])", t)
        t = "".join(_ALIASES.get(p, p) for p in parts)
    t = t.replace("℃", "degC").replace("°C", "degC").replace("℉", "degF")
    return t


# Preferred display order of products pint sorts alphabetically ("m*N" -> "N*m").
_PRODUCT_ORDER = {
    "m*N": "N*m", "m*kN": "kN*m", "m*mN": "mN*m", "m*MN": "MN*m", "cm*N": "N*cm", "m*cN": "cN*m",
    "kgf*m": "kgf*m", "cm*kgf": "kgf*cm", "h*kW": "kW*h", "h*W": "W*h", "h*MW": "MW*h",
    "A*V": "V*A", "A*kV": "kV*A", "m*lbf": "lbf*m", "ft*lbf": "lbf*ft", "in*lbf": "lbf*in",
}


@functools.lru_cache(maxsize=4096)
def _parse_unit_cached(norm: str) -> pint.Unit:
    return UREG.Unit(norm)


@functools.lru_cache(maxsize=1)
def _known_names() -> tuple[str, ...]:
    names = set(UREG._units.keys())  # noqa: SLF001 - pint keeps names and symbols here
    for d in UREG._units.values():  # noqa: SLF001
        sym = getattr(d, "symbol", None)
        if sym:
            names.add(sym)
        for a in getattr(d, "aliases", ()) or ():
            names.add(a)
    names.update(k for k in _ALIASES if k)
    names.update(["kPa", "MPa", "hPa", "GPa", "mm", "um", "nm", "km", "kN", "mN", "kV", "mV", "mA", "kW",
                  "MW", "kHz", "MHz", "mg", "ug", "mL", "uL", "ms", "us", "mT", "kohm", "Mohm"])
    return tuple(sorted(names))


def _suggest(text: str, norm: str) -> list[str]:
    names = _known_names()
    out: list[str] = []
    for probe in (text, norm):
        for m in difflib.get_close_matches(probe, names, n=4, cutoff=0.6):
            if m not in out:
                out.append(m)
    return out[:4]


def _canonical(unit: pint.Unit) -> str:
    s = format(unit, "~C")
    if s == "":
        return "dimensionless"
    s = _PRODUCT_ORDER.get(s, s)
    return s.replace("Δ°C", "delta_degC").replace("Δ°F", "delta_degF")


# Bounds on a unit expression, checked before pint sees it: pint evaluates exponents with Python
# numbers, so "bar**1000000" overflows on conversion, "Pa**1e9" likewise, and "2**1000**1000" computes
# a huge integer for minutes. No unit a metrologist writes needs more than these.
MAX_UNIT_TEXT = 64  # characters (limits.UNIT)
MAX_EXPONENT = 12  # |n| in "m**n"
MAX_PAREN_DEPTH = 4

_TOKEN = re.compile(r"\s+|\*\*|[*/()+\-]|\d+(?:\.\d*)?(?:[eE][+\-]?\d+)?|\.\d+(?:[eE][+\-]?\d+)?|[^\W\d]\w*|.",
                    re.S)
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?\Z")


class _Absurd(LookupError):
    """A unit expression refused for its shape (exponent, nesting, scale), with the reason."""


def _check_expression(norm: str) -> None:
    tokens = [t for t in _TOKEN.findall(norm) if not t.isspace()]
    depth = 0
    for i, t in enumerate(tokens):
        if t == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise _Absurd(f"nests parentheses deeper than {MAX_PAREN_DEPTH}")
        elif t == ")":
            depth -= 1
        elif t == "**":
            j = i + 1
            if j < len(tokens) and tokens[j] in ("+", "-"):
                j += 1
            if j >= len(tokens) or not _PLAIN_NUMBER.match(tokens[j]):
                raise _Absurd("an exponent must be a plain number, e.g. m**2 or s**-1")
            if float(tokens[j]) > MAX_EXPONENT:
                raise _Absurd(f"exponent {tokens[j][:8]} is out of range; at most ±{MAX_EXPONENT}")
            if j + 1 < len(tokens) and tokens[j + 1] == "**":
                raise _Absurd("chained exponents (a**b**c) are not a unit")


def _scale_ok(unit: pint.Unit) -> None:
    """The unit converts to SI with a finite, non-zero factor (else every later conversion fails)."""
    try:
        magnitude = float(UREG.Quantity(1.0, unit).to_root_units().magnitude)
    except Exception:  # noqa: BLE001 - pint raises OverflowError, ZeroDivisionError, its own errors, ...
        raise _Absurd("cannot be converted to SI units (its scale overflows)") from None
    if not math.isfinite(magnitude) or magnitude == 0.0:
        raise _Absurd("cannot be converted to SI units (its scale overflows)")


@functools.lru_cache(maxsize=4096)
def _parse_unit_text(text: str) -> str:
    norm = normalise_unit_text(text)
    _check_expression(norm)
    try:
        unit = _parse_unit_cached(norm)
    except Exception as exc:  # pint raises UndefinedUnitError, DefinitionSyntaxError, TokenError, ...
        raise LookupError(norm) from exc
    if not isinstance(unit, pint.Unit):  # "2 kPa" would parse as a quantity in some paths
        raise LookupError(norm)
    _scale_ok(unit)
    try:
        canon = _canonical(unit)
    except Exception as exc:  # noqa: BLE001 - a unit pint parses but cannot print is no unit of ours
        raise LookupError(norm) from exc
    # The canonical form must parse back (the hot path re-reads it): "m*m*…*m" adds up exponents.
    if len(canon) > MAX_UNIT_TEXT:
        raise _Absurd(f"is {len(canon)} characters long written out; at most {MAX_UNIT_TEXT}")
    _check_expression(canon)
    return canon


def parse_unit(text: str, *, field: str = "unit") -> str:
    """Canonical unit string for ``text`` (Chinese forms accepted): ``"千帕"`` -> ``"kPa"``,
    ``"牛·米"`` -> ``"N*m"``, ``"℃"`` -> ``"°C"``, ``"r/min"`` -> ``"rpm"``, ``"%RH"`` -> ``"%"``.

    The result parses back to itself. Raises :class:`UnitError` quoting (a prefix of) the text, with
    suggestions; absurd expressions (long, deep, huge exponents, overflowing scale) are refused before
    or around pint, never let through as another exception.
    """
    if not isinstance(text, str):
        raise UnitError(field, f"unit must be text, got {type(text).__name__}")
    if len(text) > MAX_UNIT_TEXT:
        raise UnitError(field, f"a unit expression of {len(text):,} characters; at most {MAX_UNIT_TEXT}")
    if any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in text):
        raise UnitError(field, f"unit {quote(text)} contains a control character")
    try:
        return _parse_unit_text(text)
    except _Absurd as exc:
        raise UnitError(field, f"unit {quote(text)}: {exc.args[0]}") from None
    except LookupError:
        pass
    except Exception:  # noqa: BLE001 - defence in depth: whatever pint still raises is a bad unit
        raise UnitError(field, f"unknown unit {quote(text)}") from None
    sugg = _suggest(text.strip(), normalise_unit_text(text))
    hint = f"; did you mean {', '.join(repr(s) for s in sugg)}?" if sugg else ""
    raise UnitError(field, f"unknown unit {quote(text)}{hint}")


@functools.lru_cache(maxsize=4096)
def _unit(canon: str) -> pint.Unit:
    return _parse_unit_cached(normalise_unit_text(canon))


@functools.lru_cache(maxsize=4096)
def _radian_power(canon: str) -> float:
    root = UREG.Quantity(1.0, _unit(canon)).to_root_units()
    return float(dict(root._units).get("radian", 0))  # noqa: SLF001


def kind_hint(text: str) -> str | None:
    """The quantity kind the unit *text* itself implies beyond its dimension (``%RH`` -> humidity)."""
    t = (text or "").replace(" ", "").upper()
    if "RH" in t or "相对湿度" in t:
        return "relative_humidity"
    return None


@functools.lru_cache(maxsize=4096)
def infer_kind(unit: str) -> str | None:
    """Default quantity kind of a unit: N*m -> torque, J -> energy, kWh -> electrical_energy,
    rpm -> rotational_speed, Hz -> frequency, deg/s -> angular_velocity, % -> dimensionless."""
    canon = parse_unit(unit)
    u = _unit(canon)
    dim = u.dimensionality
    rp = _radian_power(canon)
    names = set(dict(u._units))  # noqa: SLF001
    if dim == _KIND_DIMS["torque"]:
        if any("watt" in n or n in ("kilowatt_hour", "watt_hour", "electron_volt") for n in names):
            return "electrical_energy"
        if any(n.endswith("joule") or n in ("calorie", "kilocalorie", "erg", "british_thermal_unit") for n in names):
            return "energy"
        return "torque"  # N*m is ambiguous between torque and energy: default torque (brief)
    if dim == _KIND_DIMS["frequency"]:
        if rp:
            revs = any("revolution" in n or n in ("turn", "cycle") for n in names)
            return "rotational_speed" if revs else "angular_velocity"
        return "frequency"
    if dim == _KIND_DIMS["dimensionless"]:
        if rp == 1:
            return "angle"
        return "dimensionless"
    for name, kdim in _KIND_DIMS.items():
        if kdim == dim:
            return name
    return None


def check_kind(unit: str, kind: str, *, field: str = "unit") -> str:
    """Check ``unit`` measures ``kind``; return the canonical unit. DomainError on a mismatch
    (MPa for torque, Hz for an angle, rad/s for a plain frequency …). Cached per (unit text, kind):
    the verdict does not depend on ``field``, which is put into the error afterwards."""
    if type(unit) is not str or type(kind) is not str:
        return _check_kind(unit, kind, field)
    canon, err = _check_kind_cached(unit, kind)
    if err is not None:
        raise err[0](field, err[1])
    return canon


@functools.lru_cache(maxsize=8192)
def _check_kind_cached(unit: str, kind: str) -> tuple[str | None, tuple[type[DomainError], str] | None]:
    try:
        return _check_kind(unit, kind, "unit"), None
    except DomainError as exc:
        return None, (type(exc), exc.reason)


def _check_kind(unit: str, kind: str, field: str) -> str:
    q = QUANTITY_KINDS.get(kind)
    if q is None:
        raise DomainError(field, f"unknown quantity kind {quote(kind)}; one of {', '.join(sorted(QUANTITY_KINDS))}")
    canon = parse_unit(unit, field=field)
    u = _unit(canon)
    dim = u.dimensionality
    if dim != _KIND_DIMS[kind]:
        raise UnitError(
            field,
            f"unit {quote(unit)} measures {dim}, not {q.en} ({q.zh}, {q.dimensionality}, e.g. {q.si_unit})",
        )
    rp = _radian_power(canon)
    if kind == "illuminance":
        return canon
    if q.radian_power is not None and rp != q.radian_power:
        if q.radian_power == 1:
            raise UnitError(field, f"unit {quote(unit)} is not an angle unit, as {q.en} ({q.zh}) needs")
        raise UnitError(field, f"unit {quote(unit)} carries an angle; {q.en} ({q.zh}) is not an angular quantity")
    if q.cycles and rp not in (0, 1):
        raise UnitError(field, f"unit {quote(unit)} does not fit {q.en} ({q.zh})")
    return canon


# --------------------------------------------------------------------------------------------------
# SI conversion (hot path: cached per unit string and kind)
# --------------------------------------------------------------------------------------------------

_FACTORS: dict[tuple[str, str | None], tuple[float, float]] = {}


def _compute_factor(unit: str, kind: str | None) -> tuple[float, float]:
    canon = parse_unit(unit)
    u = _unit(canon)
    if kind is None:
        kind = infer_kind(canon)
    q = QUANTITY_KINDS.get(kind) if kind else None
    if u.dimensionality == _KIND_DIMS["temperature"]:
        zero = UREG.Quantity(0.0, u).to("kelvin").magnitude
        one = UREG.Quantity(1.0, u).to("kelvin").magnitude
        return one - zero, zero
    if q is not None and q.name == "sound_pressure_level":
        return UREG.Quantity(1.0, u).to("dBSPL").magnitude, 0.0
    base = UREG.Quantity(1.0, u).to_root_units()
    mult = float(base.magnitude)
    # pint's root units are gram-based: scale to the kilogram (SI base).
    g = dict(base._units).get("gram", 0)  # noqa: SLF001
    if g:
        mult *= 1e-3**g
    rp = dict(base._units).get("radian", 0)  # noqa: SLF001
    if q is not None and q.cycles and rp == 1:
        mult /= _TWO_PI  # rad/s -> rev/s: 3000 r/min -> 50 (DOMAIN.md: not 314)
    elif q is not None and q.name == "angular_velocity" and rp == 0:
        mult *= _TWO_PI  # a frequency read as an angular velocity: ω = 2πf (check_kind refuses this)
    return mult, 0.0


def si_factor(unit: str, kind: str | None = None) -> tuple[float, float]:
    """(multiplier, offset) with ``si = value * multiplier + offset``; cached per (unit, kind)."""
    key = (unit, kind)
    f = _FACTORS.get(key)
    if f is None:
        f = _compute_factor(unit, kind)
        _FACTORS[key] = f
    return f


def to_si(value: float, unit: str, kind: str | None = None) -> float:
    """A value (a point, not a difference) in SI: 60 MPa -> 6e7 Pa, 20 °C -> 293.15 K,
    3000 r/min -> 50 rev/s. ``kind`` picks the convention where one dimension has several
    (rotational speed in cycles, angular velocity in rad/s); without it the unit's default kind is used."""
    f = _FACTORS.get((unit, kind))
    if f is None:
        f = si_factor(unit, kind)
    return value * f[0] + f[1]


def delta_to_si(value: float, unit: str, kind: str | None = None) -> float:
    """A *difference* in SI (uncertainties, tolerances): 0.5 °C -> 0.5 K, 0.9 °F -> 0.5 K."""
    f = _FACTORS.get((unit, kind))
    if f is None:
        f = si_factor(unit, kind)
    return value * f[0]


def from_si(value_si: float, unit: str, kind: str | None = None) -> float:
    m, o = si_factor(unit, kind)
    return (value_si - o) / m


def delta_from_si(value_si: float, unit: str, kind: str | None = None) -> float:
    m, _ = si_factor(unit, kind)
    return value_si / m


def is_offset_unit(unit: str) -> bool:
    return si_factor(unit)[1] != 0.0


def as_delta_unit(unit: str) -> str:
    """The difference unit matching ``unit``: °C -> delta_degC, °F -> delta_degF, others unchanged."""
    canon = parse_unit(unit)
    if canon == "°C":
        return "delta_degC"
    if canon == "°F":
        return "delta_degF"
    return canon


# --------------------------------------------------------------------------------------------------
# Quantities in text
# --------------------------------------------------------------------------------------------------

_NUM = re.compile(r"^\s*([+\-−]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+\-]?\d+)?)\s*(.*?)\s*$")


def _to_float(s: str) -> float:
    return float(s.replace("−", "-"))


def parse_quantity_text(text: str | float | int, *, field: str, default_unit: str = "") -> tuple[float, str]:
    """``"2 Pa"`` -> ``(2.0, "Pa")``; ``"0.5 ℃"`` -> ``(0.5, "°C")``; a bare number takes
    ``default_unit``. Raises DomainError naming ``field``. Text is cached per (text, default unit)."""
    if type(text) is str and type(default_unit) is str:
        result, err = _parse_quantity_cached(text, default_unit)
        if err is not None:
            raise err[0](field, err[1])
        return result
    return _parse_quantity(text, field, default_unit)


@functools.lru_cache(maxsize=16384)
def _parse_quantity_cached(text: str, default_unit: str):
    try:
        return _parse_quantity(text, "value", default_unit), None
    except DomainError as exc:
        return None, (type(exc), exc.reason)


def _parse_quantity(text, field: str, default_unit: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise DomainError(field, f"expected a value with a unit, got {quote(text)}")
    if isinstance(text, (int, float)):
        if not default_unit:
            raise DomainError(field, f"{quote(text)} has no unit; write it as e.g. '{text} Pa'")
        return float(text), parse_unit(default_unit, field=field)
    if not isinstance(text, str):
        raise DomainError(field, f"expected text like '2 Pa', got {type(text).__name__}")
    m = _NUM.match(text)
    if not m:
        raise DomainError(field, f"cannot read {quote(text)} as a number with a unit (e.g. '2 Pa')")
    value = _to_float(m.group(1))
    if not math.isfinite(value):
        raise DomainError(field, f"{quote(text)} is not a finite number")
    unit_text = m.group(2) or default_unit
    if not unit_text:
        raise DomainError(field, f"{quote(text)} has no unit; write it as e.g. '{value} Pa'")
    return value, parse_unit(unit_text, field=field)


# Divisors (dividing keeps "5 ppm" exactly 5e-06; multiplying by 1e-6 would not).
_RELATIVE_UNITS = {"%": 100.0, "percent": 100.0, "％": 100.0, "ppm": 1e6, "ppb": 1e9, "‰": 1e3, "permille": 1e3}


def parse_relative(value: str | float | int, *, field: str) -> float:
    """A relative value as a plain fraction: ``"0.02 %"`` -> 0.0002, ``"5 ppm"`` -> 5e-6,
    ``0.0002`` -> 0.0002 (a bare number is already a fraction). Must be finite and ≥ 0."""
    if isinstance(value, bool):
        raise DomainError(field, f"expected a relative value like '0.02 %', got {quote(value)}")
    if isinstance(value, (int, float)):
        frac = float(value)
    elif isinstance(value, str):
        m = _NUM.match(value)
        if not m:
            raise DomainError(field, f"cannot read {quote(value)} as a relative value (e.g. '0.02 %', '5 ppm')")
        num = _to_float(m.group(1))
        unit = m.group(2).replace(" ", "")
        if unit == "":
            frac = num
        elif unit in _RELATIVE_UNITS:
            frac = num / _RELATIVE_UNITS[unit]
        else:
            raise DomainError(field, f"{quote(value)}: a relative value takes %, ppm, ppb or ‰, not {quote(unit)}")
    else:
        raise DomainError(field, f"expected a relative value like '0.02 %', got {type(value).__name__}")
    if not math.isfinite(frac):
        raise DomainError(field, f"{quote(value)} is not finite")
    if frac < 0:
        raise DomainError(field, f"relative value {quote(value)} must not be negative")
    return frac


_G_SPECS = tuple(f".{n}g" for n in range(18))  # the format spec per significant digits, made once


def format_value(x: float, sig: int = 4) -> str:
    """Compact human number: 0.96, 2.5, 60000, 1.2e-05 (``sig`` significant digits)."""
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    s = format(x, _G_SPECS[sig] if 0 <= sig < 18 else f".{sig}g")
    if "e" in s and 1e-4 <= abs(x) < 1e9:
        s = repr(float(s))
    if s.endswith(".0"):
        s = s[:-2]
    return s
