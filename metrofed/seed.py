"""Seed data: one YAML file per industry metrology test centre (``seed/centres/<centre_id>.yaml``).

The file format is described in ``docs/seed-format.md``; parsing and validation of each record is done by
:mod:`metrofed.domain.records` (the same code that reads capabilities from the bus and the API), so a seed
file is valid exactly when a centre could publish it. This module only reads the files, adds the file name
to any error, and checks what spans files (centre ids unique across the seed, file name = centre id).

Pure domain: no grpc, kafka or sqlalchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from metrofed.domain.capability import Capability, CentreProfile, DomainError
from metrofed.domain.records import capability_from_dict, centre_from_dict

__all__ = ["DEFAULT_SEED_DIR", "SeedCentre", "SeedError", "load_seed", "load_seed_file"]

# seed/centres at the project root (metrofed/seed.py -> metrofed -> project root).
DEFAULT_SEED_DIR = Path(__file__).resolve().parent.parent / "seed" / "centres"


class SeedError(DomainError):
    """A seed file that cannot be read or is invalid: names the file and the field path inside it,
    e.g. ``seed/centres/hz-oil-gas.yaml: capabilities[3].bands[0].unit: unknown unit 'MPaa'``."""

    def __init__(self, source: Path | str, field_name: str, reason: str):
        self.source = Path(source)
        super().__init__(field_name, reason)
        # DomainError formats "field: reason"; prefix the file so the message is self-contained.
        self.args = (f"{self.source}: {field_name}: {reason}" if field_name else f"{self.source}: {reason}",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True, slots=True)
class SeedCentre:
    """One centre as seeded: its profile, its capabilities (version 1) and the file they came from."""

    profile: CentreProfile
    capabilities: list[Capability]
    source: Path

    @property
    def centre_id(self) -> str:
        return self.profile.centre_id


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(path, "", f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SeedError(path, "", f"not UTF-8 text: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SeedError(path, "", f"invalid YAML: {where}{problem}") from exc


def load_seed_file(path: Path | str) -> SeedCentre:
    """Read and validate one centre file. Raises :class:`SeedError` naming the file and the field path
    (``capabilities[3].bands[0].uncertainty.absolute``) on any bad data."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise SeedError(path, "", f"expected a mapping with 'centre' and 'capabilities', got {type(data).__name__}")
    if "centre" not in data or data["centre"] is None:
        raise SeedError(path, "centre", "is required")
    caps_raw = data.get("capabilities")
    if caps_raw is None:
        caps_raw = []
    if not isinstance(caps_raw, list):
        raise SeedError(path, "capabilities", f"expected a list, got {type(caps_raw).__name__}")
    unknown = sorted(set(data) - {"centre", "capabilities"})
    if unknown:
        raise SeedError(path, unknown[0], "unknown top-level key (expected 'centre' and 'capabilities')")
    try:
        profile = centre_from_dict(data["centre"], path="centre")
        caps: list[Capability] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(caps_raw):
            cap = capability_from_dict(profile.centre_id, raw, 1, path=f"capabilities[{i}]")
            if cap.capability_id in seen:
                raise DomainError(
                    f"capabilities[{i}].id",
                    f"{cap.capability_id!r} is already used by capabilities[{seen[cap.capability_id]}]",
                )
            seen[cap.capability_id] = i
            caps.append(cap)
    except SeedError:
        raise
    except DomainError as exc:
        raise SeedError(path, exc.field, exc.reason) from exc
    if path.suffix in (".yaml", ".yml") and path.stem != profile.centre_id:
        raise SeedError(path, "centre.id", f"{profile.centre_id!r} does not match the file name {path.name!r}")
    return SeedCentre(profile=profile, capabilities=caps, source=path)


def load_seed(dir: Path | str = DEFAULT_SEED_DIR) -> list[SeedCentre]:  # noqa: A002 - the brief's name
    """Every ``*.yaml`` / ``*.yml`` file of ``dir``, sorted by file name. Centre ids must be unique."""
    d = Path(dir)
    if not d.is_dir():
        raise SeedError(d, "", "seed directory does not exist")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    if not files:
        raise SeedError(d, "", "no *.yaml centre files in the seed directory")
    out: list[SeedCentre] = []
    by_id: dict[str, Path] = {}
    for f in files:
        sc = load_seed_file(f)
        if sc.centre_id in by_id:
            raise SeedError(f, "centre.id", f"{sc.centre_id!r} is already defined in {by_id[sc.centre_id].name}")
        by_id[sc.centre_id] = f
        out.append(sc)
    return out


def seed_catalog(centres: list[SeedCentre] | None = None) -> "Catalog":
    """A ready catalog holding the seed centres and capabilities, as a gateway would build it from the bus."""
    from metrofed.domain.catalog import Catalog

    catalog = Catalog()
    builder = catalog.rebuild()
    for centre in centres if centres is not None else load_seed():
        builder.upsert_centre(centre.profile)
        for cap in centre.capabilities:
            builder.upsert_capability(cap)
    catalog.install(builder)
    return catalog
