"""The bundled device catalog (``catalog.yaml``) and name lookup.

Every number in the YAML carries its source; loading checks that, so a figure without
provenance cannot slip into an estimate. Lookup is forgiving about case and suggests the
closest names when a user mistypes one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from steelyard.errors import HardwareError
from steelyard.hardware.spec import DTYPES, HardwareSpec
from steelyard.units import Bytes, BytesPerSecond, FlopsPerSecond, Usd, Watts

#: Names that ``get_hardware`` resolves besides the catalog entries.
LOCAL_NAME = "local"

# Fields of a catalog entry that are numbers and therefore need a source.
_NUMERIC_FIELDS: tuple[str, ...] = ("memory_gb", "memory_bandwidth_gbps", "power_w", "price_per_hour_usd")

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


def missing_sources(entry: dict[str, Any]) -> list[str]:
    """Numeric fields of a raw catalog entry that have no source (an empty list when complete)."""
    sources = entry.get("sources") or {}
    missing = [f for f in _NUMERIC_FIELDS if entry.get(f) is not None and not sources.get(f)]
    for dtype in entry.get("peak_tflops") or {}:
        if not (sources.get(f"peak_tflops.{dtype}") or sources.get("peak_tflops")):
            missing.append(f"peak_tflops.{dtype}")
    return missing


def _spec_from_entry(name: str, entry: dict[str, Any]) -> HardwareSpec:
    where = f"catalog entry {name!r}"
    missing = missing_sources(entry)
    if missing:
        raise HardwareError(f"{where}: no source for {', '.join(missing)}")
    peaks = entry.get("peak_tflops") or {}
    unknown = sorted(set(peaks) - set(DTYPES))
    if unknown:
        raise HardwareError(f"{where}: unknown dtype(s) {', '.join(unknown)} in peak_tflops")
    try:
        price = entry.get("price_per_hour_usd")
        spec = HardwareSpec(
            name=name,
            display_name=str(entry.get("display_name", name)),
            kind=str(entry["kind"]),
            memory=Bytes(float(entry["memory_gb"]) * _GIB),
            memory_bandwidth=BytesPerSecond(float(entry["memory_bandwidth_gbps"]) * _GB),
            peak_flops={d: FlopsPerSecond(float(v) * _TERA) for d, v in peaks.items()},
            power=Watts(float(entry["power_w"])),
            price_per_hour=None if price is None else Usd(float(price)),
            sources={str(k): " ".join(str(v).split()) for k, v in entry["sources"].items()},
            measured=False,
            notes=str(entry.get("notes", "")),
        )
    except KeyError as exc:
        raise HardwareError(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise HardwareError(f"{where}: bad value ({exc})") from None
    if not spec.peak_flops:
        raise HardwareError(f"{where}: needs at least one peak_tflops figure")
    spec.validate()
    return spec


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, HardwareSpec]:
    devices = _raw_catalog()["devices"]
    return {str(name).lower(): _spec_from_entry(str(name).lower(), entry) for name, entry in devices.items()}


def load_catalog() -> dict[str, HardwareSpec]:
    """All catalog devices by lowercase name (parsed once per process; a fresh dict each call)."""
    return dict(_catalog())


@functools.lru_cache(maxsize=1)
def catalog_defaults() -> CatalogDefaults:
    """Grid carbon intensity, PUE and usable-memory fraction, with their sources."""
    raw = _raw_catalog()["defaults"]
    try:
        defaults = CatalogDefaults(
            grid_kg_co2_per_kwh=float(raw["grid_kg_co2_per_kwh"]),
            pue=float(raw["pue"]),
            usable_memory_fraction=float(raw["usable_memory_fraction"]),
            sources={str(k): " ".join(str(v).split()) for k, v in (raw.get("sources") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HardwareError(f"catalog defaults are incomplete or malformed ({exc})") from None
    for key in ("grid_kg_co2_per_kwh", "pue", "usable_memory_fraction"):
        if not defaults.sources.get(key):
            raise HardwareError(f"catalog defaults: no source for {key}")
    if defaults.pue < 1 or not 0 < defaults.usable_memory_fraction <= 1 or defaults.grid_kg_co2_per_kwh < 0:
        raise HardwareError("catalog defaults out of range (pue >= 1, 0 < usable fraction <= 1, CO2 >= 0)")
    return defaults


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
    key = name.strip().lower().replace("_", "-")
    if key == LOCAL_NAME:
        from steelyard.hardware.local import detect_local

        return detect_local()
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
