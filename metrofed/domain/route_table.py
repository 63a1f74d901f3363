"""The routing index's storage: the entries of one (quantity kind, service kind, instrument group), in columns.

An *entry* is one contiguous interval of a capability's joined coverage (``catalog.joined_coverage``): a
capability with a gap between its bands has two. Besides the interval and the uncertainty floor the
lookup reads (``covering``), each entry carries, as numbers, everything the router's rules 3-7 and its
score read of the capability -- the bands of the interval (up to ``NB``), centre, site, capacity, price,
lead time, method code and instrument text (the bands, centre, code and text as interned ids) -- so that
``indexed_routing`` can judge thousands of entries per request with array operations instead of a Python
loop per capability.

An entry is *simple* when those numbers decide the rules exactly as ``routing.route`` does: its bands'
units fit the quantity kind, their data are finite, the interval is exactly one of the router's segments
(bands joined at eps 0) and holds at most ``NB`` bands. Whether a segment seam could close at a
request's tolerance is decided per request from ``seam`` (the capability's smallest gap between
segments). Everything else is routed by ``routing.route`` itself.

Band sets: the band data of an interval (routing._band_data per band) are interned process-wide
(``bandsets``), and a row holds the id: capabilities repeat the same ranges and uncertainties (one lab's
bands for many instrument types, the same standard at many labs), so a request judges each distinct band
set once (3.5k of them at 100k capabilities in bench/synthetic.py) and reads the result per row.

Storage: a table is a tuple of immutable blocks of columns (numpy arrays). A live insert copies only the
last block while it is small (``_TAIL`` rows), else starts a new one; a removal copies one block's
``alive`` mask (and compacts the block when half of it is dead). A snapshot that shares a table shares
its blocks.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .capability import Capability, Site
from .instruments import _cap_texts, _heads_quals, capability_tokens
from .routing import _DIM_OK_TRUE, _band_data, _segments, _unit_fits  # the router's own definitions: one truth

NB = 3  # bands of one interval held in columns; an interval with more is routed by routing.route
_BLOCK = 65536  # rows per block when a table is built (fewer, larger blocks: fewer array calls per lookup)
_TAIL = 1024  # a live insert copies the last block while it has fewer rows than this, else starts one

# Band data fields (the first axis of a band-set array, shaped (field, set, band)): routing._band_data's tuple.
B_LO, B_HI, B_UR, B_UA, B_F95, B_Z = range(6)

SITE_CODE = {Site.LAB: 0, Site.ON_SITE: 1, Site.BOTH: 2}


class Interner:
    """Strings (or tuples) <-> dense ints, append-only and process-wide, so that array columns can hold
    them and per-request lookup tables can be indexed by them. Appends happen on the catalog's writer
    thread; readers only index ``values`` below a length they read first."""

    __slots__ = ("ids", "values")

    def __init__(self) -> None:
        self.ids: dict = {}
        self.values: list = []

    def __call__(self, v) -> int:
        i = self.ids.get(v)
        if i is None:
            i = self.ids[v] = len(self.values)
            self.values.append(v)
        return i


CENTRES = Interner()  # centre id
CODES = Interner()  # method code
ITEXTS = Interner()  # (instrument zh, en, measurand zh, en, keywords): what instruments.judge reads
HEADS = Interner()  # instruments._heads_quals of the capability's texts: judge's relevance depends only on it
HEADS_TEXT: list[int] = []  # HEADS id -> an ITEXTS id with that parse (to ask judge about it)


_TEXT_IDS, _CENTRE_IDS, _CODE_IDS = ITEXTS.ids, CENTRES.ids, CODES.ids  # direct lookups on the hot path
_TEXT_HEADS: list[int] = []  # ITEXTS id -> HEADS id, computed with the text's id
# word of judge's word overlap (instruments.capability_tokens) -> the ITEXTS ids whose text has it; appended
# on the writer thread (a reader sees a prefix, which holds every id of the snapshot it reads)
_POSTINGS: dict[str, list[int]] = {}
_POSTING_ARRAYS: dict[str, np.ndarray] = {}  # the same as arrays, remade when the list has grown


def overlap_counts(words) -> np.ndarray:
    """Per ITEXTS id, how many of ``words`` (a need's side of judge's word overlap) its capability text has
    -- the numerator of judge's overlap, for every text at once."""
    parts = []
    for w in words:
        ids = _POSTINGS.get(w)
        if not ids:
            continue
        arr = _POSTING_ARRAYS.get(w)
        if arr is None or len(arr) != len(ids):
            arr = _POSTING_ARRAYS[w] = np.array(ids, np.int64)
        parts.append(arr)
    n = len(ITEXTS.values)
    return np.bincount(np.concatenate(parts), minlength=n) if parts else np.zeros(n, np.int64)


