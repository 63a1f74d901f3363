"""The federated catalog: an in-memory projection of the compacted capabilities (and centres) topics.

Pure domain code: the bus adapter decodes events into :class:`Capability` / :class:`CentreProfile` and
calls the methods below; nothing here knows about Kafka (docs/catalog.md).

Three pieces:

* :class:`CatalogSnapshot` -- immutable and fully indexed. Every container reachable from a snapshot is
  never mutated once the snapshot is published, so any number of reader threads may use one without locks.
* :class:`CatalogBuilder` -- mutable, cheap per event (dict assignments only). A rebuild from offset 0
  feeds one of these off to the side; :meth:`CatalogBuilder.build` indexes everything in one pass.
* :class:`Catalog` -- the holder. :meth:`Catalog.current` returns the snapshot in use; a finished rebuild is
  installed with a single reference assignment, so a reader sees the old snapshot or the new one, never an
  empty or half-built one. Live events after the catch-up derive a new snapshot from the current one by
  copy-on-write of only the index buckets the event touches (one small column block, a few posting
  shards), never a full re-index.

The routing index (:meth:`CatalogSnapshot.candidates`) keys buckets by (quantity kind, service kind) and,
inside those, by instrument group: the capability's *parsed* instrument (head nouns + qualifiers,
``instruments.capability_key``), all the router's instrument rule decides on, so a caller can skip whole
groups the router would reject at a cost proportional to the distinct parsed instruments (a few dozen per
bucket), not to the raw instrument texts (thousands). Each group's entries are numpy column blocks
(:mod:`metrofed.domain.route_table`): a "covers [a, b]" query is a mask over them. A capability whose bands
leave gaps is indexed once per joined (contiguous) interval, so a hit is exact: the candidates are the
capabilities whose joined band coverage contains the query range (up to a 1e-9 relative tolerance), plus
those whose intervals a seam narrower than a few tolerances separates and that overlap it -- a superset of
what the router accepts. :func:`route_need` (the gateway's path) judges those columns as arrays
(:mod:`metrofed.domain.indexed_routing`).

Search (:meth:`CatalogSnapshot.search`) uses an inverted index of tokens: lower-cased English words (light
plural folding), Chinese character bigrams plus whole terms, and normalised method codes (``jjg52``,
``jjg52-2013``). Centre names, hosts, cities and provinces are indexed per centre (50-odd entries) instead
of per capability, so a centre rename costs nothing per capability.
"""

from __future__ import annotations

import functools
import gc
import heapq
import itertools
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Iterator, Mapping

from .capability import MEASURING_KINDS, Capability, CentreProfile, ServiceKind, SERVICE_KIND_ZH
from .instruments import accepts_uncached, capability_key, need_key
from .route_table import EMPTY_TABLE, GroupTable
from .routing import _unit_zero_si, gc_paused

__all__ = [
    "Stamp",
    "Catalog",
    "CatalogBuilder",
    "CatalogSnapshot",
    "SearchHit",
    "SearchResult",
    "CatalogStats",
    "joined_coverage",
    "covers",
    "overlaps",
    "adequacy_probe",
    "instrument_filter",
    "instrument_group",
    "route_need",
    "tokenize",
]

_INF = math.inf
_REL_TOL = 1e-9  # tolerance on SI limits: unit conversion leaves 24999999.999999996 for 25 MPa


# ------------------------------------------------------------------------------------------------------
# Stamps and coverage helpers
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    """Where an event came from: event time first (it orders freshness), then partition and offset.

    Offsets are per partition (the capabilities topic has several), so freshness is the latest *event
    time* seen from a centre; partition and offset are kept to tell an operator where that event sits.
    """

    timestamp_ms: int
    partition: int = 0
    offset: int = -1


def joined_coverage(cap: Capability) -> tuple[tuple[float, float], ...]:
    """The capability's bands merged into disjoint contiguous SI intervals, sorted.

    Bands that touch or overlap (``[0, 25]`` and ``[25, 100]`` MPa) join into one interval. A capability
    with no bands (consultation, lab opening, ...) has no measuring range: it covers everything.
    """
    if not cap.bands:
        return ((-_INF, _INF),)
    if len(cap.bands) == 1:  # most capabilities
        b = cap.bands[0]
        return ((b.lo_si, b.hi_si),) if b.lo_si <= b.hi_si else ((b.hi_si, b.lo_si),)
    spans = sorted((min(b.lo_si, b.hi_si), max(b.lo_si, b.hi_si)) for b in cap.bands)
    out: list[list[float]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1] + _REL_TOL * max(abs(lo), abs(out[-1][1])):
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def _tol(lo: float, hi: float) -> float:
    m = max(abs(lo), abs(hi))
    return _REL_TOL * m if m != _INF else 0.0


def covers(cap: Capability, lo_si: float, hi_si: float) -> bool:
    """True when one joined interval of the capability contains [lo_si, hi_si] (with the tolerance)."""
    if lo_si > hi_si:
        lo_si, hi_si = hi_si, lo_si
    t = _tol(lo_si, hi_si)
    return any(a <= lo_si + t and b >= hi_si - t for a, b in joined_coverage(cap))


def overlaps(cap: Capability, lo_si: float, hi_si: float) -> bool:
    """True when some band of the capability overlaps [lo_si, hi_si] (for split routing)."""
    if lo_si > hi_si:
        lo_si, hi_si = hi_si, lo_si
    t = _tol(lo_si, hi_si)
    return any(a <= hi_si + t and b >= lo_si - t for a, b in joined_coverage(cap))


# ------------------------------------------------------------------------------------------------------
# Persistent (copy-on-write) containers
# ------------------------------------------------------------------------------------------------------

_MAP_SHARDS = 1024
_EMPTY_DICT: dict = {}


