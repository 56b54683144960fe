"""Hardware: what devices can do (catalog and this machine, measured) and roofline bounds.

Importing this package is cheap: YAML, psutil and torch load only when a function needs them.
"""

from __future__ import annotations

from steelyard.hardware.catalog import (
    CATALOG_ENV,
    LOCAL_NAME,
    CatalogDefaults,
    catalog_defaults,
    configure,
    get_hardware,
    known_names,
    load_catalog,
    parse_hardware_list,
    suggest_names,
    user_catalog_path,
)
from steelyard.hardware.local import cpu_model_name, detect_local
from steelyard.hardware.roofline import RooflineBound, roofline
from steelyard.hardware.settings import HardwareSettings
from steelyard.hardware.spec import DTYPES, KINDS, HardwareSpec, PeakLookup, normalize_dtype

__all__ = [
    "CATALOG_ENV",
    "DTYPES",
    "KINDS",
    "LOCAL_NAME",
    "CatalogDefaults",
    "HardwareSettings",
    "HardwareSpec",
    "PeakLookup",
    "RooflineBound",
    "catalog_defaults",
    "configure",
    "cpu_model_name",
    "detect_local",
    "get_hardware",
    "known_names",
    "load_catalog",
    "normalize_dtype",
    "parse_hardware_list",
    "roofline",
    "suggest_names",
    "user_catalog_path",
]