# Band sets: id -> (band data per field, set, band slot) and band count, in arrays the writer thread fills
# (doubling their capacity when full: a reader keeps the arrays it took, which hold every id it can meet).
# Id 0 is the empty set (rows routing.route judges itself).
_BSET_IDS: dict[tuple, int] = {(): 0}
_BSETS = (np.zeros((6, 1024, NB)), np.zeros(1024, np.int8))  # (band data, band count), swapped as one


def _bandset(bd: tuple) -> int:
    """The id of the band set ``bd`` (routing._band_data tuples, at most NB), interning it when new."""
    global _BSETS
    i = _BSET_IDS.get(bd)
    if i is None:
        i = len(_BSET_IDS)
        bands, nb = _BSETS
        if i == len(nb):
            bands, nb = np.zeros((6, 2 * i, NB)), np.zeros(2 * i, np.int8)
            bands[:, :i], nb[:i] = _BSETS
            _BSETS = bands, nb
        for t, row in enumerate(bd):
            bands[:, i, t] = row
        nb[i] = len(bd)
        _BSET_IDS[bd] = i  # published last: a reader never meets an id whose data are not written yet
    return i


def bandsets() -> tuple[np.ndarray, np.ndarray]:
    """(band data shaped (field, set, band slot), band count per set), indexed by band-set id."""
    return _BSETS


def _derive(cap: Capability, intervals) -> tuple:
    """(per-interval (simple, bands array rows, band count), seam, capability columns) for one capability."""
    kind = cap.quantity_kind
    bands = cap.bands
    per: list[tuple] = [(False, None, 0)] * len(intervals)
    seam = math.inf
    ok = bool(bands)
    if len(bands) == 1 and len(intervals) == 1:  # most capabilities: the same checks, without the loops
        ok = False
        b = bands[0]
        try:
            if (b.unit, kind) in _DIM_OK_TRUE or _unit_fits(b.unit, kind):
                row = _band_data(b, kind)
                # a non-finite number makes the sum non-finite (so may an overflow: then simply not simple)
                if math.isfinite(sum(row)) and row[0] == intervals[0][0] and row[1] == intervals[0][1]:
                    per = [(True, [row], 1)]
        except Exception:  # noqa: BLE001 - a kind or uncertainty the rules judge (and fail) themselves
            pass
    if ok:
        try:
            ok = all(_unit_fits(b.unit, kind) for b in bands)
            bd = [_band_data(b, kind) for b in bands] if ok else []
        except Exception:  # noqa: BLE001 - a kind or uncertainty the rules judge (and fail) themselves
            ok = False
    if ok and math.isfinite(sum(map(sum, bd))):  # (non-finite anywhere: the sum is)
        segs = _segments(bands, 0.0)
        for j in range(1, len(segs)):
            gap = segs[j][0] - segs[j - 1][1]
            if gap < seam:
                seam = gap
        if len(segs) == len(intervals) and all(s[0] == iv[0] and s[1] == iv[1] for s, iv in zip(segs, intervals)):
            ok = all(len(s[2]) <= NB for s in segs)  # simple as a whole: never half in each path
            per = [(ok, [bd[i] for i in s[2]], len(s[2])) for s in segs]
    it, ms = cap.instrument_type, cap.measurand
    text = (it.zh, it.en, ms.zh, ms.en, cap.keywords)
    itok = _TEXT_IDS.get(text)
    if itok is None:
        itok = ITEXTS(text)
    if itok == len(_TEXT_HEADS):  # a text not seen before
        hq = HEADS(_heads_quals(*_cap_texts(it.zh, it.en, ms.zh, ms.en), True))  # cached: the group key parsed it
        if hq == len(HEADS_TEXT):
            HEADS_TEXT.append(itok)
        _TEXT_HEADS.append(hq)
        for word in capability_tokens(*text):  # tokenised once per text, here rather than in a request
            _POSTINGS.setdefault(word, []).append(itok)
    centre = _CENTRE_IDS.get(cap.centre_id)
    code = _CODE_IDS.get(cap.method_code)
    cols = (CENTRES(cap.centre_id) if centre is None else centre, SITE_CODE.get(cap.site, 2), cap.capacity_per_month,
            cap.price_cny, cap.lead_time_days, CODES(cap.method_code) if code is None else code, itok,
            _TEXT_HEADS[itok])
    return per, seam, cols