class _PMap:
    """A persistent map: a fixed tuple of small dicts. ``set``/``delete`` copy one shard and the tuple.

    At 1M entries a shard holds ~1k entries, so a write copies ~1k dict slots plus 1024 pointers (~15 us)
    instead of the whole map.
    """

    __slots__ = ("_shards", "_len")

    def __init__(self, shards: tuple[dict, ...] | None = None, length: int = 0):
        self._shards = shards if shards is not None else (_EMPTY_DICT,) * _MAP_SHARDS
        self._len = length

    @classmethod
    def from_dict(cls, d: Mapping) -> "_PMap":
        shards: list[dict] = [{} for _ in range(_MAP_SHARDS)]
        for k, v in d.items():
            shards[hash(k) & (_MAP_SHARDS - 1)][k] = v
        return cls(tuple(s if s else _EMPTY_DICT for s in shards), len(d))

    def __len__(self) -> int:
        return self._len

    def get(self, k, default=None):
        return self._shards[hash(k) & (_MAP_SHARDS - 1)].get(k, default)

    def __contains__(self, k) -> bool:
        return k in self._shards[hash(k) & (_MAP_SHARDS - 1)]

    def set(self, k, v) -> "_PMap":
        i = hash(k) & (_MAP_SHARDS - 1)
        old = self._shards[i]
        new = dict(old)
        new[k] = v
        shards = list(self._shards)
        shards[i] = new
        return _PMap(tuple(shards), self._len + (0 if k in old else 1))

    def delete(self, k) -> "_PMap":
        i = hash(k) & (_MAP_SHARDS - 1)
        old = self._shards[i]
        if k not in old:
            return self
        new = dict(old)
        del new[k]
        shards = list(self._shards)
        shards[i] = new if new else _EMPTY_DICT
        return _PMap(tuple(shards), self._len - 1)

    def update_many(self, changes: Mapping) -> "_PMap":
        """Apply {key: value or None (delete)} copying each touched shard once."""
        if not changes:
            return self
        by_shard: dict[int, list] = {}
        for k, v in changes.items():
            by_shard.setdefault(hash(k) & (_MAP_SHARDS - 1), []).append((k, v))
        shards = list(self._shards)
        n = self._len
        for i, kvs in by_shard.items():
            d = dict(shards[i])
            for k, v in kvs:
                if v is None:
                    if k in d:
                        del d[k]
                        n -= 1
                else:
                    if k not in d:
                        n += 1
                    d[k] = v
            shards[i] = d if d else _EMPTY_DICT
        return _PMap(tuple(shards), n)

    def values(self) -> Iterator:
        for s in self._shards:
            yield from s.values()

    def items(self) -> Iterator:
        for s in self._shards:
            yield from s.items()


_SET_SHARDS = 256
_SMALL_SET = 2048  # postings up to this size are a plain frozenset
_EMPTY_FS: frozenset = frozenset()


class _PSet:
    """A large persistent set of strings: a tuple of frozensets by hash. Adding copies one shard."""

    __slots__ = ("shards", "n")

    def __init__(self, shards: tuple[frozenset, ...], n: int):
        self.shards = shards
        self.n = n

    @classmethod
    def of(cls, items: Iterable[str]) -> "_PSet":
        buckets: list[list[str]] = [[] for _ in range(_SET_SHARDS)]
        for x in items:
            buckets[hash(x) & (_SET_SHARDS - 1)].append(x)
        shards = tuple(frozenset(b) if b else _EMPTY_FS for b in buckets)
        return cls(shards, sum(len(s) for s in shards))

    def __len__(self) -> int:
        return self.n

    def __contains__(self, x) -> bool:
        return x in self.shards[hash(x) & (_SET_SHARDS - 1)]

    def __iter__(self) -> Iterator[str]:
        for s in self.shards:
            yield from s


def _intersect(a, b) -> set | frozenset:
    """a & b for frozensets, sets, dict key views and _PSets; shard by shard when both are _PSets."""
    if isinstance(a, _PSet) and isinstance(b, _PSet):
        return set().union(*[x & y for x, y in zip(a.shards, b.shards) if x and y])
    if isinstance(a, _PSet):
        a, b = b, a
    if isinstance(b, _PSet):
        return {k for k in a if k in b}
    return a & b


def _pset_of(items) -> frozenset | _PSet:
    fs = items if isinstance(items, frozenset) else frozenset(items)
    return fs if len(fs) <= _SMALL_SET else _PSet.of(fs)


def _set_add(s: frozenset | _PSet | None, x: str) -> frozenset | _PSet:
    if s is None:
        return frozenset((x,))
    if isinstance(s, frozenset):
        if x in s:
            return s
        return s | {x} if len(s) < _SMALL_SET else _PSet.of(itertools.chain(s, (x,)))
    i = hash(x) & (_SET_SHARDS - 1)
    old = s.shards[i]
    if x in old:
        return s
    shards = list(s.shards)
    shards[i] = old | {x}
    return _PSet(tuple(shards), s.n + 1)


def _set_discard(s: frozenset | _PSet | None, x: str) -> frozenset | _PSet | None:
    if s is None:
        return None
    if isinstance(s, frozenset):
        if x not in s:
            return s
        r = s - {x}
        return r if r else None
    i = hash(x) & (_SET_SHARDS - 1)
    old = s.shards[i]
    if x not in old:
        return s
    if s.n - 1 <= _SMALL_SET // 2:
        return frozenset(y for y in s if y != x)
    shards = list(s.shards)
    shards[i] = old - {x}
    return _PSet(tuple(shards), s.n - 1)


# ------------------------------------------------------------------------------------------------------
# Routing index: buckets of chunks
# ------------------------------------------------------------------------------------------------------

def _u95_factor(p: float, k: float) -> float:
    """Scale a stated expanded U to ~95 % (k = 2): the router's convention (routing._Eval.worst)."""
    return 1.0 if 0.945 <= p <= 0.96 else (2.0 / k if k > 0 else 1.0)


def _u_floor(cap: Capability) -> tuple[float, float, float]:
    """(a, b, z) with U95(x) >= a*|x - z| + b in every band: the smallest relative and absolute parts, z the
    SI value of the zero the relative part counts from (273.15 K for a band in °C, as routing reads it).
    Bands whose relative parts count from different zeros get a = 0 (still a lower bound)."""
    if not cap.bands:
        return 0.0, 0.0, 0.0
    a = b = _INF
    zeros = set()
    for band in cap.bands:
        u = band.uncertainty
        f = _u95_factor(u.coverage_probability, u.k)
        a = min(a, f * u.relative)
        b = min(b, f * u.absolute_si)
        if u.relative:
            try:
                zeros.add(_unit_zero_si(band.unit, cap.quantity_kind))
            except Exception:  # noqa: BLE001 - a unit the router rejects itself: no relative part assumed
                zeros.add(None)
    if len(zeros) > 1 or None in zeros:
        return 0.0, b, 0.0
    return a, b, (zeros.pop() if zeros else 0.0)


_EMPTY_BUCKET = EMPTY_TABLE


# ------------------------------------------------------------------------------------------------------
# Tokenising (search)
# ------------------------------------------------------------------------------------------------------

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[a-z0-9]+")
_CODE = re.compile(r"\b(jjg|jjf|gb/t|gb/z|gb|jb/t|jjg\(\w+\)|iso|iec|oiml|astm|din|en|hj|qc/t|nb/t|dl/t)"
                   r"\s*(\d+(?:\.\d+)*)(?:\s*[-—–]\s*(\d{4}))?")
_STOP_EN = frozenset(
    "a an the to of for and or in on at by with from who which what where can could do does is are be "
    "i we you my our your me us need needs want please help find any some that this it its up".split())
