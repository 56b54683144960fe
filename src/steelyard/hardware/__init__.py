"""Hardware: what devices can do (catalog and this machine, measured) and roofline bounds.

Importing this package is cheap: YAML, psutil and torch load only when a function needs them.
"""

from __future__ import annotations

from steelyard.hardware.catalog import (
    CatalogDefaults,
    catalog_defaults,
    get_hardware,
    known_names,
    load_catalog,
    parse_hardware_list,
    suggest_names,
)
from steelyard.hardware.local import cpu_model_name, detect_local
from steelyard.hardware.roofline import RooflineBound, roofline
from steelyard.hardware.spec import DTYPES, KINDS, HardwareSpec, PeakLookup, normalize_dtype

__all__ = [
    "DTYPES",
    "KINDS",
    "CatalogDefaults",
    "HardwareSpec",
    "PeakLookup",
    "RooflineBound",
    "catalog_defaults",
    "cpu_model_name",
    "detect_local",
    "get_hardware",
    "known_names",
    "load_catalog",
    "normalize_dtype",
    "parse_hardware_list",
    "roofline",
    "suggest_names",
]