# the numbers of a row: lo, hi, floor (ur, ua, uz), seam, simple, intervals of the capability, the
# capability's 8 columns (see _derive), band-set id
_NUMS = 17


class Block:
    """Immutable columns of up to ``_BLOCK`` entries; ``alive`` masks removed ones."""

    __slots__ = ("lo", "hi", "ur", "ua", "uz", "hkey", "alive", "nlive", "simple", "seam", "bset", "centre",
                 "site", "capn", "price", "lead", "code", "itok", "hq", "nseg", "caps", "keys", "plain",
                 "seam_floor", "any_uz", "key_sorted")

    def _finish(self) -> "Block":
        # plain: every row simple (and the smallest seam, else -inf): a lookup with a tolerance below it
        # skips the per-row check
        self.seam_floor = float(self.seam.min()) if len(self.seam) else math.inf
        self.any_uz = bool(self.uz.any())  # a relative U counted from a zero other than 0 (°C ...)
        self.plain = self.seam_floor if self.simple.all() else -math.inf
        return self

    def __len__(self) -> int:
        return len(self.caps)

    @classmethod
    def of_rows(cls, rows: list[tuple], key_sorted: bool = False) -> "Block":
        """``rows``: (lo, key, hi, cap, numbers) -- see GroupTable.rows_of; ``key_sorted``: they
        are in (centre, capability) order (a built block: the first rejections in that order are then among
        its first rows)."""
        b = cls()
        b.key_sorted = key_sorted
        n = len(rows)
        m = np.fromiter(itertools.chain.from_iterable(r[4] for r in rows), np.float64, n * _NUMS).reshape(n, _NUMS)
        b.lo, b.hi, b.ur, b.ua, b.uz, b.seam = (m[:, j].copy() for j in range(6))
        b.simple = m[:, 6] != 0
        b.nseg = m[:, 7].astype(np.int16)
        b.centre = m[:, 8].astype(np.int32)
        b.site = m[:, 9].astype(np.int8)
        b.capn = m[:, 10].copy()
        b.price = m[:, 11].copy()
        b.lead = m[:, 12].copy()
        b.code = m[:, 13].astype(np.int32)
        b.itok = m[:, 14].astype(np.int32)
        b.hq = m[:, 15].astype(np.int32)
        b.bset = m[:, 16].astype(np.int32)
        b.hkey = np.fromiter(map(hash, (r[1] for r in rows)), np.int64, n)
        b.alive = np.ones(n, np.bool_)
        b.nlive = n
        b.caps = [r[3] for r in rows]
        b.keys = [r[1] for r in rows]
        return b._finish()

    def _with_alive(self, alive: np.ndarray, nlive: int) -> "Block":
        b = Block()
        for s in Block.__slots__:
            setattr(b, s, getattr(self, s))
        b.alive = alive
        b.nlive = nlive
        return b

    def take(self, idx: np.ndarray) -> "Block":
        """A new block of the rows ``idx`` (in that order)."""
        b = Block()
        b.key_sorted = self.key_sorted  # idx ascending: the order is kept
        for s in _COLUMNS:
            setattr(b, s, getattr(self, s)[idx])
        b.alive = np.ones(len(idx), np.bool_)
        b.nlive = len(idx)
        b.caps = [self.caps[j] for j in idx]
        b.keys = [self.keys[j] for j in idx]
        return b._finish()

    @staticmethod
    def concat(blocks: list["Block"]) -> "Block":
        b = Block()
        b.key_sorted = False
        for s in _COLUMNS + ("alive",):
            setattr(b, s, np.concatenate([getattr(x, s) for x in blocks]))
        b.nlive = sum(x.nlive for x in blocks)
        b.caps = [c for x in blocks for c in x.caps]
        b.keys = [k for x in blocks for k in x.keys]
        return b._finish()


_COLUMNS = ("lo", "hi", "ur", "ua", "uz", "hkey", "simple", "seam", "bset", "centre", "site", "capn", "price", "lead",
            "code", "itok", "hq", "nseg")