# Words that name a service kind: matched against the capability's kind, not the text index.
_KIND_WORDS: dict[str, ServiceKind] = {
    "calibration": ServiceKind.CALIBRATION, "calibrate": ServiceKind.CALIBRATION,
    "calibrating": ServiceKind.CALIBRATION, "calibrated": ServiceKind.CALIBRATION,
    "verification": ServiceKind.VERIFICATION, "verify": ServiceKind.VERIFICATION,
    "verifying": ServiceKind.VERIFICATION, "verified": ServiceKind.VERIFICATION,
    "testing": ServiceKind.TESTING, "test": ServiceKind.TESTING, "tested": ServiceKind.TESTING,
    "consultation": ServiceKind.CONSULTATION, "consulting": ServiceKind.CONSULTATION,
}
_KIND_ZH: dict[str, ServiceKind] = {v: k for k, v in SERVICE_KIND_ZH.items()}
_KIND_ZH.update({"校准": ServiceKind.CALIBRATION, "检定": ServiceKind.VERIFICATION,
                 "检测": ServiceKind.TESTING, "型式评价": ServiceKind.TYPE_EVALUATION,
                 "咨询": ServiceKind.CONSULTATION, "共享": ServiceKind.INSTRUMENT_SHARING})
_KIND_ZH_ORDER = sorted(_KIND_ZH, key=len, reverse=True)


