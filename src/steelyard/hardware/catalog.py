"""The device catalog: the bundled ``catalog.yaml``, a user catalog merged over it, and name lookup.

Every number in the YAML carries its source; loading checks that, so a figure without
provenance cannot slip into an estimate. A user catalog (``--catalog PATH`` or
``$STEELYARD_CATALOG``) has the same schema: new devices are added, entries for built-in
devices change the fields they give, and user entries win. ``--grid-intensity``, ``--pue`` and
``--price`` override single figures (:func:`configure`); each override is named as the source
of the number it replaces. Lookup is forgiving about case and suggests the closest names when a
user mistypes one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steelyard.errors import HardwareError
from steelyard.hardware.spec import DTYPES, KINDS, HardwareSpec
from steelyard.units import Bytes, BytesPerSecond, FlopsPerSecond, Usd, Watts

#: Names that ``get_hardware`` resolves besides the catalog entries.
LOCAL_NAME = "local"

#: The environment variable naming a user catalog file (``--catalog`` wins over it).
CATALOG_ENV = "STEELYARD_CATALOG"

# Fields of a catalog entry that are numbers and therefore need a source.
_NUMERIC_FIELDS: tuple[str, ...] = ("memory_gb", "memory_bandwidth_gbps", "power_w", "price_per_hour_usd")
#: Every field a device entry may have (a user catalog is checked against this list).
_ENTRY_FIELDS: tuple[str, ...] = ("display_name", "kind", "memory_gb", "memory_bandwidth_gbps", "peak_tflops",
                                  "power_w", "price_per_hour_usd", "sources", "notes")
#: The catalog-wide assumptions, each with a source under ``defaults.sources``.
_DEFAULT_FIELDS: tuple[str, ...] = ("grid_kg_co2_per_kwh", "pue", "usable_memory_fraction")

_GIB = 1024**3  # memory is sold in binary units
_GB = 1e9  # bandwidth is quoted in decimal units
_TERA = 1e12


@dataclass(frozen=True)
class CatalogDefaults:
    """Catalog-wide assumptions that turn device power and time into energy, CO2 and capacity."""

    grid_kg_co2_per_kwh: float
    pue: float
    usable_memory_fraction: float
    sources: dict[str, str] = field(default_factory=dict)


def _read_yaml() -> dict[str, Any]:
    from importlib import resources  # lazy, like yaml: keeps `import steelyard.hardware` fast

    import yaml

    text = resources.files("steelyard.hardware").joinpath("catalog.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or "devices" not in data or "defaults" not in data:
        raise HardwareError("catalog.yaml must have top-level 'defaults' and 'devices' mappings")
    return data


@functools.lru_cache(maxsize=1)
def _raw_catalog() -> dict[str, Any]:
    return _read_yaml()


@dataclass(frozen=True)
class _Overrides:
    """What the user set for this process: a catalog file and the ``--grid-intensity`` / ``--pue`` /
    ``--price`` figures (see :func:`configure`). The defaults mean "the catalogs as they are"."""

    catalog: str | None = None
    grid_kg_co2_per_kwh: float | None = None
    pue: float | None = None
    prices: tuple[tuple[str, float], ...] = ()


_ACTIVE = _Overrides()


def configure(
    *,
    catalog: str | Path | None = None,
    grid_g_co2_per_kwh: float | None = None,
    pue: float | None = None,
    prices: dict[str, float] | None = None,
) -> None:
    """Use a user catalog file and override the grid intensity, PUE or hourly prices for this process.

    Every estimate downstream (profile verdicts, training cost, compare) reads the catalog through
    :func:`get_hardware` / :func:`catalog_defaults`, so one call here changes all of them alike.
    ``catalog`` wins over ``$STEELYARD_CATALOG``; ``configure()`` with no arguments undoes everything.
    Bad values raise :class:`HardwareError` with one line naming the option.
    """
    global _ACTIVE
    if grid_g_co2_per_kwh is not None and not (math.isfinite(grid_g_co2_per_kwh) and grid_g_co2_per_kwh >= 0):
        raise HardwareError(f"--grid-intensity must be a non-negative number of gCO2e/kWh, got {grid_g_co2_per_kwh}")
    if pue is not None and not (math.isfinite(pue) and pue >= 1):
        raise HardwareError(f"--pue must be at least 1 (facility energy / IT energy), got {pue}")
    priced: list[tuple[str, float]] = []
    for name, usd in (prices or {}).items():
        if not (math.isfinite(float(usd)) and float(usd) >= 0):
            raise HardwareError(f"--price for {name} must be a non-negative number of $ per hour, got {usd}")
        priced.append((_key(name), float(usd)))
    _ACTIVE = _Overrides(
        catalog=None if catalog is None else str(catalog),
        grid_kg_co2_per_kwh=None if grid_g_co2_per_kwh is None else grid_g_co2_per_kwh / 1000,
        pue=pue,
        prices=tuple(priced),
    )
    unknown = [n for n, _ in priced if n != LOCAL_NAME and n not in _catalog()]
    if unknown:
        _ACTIVE = dataclasses.replace(_ACTIVE, prices=())
        raise HardwareError(f"--price: unknown hardware {', '.join(map(repr, unknown))}; "
                            f"valid names: {', '.join(known_names())}")


def user_catalog_path() -> Path | None:
    """The user catalog in use: the one :func:`configure` was given, else ``$STEELYARD_CATALOG``, else None."""
    text = _ACTIVE.catalog or os.environ.get(CATALOG_ENV, "").strip()
    return Path(text).expanduser() if text else None


def _key(name: object) -> str:
    return str(name).strip().lower().replace("_", "-")


def _user_file(path: Path) -> dict[str, Any]:
    """Read and shape-check a user catalog; every problem is one line naming the file (and the field)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HardwareError(f"{path}: cannot read the hardware catalog ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HardwareError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise HardwareError(f"{path}: a hardware catalog is a mapping with 'devices' and/or 'defaults'")
    extra = sorted(set(data) - {"devices", "defaults"})
    if extra:
        raise HardwareError(f"{path}: unknown top-level key(s) {', '.join(map(str, extra))} "
                            "(a catalog has 'devices' and 'defaults')")
    for section in ("devices", "defaults"):
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise HardwareError(f"{path}: {section} must be a mapping")
    return data


def _merged(path: Path | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The built-in catalog with the user file's entries over it, and where each entry comes from.

    A new device is a full entry. An entry for a built-in device changes only the fields it gives
    (``peak_tflops`` and ``sources`` merge per key), and each number it gives needs its own source.
    """
    raw = _raw_catalog()
    devices = {_key(n): dict(e) for n, e in raw["devices"].items()}
    origin = {name: f"catalog.yaml: devices.{name}" for name in devices}
    defaults = dict(raw["defaults"])
    if path is None:
        return {"devices": devices, "defaults": defaults}, origin
    user = _user_file(path)
    for name, entry in (user.get("devices") or {}).items():
        key, where = _key(name), f"{path}: devices.{name}"
        if not isinstance(entry, dict):
            raise HardwareError(f"{where}: must be a mapping of fields")
        unknown = sorted(set(entry) - set(_ENTRY_FIELDS))
        if unknown:
            raise HardwareError(f"{where}.{unknown[0]}: unknown field; valid fields: {', '.join(_ENTRY_FIELDS)}")
        for section in ("peak_tflops", "sources"):
            if entry.get(section) is not None and not isinstance(entry[section], dict):
                raise HardwareError(f"{where}.{section}: must be a mapping")
        missing = missing_sources(entry)
        if missing:
            raise HardwareError(f"{where}.sources.{missing[0]}: every number needs a source (where it comes from)")
        base = devices.get(key, {})
        merged = {**base, **entry}
        for section in ("peak_tflops", "sources"):
            merged[section] = {**(base.get(section) or {}), **(entry.get(section) or {})}
        devices[key], origin[key] = merged, where
    user_defaults = user.get("defaults") or {}
    for name, value in user_defaults.items():
        if name == "sources":
            continue
        if name not in _DEFAULT_FIELDS:
            raise HardwareError(f"{path}: defaults.{name}: unknown field; valid fields: {', '.join(_DEFAULT_FIELDS)}")
        if not (user_defaults.get("sources") or {}).get(name):
            raise HardwareError(f"{path}: defaults.sources.{name}: every number needs a source")
        defaults[name] = value
    defaults["sources"] = {**(raw["defaults"].get("sources") or {}), **(user_defaults.get("sources") or {})}
    defaults["_where"] = f"{path}: defaults"
    return {"devices": devices, "defaults": defaults}, origin


def missing_sources(entry: dict[str, Any]) -> list[str]:
    """Numeric fields of a raw catalog entry that have no source (an empty list when complete)."""
    sources = entry.get("sources") or {}
    missing = [f for f in _NUMERIC_FIELDS if entry.get(f) is not None and not sources.get(f)]
    for dtype in entry.get("peak_tflops") or {}:
        if not (sources.get(f"peak_tflops.{dtype}") or sources.get("peak_tflops")):
            missing.append(f"peak_tflops.{dtype}")
    return missing


def _number(entry: dict[str, Any], key: str, where: str, *, optional: bool = False) -> float | None:
    """One numeric field, checked: present (unless optional), a number, finite and not negative."""
    if entry.get(key) is None:
        if optional:
            return None
        raise HardwareError(f"{where}.{key}: missing")
    value = entry[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HardwareError(f"{where}.{key}: not a number ({value!r})") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise HardwareError(f"{where}.{key}: must be a finite non-negative number, got {value!r}")
    return number


def _spec_from_entry(name: str, entry: dict[str, Any], where: str | None = None) -> HardwareSpec:
    where = where or f"catalog entry {name!r}"
    missing = missing_sources(entry)
    if missing:
        raise HardwareError(f"{where}: no source for {', '.join(missing)}")
    peaks = entry.get("peak_tflops") or {}
    unknown = sorted(set(peaks) - set(DTYPES))
    if unknown:
        raise HardwareError(f"{where}.peak_tflops: unknown dtype(s) {', '.join(unknown)}; valid: {', '.join(DTYPES)}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise HardwareError(f"{where}.kind: {'missing' if kind is None else repr(kind)}; one of {', '.join(KINDS)}")
    if not peaks:
        raise HardwareError(f"{where}.peak_tflops: needs at least one peak_tflops figure")
    price = _number(entry, "price_per_hour_usd", where, optional=True)
    spec = HardwareSpec(
        name=name,
        display_name=str(entry.get("display_name", name)),
        kind=str(kind),
        memory=Bytes(float(_number(entry, "memory_gb", where) or 0) * _GIB),
        memory_bandwidth=BytesPerSecond(float(_number(entry, "memory_bandwidth_gbps", where) or 0) * _GB),
        peak_flops={d: FlopsPerSecond(float(_number(peaks, d, f"{where}.peak_tflops") or 0) * _TERA) for d in peaks},
        power=Watts(float(_number(entry, "power_w", where) or 0)),
        price_per_hour=None if price is None else Usd(price),
        sources={str(k): " ".join(str(v).split()) for k, v in (entry.get("sources") or {}).items()},
        measured=False,
        notes=str(entry.get("notes", "")),
    )
    spec.validate()
    return spec


def _state() -> tuple[Any, ...]:
    """What the catalog depends on: the user file (path and modification time) and the overrides."""
    path = user_catalog_path()
    stamp = None
    if path is not None:
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = -1  # reading it will say why
    return (None if path is None else str(path), stamp, _ACTIVE)


@functools.lru_cache(maxsize=8)
def _built(state: tuple[Any, ...]) -> tuple[dict[str, HardwareSpec], CatalogDefaults]:
    path_text, _, active = state
    merged, origin = _merged(None if path_text is None else Path(path_text))
    prices = dict(active.prices)
    specs = {}
    for name, entry in merged["devices"].items():
        spec = _spec_from_entry(name, entry, origin[name])
        if name in prices:
            spec = _priced(spec, prices[name])
        specs[name] = spec
    return specs, _defaults_from(merged["defaults"], active)


def _priced(spec: HardwareSpec, usd: float) -> HardwareSpec:
    sources = {**spec.sources, "price_per_hour_usd": f"user override (--price): ${usd:g} per hour"}
    return dataclasses.replace(spec, price_per_hour=Usd(usd), sources=sources)


def _catalog() -> dict[str, HardwareSpec]:
    return _built(_state())[0]


def load_catalog() -> dict[str, HardwareSpec]:
    """All catalog devices by lowercase name: the built-in ones with the user catalog merged over them."""
    return dict(_catalog())


def _defaults_from(raw: dict[str, Any], active: _Overrides) -> CatalogDefaults:
    where = str(raw.get("_where", "catalog defaults"))
    values = {key: _number(raw, key, where) for key in _DEFAULT_FIELDS}
    sources = {str(k): " ".join(str(v).split()) for k, v in (raw.get("sources") or {}).items()}
    if active.grid_kg_co2_per_kwh is not None:
        values["grid_kg_co2_per_kwh"] = active.grid_kg_co2_per_kwh
        sources["grid_kg_co2_per_kwh"] = (f"user override (--grid-intensity): "
                                          f"{active.grid_kg_co2_per_kwh * 1000:g} gCO2e/kWh")
    if active.pue is not None:
        values["pue"] = active.pue
        sources["pue"] = f"user override (--pue): {active.pue:g}"
    defaults = CatalogDefaults(
        grid_kg_co2_per_kwh=float(values["grid_kg_co2_per_kwh"] or 0),
        pue=float(values["pue"] or 0),
        usable_memory_fraction=float(values["usable_memory_fraction"] or 0),
        sources=sources,
    )
    for key in _DEFAULT_FIELDS:
        if not defaults.sources.get(key):
            raise HardwareError(f"{where}: no source for {key}")
    if defaults.pue < 1:
        raise HardwareError(f"{where}.pue: must be at least 1, got {defaults.pue}")
    if not 0 < defaults.usable_memory_fraction <= 1:
        raise HardwareError(f"{where}.usable_memory_fraction: must be in (0, 1], got {defaults.usable_memory_fraction}")
    return defaults


def catalog_defaults() -> CatalogDefaults:
    """Grid carbon intensity, PUE and usable-memory fraction, with their sources (and the user's overrides)."""
    return _built(_state())[1]


def known_names() -> list[str]:
    """Every name ``get_hardware`` accepts: the catalog entries plus ``"local"``."""
    return [*_catalog(), LOCAL_NAME]


def suggest_names(name: str, limit: int = 3) -> list[str]:
    """Closest valid names to a mistyped one.

    Names that start with the query come first ("a100" → a100-40gb, a100-80gb), then names
    containing it as a dash-separated part ("pi" → raspberry-pi-5), then difflib's closest
    spellings ("t5" → t4). Every prefix match is kept even past ``limit``, since an ambiguous
    prefix is exactly what the user needs to see resolved.
    """
    import difflib

    query = name.strip().lower().replace("_", "-")
    if not query:
        return []
    names = known_names()
    prefixed = [n for n in names if n.startswith(query)]
    parts = [n for n in names if query in n.split("-") or (len(query) >= 3 and query in n)]
    close = difflib.get_close_matches(query, names, n=limit, cutoff=0.5)
    ordered = list(dict.fromkeys([*prefixed, *parts, *close]))
    return ordered[: max(limit, len(prefixed))]


def get_hardware(name: str) -> HardwareSpec:
    """Look up a device by name, case-insensitively; ``"local"`` measures this machine.

    An unknown name raises :class:`HardwareError` with the closest names and the full list,
    on one line, so the CLI can print it as is.
    """
    key = _key(name)
    if key == LOCAL_NAME:
        from steelyard.hardware.local import detect_local

        local = detect_local()
        price = dict(_ACTIVE.prices).get(LOCAL_NAME)
        return local if price is None else _priced(local, price)
    catalog = _catalog()
    if key in catalog:
        return catalog[key]
    suggestions = suggest_names(key)
    hint = f"did you mean {' or '.join(suggestions)}? " if suggestions else ""
    raise HardwareError(f"unknown hardware {name!r}; {hint}valid names: {', '.join(known_names())}")


def parse_hardware_list(text: str) -> list[HardwareSpec]:
    """Parse a comma-separated list such as ``"local,t4,a100-80gb"``, keeping order, dropping repeats."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise HardwareError(f"no hardware names in {text!r}; valid names: {', '.join(known_names())}")
    unique = list(dict.fromkeys(n.lower().replace("_", "-") for n in names))
    return [get_hardware(n) for n in unique]