class GroupTable:
    """The entries of one instrument group of a (quantity kind, service kind) bucket."""

    __slots__ = ("blocks", "n")

    def __init__(self, blocks: tuple[Block, ...]):
        self.blocks = blocks
        self.n = sum(b.nlive for b in blocks)

    @staticmethod
    def rows_of(cap: Capability, key: str, intervals, u_floor) -> list[tuple]:
        """Rows of one capability: one per interval, (lo, key, hi, cap, numbers), the numbers
        being Block's columns in ``_NUMS`` order. ``u_floor(cap)`` = (ur, ua, uz) with U95 >= ur*|x - uz| + ua
        in every band (catalog._u_floor); for a simple one-band capability it is read off its band data."""
        per, seam, cols = _derive(cap, intervals)
        if len(per) == 1 and per[0][0] and per[0][2] == 1:
            _lo, _hi, r_, a_, f95, bz = per[0][1][0]
            head = (f95 * r_, f95 * a_, bz if r_ else 0.0, seam)  # = u_floor(cap), without its pass over the bands
        else:
            head = (*u_floor(cap), seam)
        nseg = len(per)
        out = []
        for (lo, hi), (ok, bdl, _k) in zip(intervals, per):
            nums = (lo, hi) + head + ((1.0, nseg, *cols, _bandset(tuple(bdl))) if ok else (0.0, nseg, *cols, 0))
            out.append((lo, key, hi, cap, nums))
        return out

    @classmethod
    def build(cls, rows: list[tuple]) -> "GroupTable":
        # by (centre, capability), see Block.of_rows; = by key within a centre ("centre/capability")
        rows.sort(key=lambda r: (r[3].centre_id, r[3].capability_id, r[0]))
        return cls(tuple(Block.of_rows(rows[i:i + _BLOCK], True) for i in range(0, len(rows), _BLOCK)))

    def insert(self, rows: list[tuple]) -> "GroupTable":
        blocks = list(self.blocks)
        new = Block.of_rows(rows)
        if blocks and len(blocks[-1]) + len(new) <= _TAIL:
            blocks[-1] = Block.concat([blocks[-1], new])
        else:
            blocks.append(new)
        return GroupTable(tuple(blocks))

    def remove(self, key: str) -> "GroupTable":
        """Without every entry of ``key``."""
        h = hash(key)
        blocks = list(self.blocks)
        changed = False
        for i, b in enumerate(self.blocks):
            hits = np.flatnonzero((b.hkey == h) & b.alive)
            hits = [j for j in hits if b.keys[j] == key]
            if not hits:
                continue
            changed = True
            alive = b.alive.copy()
            alive[hits] = False
            nlive = b.nlive - len(hits)
            if nlive == 0:
                blocks[i] = None
            elif nlive * 2 < len(b):
                blocks[i] = b.take(np.flatnonzero(alive))
            else:
                blocks[i] = b._with_alive(alive, nlive)
        if not changed:
            return self
        return GroupTable(tuple(b for b in blocks if b is not None))

    # -- reading -------------------------------------------------------------------------------------
    def covering(self, a: float, b: float, out: list, probe: tuple[float, float] | None = None,
                 seams: tuple[float, float, float] | None = None) -> None:
        """Append the capabilities of entries with lo <= a and hi >= b (and, with ``probe`` = (x, u_max),
        whose uncertainty floor at x does not exceed u_max). With ``seams`` = (seam max, lo max, hi min),
        also the entries of capabilities with a seam between intervals up to seam max that overlap
        (lo <= lo max, hi >= hi min): a tolerance that joins them may make them cover."""
        for bl in self.blocks:
            m = bl.alive & (bl.lo <= a) & (bl.hi >= b)
            if seams is not None and bl.seam_floor <= seams[0]:
                m |= bl.alive & (bl.seam <= seams[0]) & (bl.lo <= seams[1]) & (bl.hi >= seams[2])
            if probe is not None:
                m &= bl.ur * np.abs(probe[0] - bl.uz) + bl.ua <= probe[1]
            caps = bl.caps
            out.extend(caps[j] for j in np.flatnonzero(m).tolist())

    def all(self, out: list) -> None:
        for bl in self.blocks:
            if bl.nlive == len(bl):
                out.extend(bl.caps)
            else:
                caps = bl.caps
                out.extend(caps[j] for j in np.flatnonzero(bl.alive).tolist())


EMPTY_TABLE = GroupTable(())