def _fold(word: str) -> str:
    """Light English plural folding: wrenches -> wrench, meters -> meter, batteries -> battery."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _codes(low: str) -> list[str]:
    out = []
    for m in _CODE.finditer(low):
        base = m.group(1).replace("/", "") + m.group(2)
        out.append(base)
        if m.group(3):
            out.append(f"{base}-{m.group(3)}")
    return out


def _cjk_tokens(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i:i + 2] for i in range(len(run) - 1)]


@lru_cache(maxsize=200_000)
def tokenize(text: str) -> frozenset[str]:
    """Index tokens of one text field: English words, CJK bigrams, whole CJK terms ('=' prefixed), codes.

    Cached: the same instrument names, measurands and method codes repeat across thousands of rows.
    """
    if not text:
        return _EMPTY_FS
    low = text.lower()
    toks: set[str] = set()
    for w in _WORD.findall(low):
        if len(w) >= 2 and not w.isdigit():
            toks.add(_fold(w))
    for run in _CJK_RUN.findall(low):
        toks.update(_cjk_tokens(run))
        toks.add("=" + run)
    toks.update(_codes(low))
    return frozenset(toks)


def _doc_tokens(cap: Capability) -> frozenset[str]:
    parts = [tokenize(cap.instrument_type.zh), tokenize(cap.instrument_type.en), tokenize(cap.measurand.zh),
             tokenize(cap.measurand.en), tokenize(cap.method_code)]
    parts.extend(tokenize(k) for k in cap.keywords)
    return frozenset().union(*parts)


def _centre_tokens(p: CentreProfile) -> frozenset[str]:
    parts = [tokenize(p.name.zh), tokenize(p.name.en), tokenize(p.host_institution), tokenize(p.city.zh),
             tokenize(p.city.en), tokenize(p.province.zh), tokenize(p.province.en), tokenize(p.centre_id)]
    parts.extend(tokenize(i) for i in p.industries)
    return frozenset().union(*parts)


@dataclass(frozen=True)
class _Query:
    units: tuple[str, ...]  # tokens a hit must mostly match (CJK bigrams, words, codes)
    bonus: tuple[str, ...]  # whole-term tokens: add to the score, not required
    kinds: frozenset[ServiceKind]
    required: int


def _parse_query(text: str, indexed: Callable[[str], bool] = lambda _w: False) -> _Query:
    """Split a query into tokens and service-kind words. An English kind word that is itself an indexed
    token (``indexed``: "testing" in "materials testing machine") stays a text token."""
    low = (text or "").lower()
    units: list[str] = []
    bonus: list[str] = []
    kinds: set[ServiceKind] = set()
    codes = _codes(low)
    code_parts: set[str] = set()
    for m in _CODE.finditer(low):
        code_parts.update(re.findall(r"[a-z0-9]+", m.group(0)))
    for c in codes:  # the most specific form of each code: "jjg52-2013" over "jjg52"
        if not any(o != c and o.startswith(c + "-") for o in codes):
            units.append(c)
    for w in _WORD.findall(low):
        if w in code_parts or w in _STOP_EN or len(w) < 2 or w.isdigit():
            continue
        if w in _KIND_WORDS and not indexed(_fold(w)):
            kinds.add(_KIND_WORDS[w])
            continue
        units.append(_fold(w))
    for run in _CJK_RUN.findall(low):
        # take service-kind words out of the run: "校准扭矩扳手" -> kind calibration + "扭矩扳手"
        for kw in _KIND_ZH_ORDER:
            if kw in run:
                kinds.add(_KIND_ZH[kw])
                run = run.replace(kw, " ")
        for piece in run.split():
            units.extend(_cjk_tokens(piece))
            bonus.append("=" + piece)
    units = list(dict.fromkeys(units))
    n = len(units)
    required = n if n <= 2 else math.ceil(2 * n / 3)
    return _Query(tuple(units), tuple(dict.fromkeys(bonus)), frozenset(kinds), required)


# ------------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchHit:
    capability: Capability
    centre: CentreProfile | None
    score: float
    matched: tuple[str, ...] = ()  # the query tokens this hit matched (for "why this result")


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    total: int  # hits after filters, before limit/offset
    facets: dict[str, dict[str, int]]  # "service_kind", "quantity_kind", "province", "city", "centre"


@dataclass(frozen=True, slots=True)
class CatalogStats:
    capabilities: int
    centres: int  # registered centre profiles
    by_centre: dict[str, int]
    by_service_kind: dict[str, int]
    by_quantity_kind: dict[str, int]
    by_centre_service_kind: dict[str, dict[str, int]]
    generation: int
    freshness: dict[str, Stamp]


def _inc(d: dict, k, n: int) -> None:
    v = d.get(k, 0) + n
    if v:
        d[k] = v
    else:
        d.pop(k, None)


def _relative_u_ok(cap: Capability, lo: float | None, hi: float | None, max_rel: float) -> bool:
    """Worst relative expanded uncertainty over the requested range (or best anywhere) <= ``max_rel``.

    U(x)/|x| = a + b/|x| is largest at the smallest |x|; without a range the best band's best point counts.
    """
    if not cap.bands:
        return False
    if lo is None and hi is None:
        best = _INF
        for b in cap.bands:
            x = max(abs(b.lo_si), abs(b.hi_si))
            u = b.uncertainty
            r = u.relative + (u.absolute_si / x if x > 0 else (0.0 if u.absolute_si == 0 else _INF))
            best = min(best, r)
        return best <= max_rel * (1 + _REL_TOL)
    lo = hi if lo is None else lo
    hi = lo if hi is None else hi
    if lo > hi:
        lo, hi = hi, lo
    worst = -_INF
    for b in cap.bands:
        a, z = min(b.lo_si, b.hi_si), max(b.lo_si, b.hi_si)
        s, e = max(a, lo), min(z, hi)
        if s > e:
            continue
        x = 0.0 if s <= 0 <= e else min(abs(s), abs(e))
        u = b.uncertainty
        r = u.relative + (u.absolute_si / x if x > 0 else (0.0 if u.absolute_si == 0 else _INF))
        worst = max(worst, r)
    return worst != -_INF and worst <= max_rel * (1 + _REL_TOL)


InstrumentGroup = tuple  # instruments.InstrumentKey: (head keys, qualifiers) -- the parsed instrument


def instrument_group(cap: Capability) -> InstrumentGroup:
    """The routing sub-bucket of a capability: its *parsed* instrument (head nouns + qualifiers,
    :func:`instruments.capability_key`), the only things the router's instrument rule decides on. Parsed
    once per distinct (instrument, measurand) text (cached); a bucket holds a few dozen of these where it
    holds hundreds or thousands of raw texts (application and construction words are invisible to the rule)."""
    it, ms = cap.instrument_type, cap.measurand
    return capability_key(it.zh, it.en, ms.zh, ms.en)


def instrument_filter(need, service_kind: ServiceKind) -> Callable[[InstrumentGroup], bool] | None:
    """``accept_instrument`` for :meth:`CatalogSnapshot.candidates` applying the router's rule 2b
    (``instruments.judge``, measuring services only): a group whose parsed instrument does not serve the
    need's is skipped whole. The need's text is parsed once here; each (need key, group) decision is
    ``instruments.accepts`` (asked once per group and call), exactly ``judge(...).match`` for every
    capability of the group --
    relevance is left to the router, which recomputes it for what it is handed. None when the rule can
    reject nothing: not a measuring service, or a need naming no instrument the vocabulary knows (then
    ``judge`` ranks by word overlap and accepts everything)."""
    if service_kind not in MEASURING_KINDS:
        return None
    nk = need_key(need.instrument_type, need.measurand)
    if not nk[0]:
        return None
    return functools.partial(accepts_uncached, nk)


def adequacy_probe(need) -> tuple[float, float]:
    """(x_si, U95 max) for ``candidates(u95_at=...)`` from a :class:`metrofed.domain.need.Need`.

    x is the end of the requested range with the largest magnitude -- a point the router always evaluates
    -- and U max = T(x) / required ratio: a capability whose U at x exceeds it fails TUR there, so it fails
    the router's worst-point check too.
    """
    x = need.hi_si if abs(need.hi_si) >= abs(need.lo_si) else need.lo_si
    t = need.tolerance.half_width_si_at(x, need.full_scale_si, need.span_si)
    return x, t / need.decision_rule.required_ratio


def route_need(snapshot: "CatalogSnapshot", need, load: Mapping[str, float], today, *,
               exclude_centres: frozenset[str] | set[str] = frozenset(), stats: dict | None = None, **route_kw):
    """The gateway's routing path for one need over one snapshot: ``routing.route``'s decision over what the
    index selects, computed by :mod:`metrofed.domain.indexed_routing` (the index's columns judged as arrays,
    ``route`` itself run over the few capabilities the answer shows).

    Selected: the capabilities of the need's quantity kind and effective service kind, in instrument groups
    the router's instrument rule accepts (:func:`instrument_filter`), whose joined coverage contains the range;
    when none of them is eligible, those that overlap it (the split material). The decision equals
    ``route(need, selected)``: same candidates, explanations, kept rejections, totals and split -- and its
    candidates and split equal those of ``route`` over the whole catalog (property-tested in
    tests/unit/test_catalog.py and tests/unit/test_indexed_routing.py). ``exclude_centres`` (failover) are
    left out. ``stats``, when given, receives ``candidates`` (capabilities selected), ``partial`` (whether the
    overlap pass ran), ``complex`` (capabilities routed by ``route`` whole) and ``witness`` (how many ``route``
    saw). ``route_kw`` go to ``route``; ``max_candidates`` defaults to ``indexed_routing.GATEWAY_CANDIDATES`` (20, each
    with its explanation; ``candidates_total`` counts every eligible one).
    """
    from metrofed.domain.indexed_routing import route_need as _indexed

    return _indexed(snapshot, need, load, today, exclude_centres=exclude_centres, stats=stats, **route_kw)


# ------------------------------------------------------------------------------------------------------
# The snapshot
# ------------------------------------------------------------------------------------------------------


class CatalogSnapshot:
    """An immutable, fully indexed view of the catalog. Safe to share between threads.

    Derive a changed snapshot with the ``with_*`` / ``without_*`` methods (copy-on-write); they return a new
    snapshot and leave this one untouched.
    """

    __slots__ = ("_entries", "_buckets", "_postings", "_by_centre", "_centres", "_centre_tok",
                 "_freshness", "_count_cs", "_count_qk", "generation")

    def __init__(self, *, entries: _PMap | None = None, buckets: dict | None = None,
                 postings: _PMap | None = None, by_centre: dict | None = None,
                 centres: dict | None = None, centre_tok: dict | None = None,
                 freshness: dict | None = None, count_cs: dict | None = None,
                 count_qk: dict | None = None, generation: int = 0):
        self._entries = entries if entries is not None else _PMap()
        self._buckets = buckets if buckets is not None else {}
        self._postings = postings if postings is not None else _PMap()
        self._by_centre = by_centre if by_centre is not None else {}
        self._centres = centres if centres is not None else {}
        self._centre_tok = centre_tok if centre_tok is not None else {}
        self._freshness = freshness if freshness is not None else {}
        self._count_cs = count_cs if count_cs is not None else {}  # (centre_id, service_kind) -> n
        self._count_qk = count_qk if count_qk is not None else {}  # quantity_kind -> n
        self.generation = generation

    def _replace(self, **kw) -> "CatalogSnapshot":
        args = {s.lstrip("_"): getattr(self, s) for s in self.__slots__}
        args.update(kw)
        args["generation"] = self.generation + 1
        return CatalogSnapshot(**args)

    # -- reading ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def get(self, centre_id: str, capability_id: str) -> Capability | None:
        return self._entries.get(f"{centre_id}/{capability_id}")

    def capabilities(self) -> Iterator[Capability]:
        return self._entries.values()

    @property
    def centres(self) -> Mapping[str, CentreProfile]:
        """Centre profiles by id (a read-only view; the router's ``centres`` argument)."""
        return _ReadOnly(self._centres)

    def centre(self, centre_id: str) -> CentreProfile | None:
        return self._centres.get(centre_id)

    def freshness(self, centre_id: str) -> Stamp | None:
        return self._freshness.get(centre_id)

    def capabilities_of(self, centre_id: str) -> list[Capability]:
        keys = self._by_centre.get(centre_id) or ()
        ents = self._entries
        return [ents.get(k) for k in sorted(keys)]

    def candidates(self, quantity_kind: str, service_kinds: Iterable[ServiceKind | str] | ServiceKind | str,
                   lo_si: float | None = None, hi_si: float | None = None, *, partial: bool = False,
                   u95_at: tuple[float, float] | None = None,
                   accept_instrument: Callable[[InstrumentGroup], bool] | None = None) -> list[Capability]:
        """Capabilities of this quantity kind and one of these service kinds that cover [lo_si, hi_si].

        Coverage is the bands' joined coverage: one contiguous run of bands must contain the whole range
        (within a 1e-9 relative tolerance). ``partial=True`` returns those that overlap it instead (the
        pieces a split can be made of). With no limits given, every capability of the buckets.

        ``u95_at=(x_si, u_max_si)`` (see :func:`adequacy_probe`) also drops capabilities whose expanded
        uncertainty (at ~95 %) at ``x_si`` cannot be below ``u_max_si`` in any band -- a sound bound, so the
        result stays a superset of what the router accepts; it still checks uncertainty, law, site, load.

        ``accept_instrument(group)`` is asked once per instrument group of the buckets -- the parsed
        instrument ``(head keys, qualifiers)`` of :func:`instrument_group`, not the raw texts; groups it
        refuses are skipped whole (see :func:`instrument_filter`, the router's own instrument rule).
        """
        if isinstance(service_kinds, (str, ServiceKind)):
            service_kinds = (service_kinds,)
        kinds = dict.fromkeys(ServiceKind(s) for s in service_kinds)
        out: list[Capability] = []
        if lo_si is None and hi_si is None:
            for sk in kinds:
                for g, bucket in self._buckets.get((quantity_kind, sk), _EMPTY_DICT).items():
                    if accept_instrument is None or accept_instrument(g):
                        bucket.all(out)
            return list({id(c): c for c in out}.values())  # a capability with a gap: one entry per interval
        lo = hi_si if lo_si is None else lo_si
        hi = lo_si if hi_si is None else hi_si
        if lo > hi:
            lo, hi = hi, lo
        t = _tol(lo, hi)
        # full: entry.lo <= lo and entry.hi >= hi; partial: entry.lo <= hi and entry.hi >= lo
        a, b = (hi + t, lo - t) if partial else (lo + t, hi - t)
        # capabilities whose intervals a seam narrower than a few tolerances separates: the router's own
        # tolerance may join them, so they are taken when they overlap (route decides)
        seams = None if partial else (4 * t, hi + t, lo - t)
        probe = None
        if u95_at is not None and not partial:
            probe = (u95_at[0], u95_at[1] * (1 + _REL_TOL) + 1e-300)
        for sk in kinds:
            for g, bucket in self._buckets.get((quantity_kind, sk), _EMPTY_DICT).items():
                if accept_instrument is None or accept_instrument(g):
                    bucket.covering(a, b, out, probe, seams)
        if out:  # a capability with gaps has one entry per interval: keep it once
            seen: set[int] = set()
            uniq = []
            for c in out:
                if id(c) not in seen:
                    seen.add(id(c))
                    uniq.append(c)
            out = uniq
        return out

    def stats(self) -> CatalogStats:
        by_centre: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        by_cs: dict[str, dict[str, int]] = {}
        for (c, sk), n in self._count_cs.items():
            by_centre[c] = by_centre.get(c, 0) + n
            by_kind[sk.value] = by_kind.get(sk.value, 0) + n
            by_cs.setdefault(c, {})[sk.value] = n
        return CatalogStats(
            capabilities=len(self._entries), centres=len(self._centres),
            by_centre=dict(sorted(by_centre.items())), by_service_kind=dict(sorted(by_kind.items())),
            by_quantity_kind=dict(sorted(self._count_qk.items())),
            by_centre_service_kind={c: dict(sorted(v.items())) for c, v in sorted(by_cs.items())},
            generation=self.generation, freshness=dict(self._freshness))

    # -- search ------------------------------------------------------------------------------------------
    def _posting(self, tok: str):
        return self._postings.get(tok)

    def search(self, text: str = "", *, service_kind: ServiceKind | str | None = None,
               quantity_kind: str | None = None, province: str | None = None, city: str | None = None,
               centre_id: str | None = None, range_lo_si: float | None = None,
               range_hi_si: float | None = None, max_relative_u: float | None = None,
               limit: int = 50, offset: int = 0) -> SearchResult:
        """Search every centre's capabilities in Chinese or English, with filters and facets.

        Text matches instrument type, measurand (zh/en), keywords, method code (``JJG 52``), and the centre's
        name, host, city and province. Service-kind words in the text (校准, calibrate, 检定 ...) narrow to
        that kind. A hit must match all query tokens when there are one or two, two thirds otherwise; hits
        rank by matched tokens weighted by rarity, plus a bonus for whole Chinese terms. Empty text lists
        everything the filters keep. Facets count the filtered hits (all of them, not just the page).
        """
        q = _parse_query(text, lambda w: w in self._postings)
        sk_filter = ServiceKind(service_kind) if service_kind is not None else None
        ents = self._entries
        n_docs = max(len(ents), 1)

        # centres allowed by the centre filters
        allowed_centres: set[str] | None = None
        if province is not None or city is not None or centre_id is not None:
            allowed_centres = set()
            pv = province.lower() if province is not None else None
            ct = city.lower() if city is not None else None
            for cid in set(self._by_centre) | set(self._centres):
                if centre_id is not None and cid != centre_id:
                    continue
                p = self._centres.get(cid)
                if pv is not None and (p is None or pv not in (p.province.zh.lower(), p.province.en.lower())):
                    continue
                if ct is not None and (p is None or ct not in (p.city.zh.lower(), p.city.en.lower())):
                    continue
                allowed_centres.add(cid)

        scores: dict[str, float] = {}
        matched: dict[str, list[str]] = {}
        all_matched: list[str] = []
        unit_docs: list = []
        order: list = []
        if q.units:
            # each unit's documents: its posting, plus every capability of a centre whose name etc. has it
            unit_docs = []
            for u in q.units:
                post = self._posting(u)
                cids = self._centre_tok.get(u, ())
                df = (len(post) if post is not None else 0) + sum(len(self._by_centre.get(c, ())) for c in cids)
                unit_docs.append((u, post, cids, df))
            order = sorted(unit_docs, key=lambda x: x[3])
        if q.units and q.required == len(q.units) and not any(ud[2] for ud in unit_docs):
            # every token required and none matched through a centre: intersect postings (C speed)
            posts = [ud[1] for ud in order]
            if any(p is None for p in posts):
                cur: set | frozenset | _PSet = frozenset()
            else:
                cur = posts[0]
                for p in posts[1:]:
                    cur = _intersect(cur, p)
                    if not cur:
                        break
            base = sum(math.log(1.0 + n_docs / max(ud[3], 1)) for ud in unit_docs)
            scores = dict.fromkeys(cur, base)
            for bt in q.bonus:
                bp = self._posting(bt)
                if bp is not None and scores:
                    both = [k for k in scores if k in bp] if isinstance(bp, _PSet) else scores.keys() & bp
                    for k in both:
                        scores[k] += 2.0
            all_matched = list(q.units)
            keys = scores.keys()
            if q.kinds and sk_filter is None:
                keys = [k for k in keys if ents.get(k).service_kind in q.kinds]
        elif q.units:
            # a hit must appear in at least one of the (n - required + 1) rarest units
            seed_units = order[: len(order) - q.required + 1]
            cands: set[str] = set()
            for _u, post, cids, _df in seed_units:
                if post is not None:
                    cands.update(post)
                for c in cids:
                    cands.update(self._by_centre.get(c, ()))
            for key in cands:
                cap = ents.get(key)
                if cap is None:
                    continue
                sc = 0.0
                m: list[str] = []
                for u, post, cids, df in unit_docs:
                    if (post is not None and key in post) or cap.centre_id in cids:
                        sc += math.log(1.0 + n_docs / max(df, 1))
                        m.append(u)
                if len(m) < q.required:
                    continue
                for bt in q.bonus:
                    bp = self._posting(bt)
                    if bp is not None and key in bp:
                        sc += 2.0
                scores[key] = sc
                matched[key] = m
            keys: Iterable[str] = scores.keys()
            if q.kinds and sk_filter is None:
                keys = [k for k in keys if ents.get(k).service_kind in q.kinds]
        elif q.kinds or sk_filter is not None or quantity_kind is not None:
            kinds = [sk_filter] if sk_filter is not None else (list(q.kinds) or list(ServiceKind))
            if sk_filter is not None and q.kinds and sk_filter not in q.kinds:
                kinds = []
            collected: list[Capability] = []
            for (qk, sk), groups in self._buckets.items():
                if sk in kinds and (quantity_kind is None or qk == quantity_kind):
                    for bucket in groups.values():
                        bucket.all(collected)
            keys = list(dict.fromkeys(c.key for c in collected))
        elif allowed_centres is not None:
            keys = [k for c in allowed_centres for k in self._by_centre.get(c, ())]
        else:
            keys = [k for s in ents._shards for k in s]

        # filters (list comprehensions: this runs over every hit, 100k at 1M rows for a common word)
        shards, mask = ents._shards, _MAP_SHARDS - 1
        caps = [shards[hash(k) & mask].get(k) for k in keys]
        caps = [c for c in caps if c is not None]
        if sk_filter is not None:
            caps = [c for c in caps if c.service_kind is sk_filter]
        if quantity_kind is not None:
            caps = [c for c in caps if c.quantity_kind == quantity_kind]
        if allowed_centres is not None:
            caps = [c for c in caps if c.centre_id in allowed_centres]
        if range_lo_si is not None or range_hi_si is not None:
            lo = range_hi_si if range_lo_si is None else range_lo_si
            hi = range_lo_si if range_hi_si is None else range_hi_si
            caps = [c for c in caps if c.bands and covers(c, lo, hi)]
        if max_relative_u is not None:
            caps = [c for c in caps if _relative_u_ok(c, range_lo_si, range_hi_si, max_relative_u)]

        facets: dict[str, dict[str, int]] = {
            "service_kind": {k.value: n for k, n in Counter(c.service_kind for c in caps).items()},
            "quantity_kind": dict(Counter(c.quantity_kind for c in caps)),
            "province": {}, "city": {}, "centre": {}}
        fp, fc = facets["province"], facets["city"]
        per_centre = Counter(c.centre_id for c in caps)
        for cid, n in per_centre.items():
            facets["centre"][cid] = n
            p = self._centres.get(cid)
            pv = (p.province.zh or p.province.en) if p else ""
            ct = (p.city.zh or p.city.en) if p else ""
            fp[pv] = fp.get(pv, 0) + n
            fc[ct] = fc.get(ct, 0) + n
        for k in list(facets):
            facets[k] = dict(sorted(facets[k].items(), key=lambda kv: (-kv[1], kv[0])))

        total = len(caps)
        end = None if limit < 0 else offset + limit
        if scores:
            ranked = sorted([(-scores.get(k, 0.0), k, c) for c, k in zip(caps, [c.key for c in caps])]) \
                if end is None or end * 8 > total else \
                heapq.nsmallest(end, ((-scores.get(k, 0.0), k, c) for c, k in zip(caps, [c.key for c in caps])))
        else:
            ranked = [(0.0, k, c) for k, c in sorted(zip([c.key for c in caps], caps), key=lambda kc: kc[0])]
        page = ranked[offset:end]
        return SearchResult(
            hits=tuple(SearchHit(cap, self._centres.get(cap.centre_id), -nsc or 0.0,
                                 tuple(matched.get(k, all_matched))) for nsc, k, cap in page),
            total=total, facets=facets)

    # -- copy-on-write updates -----------------------------------------------------------------------
    def with_freshness(self, centre_id: str, stamp: Stamp | None) -> "CatalogSnapshot":
        if stamp is None:
            return self
        old = self._freshness.get(centre_id)
        if old is not None and old >= stamp:
            return self
        f = dict(self._freshness)
        f[centre_id] = stamp
        return self._replace(freshness=f)

    def with_centre(self, profile: CentreProfile) -> "CatalogSnapshot":
        centres = dict(self._centres)
        centres[profile.centre_id] = profile
        return self._replace(centres=centres, centre_tok=_centre_token_index(centres))

    def without_centre(self, centre_id: str) -> "CatalogSnapshot":
        snap = self
        for key in sorted(self._by_centre.get(centre_id) or ()):
            snap = snap._without_key(key)
        centres = dict(snap._centres)
        centres.pop(centre_id, None)
        fresh = dict(snap._freshness)
        fresh.pop(centre_id, None)
        return snap._replace(centres=centres, centre_tok=_centre_token_index(centres), freshness=fresh)

    def with_capability(self, cap: Capability) -> "CatalogSnapshot":
        """Insert or replace (by key) without version checks: :class:`Catalog` decides what applies."""
        return self._change(cap.key, self._entries.get(cap.key), cap)

    def without_capability(self, centre_id: str, capability_id: str) -> "CatalogSnapshot":
        key = f"{centre_id}/{capability_id}"
        old = self._entries.get(key)
        return self._change(key, old, None) if old is not None else self

    def _without_key(self, key: str) -> "CatalogSnapshot":
        old = self._entries.get(key)
        return self._change(key, old, None) if old is not None else self

    def _change(self, key: str, old: Capability | None, new: Capability | None) -> "CatalogSnapshot":
        """Replace ``old`` by ``new`` under ``key`` (either may be None), copying only what they touch."""
        buckets = dict(self._buckets)
        if old is not None:
            bk, g = (old.quantity_kind, old.service_kind), instrument_group(old)
            groups = dict(buckets.get(bk, _EMPTY_DICT))
            bucket = groups.get(g, _EMPTY_BUCKET).remove(key)
            if bucket.n:
                groups[g] = bucket
            else:
                groups.pop(g, None)
            if groups:
                buckets[bk] = groups
            else:
                buckets.pop(bk, None)
        if new is not None:
            bk, g = (new.quantity_kind, new.service_kind), instrument_group(new)
            groups = dict(buckets.get(bk, _EMPTY_DICT))
            bucket = groups.get(g, _EMPTY_BUCKET)
            bucket = bucket.insert(GroupTable.rows_of(new, key, joined_coverage(new), _u_floor))
            groups[g] = bucket
            buckets[bk] = groups
        old_t = _doc_tokens(old) if old is not None else _EMPTY_FS
        new_t = _doc_tokens(new) if new is not None else _EMPTY_FS
        changes: dict[str, object] = {}
        postings = self._postings
        for tok in old_t - new_t:
            changes[tok] = _set_discard(postings.get(tok), key)
        for tok in new_t - old_t:
            changes[tok] = _set_add(postings.get(tok), key)
        by_centre = self._by_centre
        count_cs = dict(self._count_cs)
        count_qk = dict(self._count_qk)
        if old is not None:
            _inc(count_cs, (old.centre_id, old.service_kind), -1)
            _inc(count_qk, old.quantity_kind, -1)
        if new is not None:
            _inc(count_cs, (new.centre_id, new.service_kind), 1)
            _inc(count_qk, new.quantity_kind, 1)
        if old is None or new is None:
            cid = (new or old).centre_id
            by_centre = dict(by_centre)
            s = _set_add(by_centre.get(cid), key) if new is not None else _set_discard(by_centre.get(cid), key)
            if s is None:
                by_centre.pop(cid, None)
            else:
                by_centre[cid] = s
        entries = self._entries.set(key, new) if new is not None else self._entries.delete(key)
        return self._replace(entries=entries, buckets=buckets, postings=postings.update_many(changes),
                             by_centre=by_centre, count_cs=count_cs, count_qk=count_qk)


class _ReadOnly(Mapping):
    __slots__ = ("_d",)

    def __init__(self, d: dict):
        self._d = d

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def get(self, k, default=None):
        return self._d.get(k, default)

    def __contains__(self, k):
        return k in self._d


def _centre_token_index(centres: Mapping[str, CentreProfile]) -> dict[str, frozenset[str]]:
    idx: dict[str, set[str]] = {}
    for cid, p in centres.items():
        for t in _centre_tokens(p):
            idx.setdefault(t, set()).add(cid)
    return {t: frozenset(v) for t, v in idx.items()}


EMPTY_SNAPSHOT = CatalogSnapshot()


# ------------------------------------------------------------------------------------------------------
# Version rules shared by the builder and the live catalog
# ------------------------------------------------------------------------------------------------------


def _supersedes(cap: Capability, current: Capability | None, tomb_version: int | None) -> bool:
    """Does ``cap`` replace what we hold? Only a strictly newer version does (replays are no-ops)."""
    if current is not None and cap.version <= current.version:
        return False
    if tomb_version is not None and cap.version <= tomb_version:
        return False
    return True


# ------------------------------------------------------------------------------------------------------
# The builder
# ------------------------------------------------------------------------------------------------------


class CatalogBuilder:
    """Collects events into plain dicts (cheap per event) and indexes them once in :meth:`build`.

    Feed it the topics from offset 0 while the old snapshot keeps serving; then
    ``catalog.install(builder)``. The same version rules as the live catalog apply.
    """

    def __init__(self) -> None:
        self._caps: dict[str, Capability] = {}
        self._centres: dict[str, CentreProfile] = {}
        self._fresh: dict[str, Stamp] = {}
        self._tomb: dict[str, int] = {}
        self.events = 0

    def __len__(self) -> int:
        return len(self._caps)

    def _stamp(self, centre_id: str, stamp: Stamp | None) -> None:
        self.events += 1
        if stamp is not None:
            old = self._fresh.get(centre_id)
            if old is None or stamp > old:
                self._fresh[centre_id] = stamp

    def upsert_centre(self, profile: CentreProfile, stamp: Stamp | None = None) -> bool:
        self._stamp(profile.centre_id, stamp)
        self._centres[profile.centre_id] = profile
        return True

    def version_of(self, key: str) -> int:
        """The highest version of ``key`` held or withdrawn (0: never seen)."""
        cur = self._caps.get(key)
        return max(cur.version if cur else 0, self._tomb.get(key) or 0)

    def upsert_capability(self, cap: Capability, stamp: Stamp | None = None) -> bool:
        self._stamp(cap.centre_id, stamp)
        key = cap.key
        if not _supersedes(cap, self._caps.get(key), self._tomb.get(key)):
            return False
        self._caps[key] = cap
        self._tomb.pop(key, None)
        return True

    def remove_capability(self, centre_id: str, capability_id: str, stamp: Stamp | None = None,
                          version: int | None = None) -> bool:
        self._stamp(centre_id, stamp)
        key = f"{centre_id}/{capability_id}"
        cur = self._caps.get(key)
        if cur is not None and version is not None and version < cur.version:
            return False  # a withdrawal of an older version than the one we hold
        self._caps.pop(key, None)
        known = [v for v in (version, cur.version if cur else None, self._tomb.get(key)) if v is not None]
        self._tomb[key] = max(known) if known else 0
        return cur is not None

    def remove_centre(self, centre_id: str, stamp: Stamp | None = None) -> bool:
        existed = centre_id in self._centres
        self._centres.pop(centre_id, None)
        self._fresh.pop(centre_id, None)
        prefix = centre_id + "/"
        for key in [k for k in self._caps if k.startswith(prefix)]:
            self._tomb[key] = self._caps.pop(key).version
            existed = True
        return existed

    def build(self) -> CatalogSnapshot:
        """Index everything: one pass over the rows, then sort each bucket. O(n log n).

        The cyclic garbage collector is paused meanwhile: building allocates millions of acyclic objects,
        and each gen-2 pass would traverse all of them again (4x slower at 100k rows, measured).
        """
        with gc_paused():
            return self._build()

    def _build(self) -> CatalogSnapshot:
        rows: dict[tuple[str, ServiceKind], dict[InstrumentGroup, list]] = {}
        posting_lists: dict[str, list[str]] = {}
        by_centre: dict[str, list[str]] = {}
        count_cs: dict = {}
        count_qk: dict = {}
        entries: dict[str, Capability] = {}
        for key, cap in self._caps.items():
            key = cap.key  # one string object shared by every structure
            entries[key] = cap
            groups = rows.get((cap.quantity_kind, cap.service_kind))
            if groups is None:
                groups = rows[(cap.quantity_kind, cap.service_kind)] = {}
            g = instrument_group(cap)
            r = groups.get(g)
            if r is None:
                r = groups[g] = []
            r.extend(GroupTable.rows_of(cap, key, joined_coverage(cap), _u_floor))
            for tok in _doc_tokens(cap):
                pl = posting_lists.get(tok)
                if pl is None:
                    posting_lists[tok] = [key]
                else:
                    pl.append(key)
            bc = by_centre.get(cap.centre_id)
            if bc is None:
                by_centre[cap.centre_id] = [key]
            else:
                bc.append(key)
            ck = (cap.centre_id, cap.service_kind)
            count_cs[ck] = count_cs.get(ck, 0) + 1
            count_qk[cap.quantity_kind] = count_qk.get(cap.quantity_kind, 0) + 1
        buckets = {bk: {g: GroupTable.build(r) for g, r in groups.items()} for bk, groups in rows.items()}
        postings = _PMap.from_dict({t: _pset_of(v) for t, v in posting_lists.items()})
        centres = dict(self._centres)
        return CatalogSnapshot(
            entries=_PMap.from_dict(entries), buckets=buckets, postings=postings,
            by_centre={c: _pset_of(v) for c, v in by_centre.items()}, centres=centres,
            centre_tok=_centre_token_index(centres), freshness=dict(self._fresh), count_cs=count_cs,
            count_qk=count_qk, generation=0)


# ------------------------------------------------------------------------------------------------------
# The live catalog
# ------------------------------------------------------------------------------------------------------


class Catalog:
    """The catalog in use: an atomically swapped :class:`CatalogSnapshot` plus the version rules.

    Readers call :meth:`current` (lock-free: one reference read) and keep that snapshot for the whole of a
    request. Writers (the bus adapter; one at a time, serialised by a lock) apply events; each applied
    event publishes a new snapshot by copy-on-write. ``ready`` turns true when the first rebuild is
    installed: before that the gateway should answer "catalog loading", not "nothing found".
    """

    def __init__(self, snapshot: CatalogSnapshot | None = None):
        self._snap = snapshot if snapshot is not None else EMPTY_SNAPSHOT
        self._tomb: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        if snapshot is not None:
            self._ready.set()

    # -- reading -----------------------------------------------------------------------------------------
    def current(self) -> CatalogSnapshot:
        return self._snap

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def freshness(self, centre_id: str) -> Stamp | None:
        return self._snap.freshness(centre_id)

    # -- rebuilding -------------------------------------------------------------------------------------
    def rebuild(self) -> CatalogBuilder:
        """A fresh builder to fill from offset 0; the current snapshot keeps serving meanwhile."""
        return CatalogBuilder()

    def install(self, builder: CatalogBuilder | CatalogSnapshot, *, freeze_gc: bool = False) -> CatalogSnapshot:
        """Build (if given a builder) and swap in the new snapshot with one reference assignment.

        ``freeze_gc=True`` calls :func:`gc.freeze` after the swap: the snapshot's millions of objects move to
        the collector's permanent generation, so full collections stop traversing them (at 1M rows a
        gen-2 pass otherwise costs hundreds of ms, and lands on some unlucky request). The structures are
        acyclic, so reference counting still frees an old snapshot once nobody holds it.
        """
        if isinstance(builder, CatalogBuilder):
            snap = builder.build()
            tomb = dict(builder._tomb)
        else:
            snap, tomb = builder, {}
        with self._lock:
            snap.generation = self._snap.generation + 1
            self._tomb = tomb
            self._snap = snap  # the swap: readers see the old snapshot or this one, nothing in between
        self._ready.set()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        return snap

    # -- live events ------------------------------------------------------------------------------------
    def version_of(self, key: str) -> int:
        """The highest version of ``key`` held or withdrawn (0: never seen)."""
        cur = self._snap._entries.get(key)
        return max(cur.version if cur else 0, self._tomb.get(key) or 0)

    def upsert_centre(self, profile: CentreProfile, stamp: Stamp | None = None) -> bool:
        with self._lock:
            self._snap = self._snap.with_centre(profile).with_freshness(profile.centre_id, stamp)
        return True

    def upsert_capability(self, cap: Capability, stamp: Stamp | None = None) -> bool:
        """Apply a published or revised capability. Returns False when it was stale and ignored."""
        with self._lock:
            snap = self._snap
            key = cap.key
            applied = _supersedes(cap, snap._entries.get(key), self._tomb.get(key))
            if applied:
                snap = snap.with_capability(cap)
                self._tomb.pop(key, None)
            self._snap = snap.with_freshness(cap.centre_id, stamp)
        return applied

    def remove_capability(self, centre_id: str, capability_id: str, stamp: Stamp | None = None,
                          version: int | None = None) -> bool:
        """Apply a withdrawal (tombstone). A later upsert must carry a higher version to bring it back."""
        with self._lock:
            snap = self._snap
            key = f"{centre_id}/{capability_id}"
            cur = snap._entries.get(key)
            if cur is not None and version is not None and version < cur.version:
                self._snap = snap.with_freshness(centre_id, stamp)
                return False
            known = [v for v in (version, cur.version if cur else None, self._tomb.get(key)) if v is not None]
            self._tomb[key] = max(known) if known else 0
            if cur is not None:
                snap = snap.without_capability(centre_id, capability_id)
            self._snap = snap.with_freshness(centre_id, stamp)
        return cur is not None

    def remove_centre(self, centre_id: str, stamp: Stamp | None = None) -> bool:
        """The centre left the federation: its profile, capabilities and freshness go."""
        with self._lock:
            snap = self._snap
            existed = snap.centre(centre_id) is not None or bool(snap._by_centre.get(centre_id))
            for cap in snap.capabilities_of(centre_id):
                self._tomb[cap.key] = cap.version
            self._snap = snap.without_centre(centre_id)
        return existed
