"""Hardware catalogue: YAML data (GPUs, hosts, electricity, models) and its schema.

``load_catalog()`` reads the shipped files and an optional overlay folder; ``find_gpu`` and
friends look entries up by id or name. Nothing is read at import time.
"""

from hardware_catalog.loader import (
    CATALOG_FILES,
    Catalog,
    CatalogError,
    find_gpu,
    find_host,
    find_model,
    find_pue,
    find_region,
    load_catalog,
    parse_yaml,
)
from hardware_catalog.schema import (
    FxRate,
    Gpu,
    Host,
    HostShare,
    ModelEntry,
    Price,
    PuePreset,
    Region,
    Source,
)

__all__ = [
    "CATALOG_FILES",
    "Catalog",
    "CatalogError",
    "FxRate",
    "Gpu",
    "Host",
    "HostShare",
    "ModelEntry",
    "Price",
    "PuePreset",
    "Region",
    "Source",
    "find_gpu",
    "find_host",
    "find_model",
    "find_pue",
    "find_region",
    "load_catalog",
    "parse_yaml",
]
