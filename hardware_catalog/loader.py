"""Load the shipped catalogue, then the user's overlay folder, and look entries up by name.

The shipped YAML files live in ``hardware_catalog/data`` and are read through
:mod:`importlib.resources`, so an installed package reads them too. An overlay folder
(``--catalog DIR``) holds files of the same names; an overlay entry whose id is already in the
catalogue replaces that entry whole, a new id is added. Nothing is dropped silently: an
unknown file name, an unknown top-level key, a duplicate id within one file, a duplicate key
within one mapping and an invalid entry all raise :class:`CatalogError`, whose message names
the file, the entry and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from hardware_catalog.schema import (
    CATALOG_SCHEMA_VERSION,
    FxRate,
    Gpu,
    Host,
    HostShare,
    ModelEntry,
    PuePreset,
    Region,
    _Sourced,
    normalise_name,
)
from runtime.errors import BackplanError, UsageError
from runtime.files import read_text, yaml_problem

#: file name -> section key -> entry model
CATALOG_FILES: dict[str, dict[str, type[_Sourced]]] = {
    "gpus.yaml": {"gpus": Gpu},
    "hosts.yaml": {"hosts": Host, "host_shares": HostShare},
    "energy.yaml": {"regions": Region, "pue_presets": PuePreset, "fx_rates": FxRate},
    "models.yaml": {"models": ModelEntry},
}
_SECTION_FILE = {section: name for name, sections in CATALOG_FILES.items() for section in sections}

E = TypeVar("E", bound=_Sourced)


class CatalogError(BackplanError):
    """A catalogue file or entry is unreadable or invalid, or a lookup found nothing."""

    exit_code = 2
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.entry = entry
        self.field = field


@dataclass
class Catalog:
    """The merged catalogue: every section as a dict keyed by entry id."""

    gpus: dict[str, Gpu] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    host_shares: dict[str, HostShare] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    pue_presets: dict[str, PuePreset] = field(default_factory=dict)
    fx_rates: dict[str, FxRate] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    #: (section, id) -> the file that defined the entry in force
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (section, id, overlay file) for every shipped entry an overlay replaced
    overridden: list[tuple[str, str, str]] = field(default_factory=list)

    def section(self, name: str) -> dict[str, Any]:
        if name not in _SECTION_FILE:
            raise KeyError(name)
        table: dict[str, Any] = getattr(self, name)
        return table

    def usd_per_unit(self, currency: str) -> float:
        """US dollars one unit of ``currency`` buys, from ``fx_rates``."""
        code = currency.upper()
        if code == "USD":
            return 1.0
        rate = self.fx_rates.get(code.lower())
        if rate is None:
            known = ", ".join(sorted(r.currency for r in self.fx_rates.values())) or "none"
            raise CatalogError(
                f"no exchange rate for {code} in energy.yaml fx_rates (known: USD, {known}); "
                "add one to your catalogue overlay",
                file="energy.yaml",
                entry=code.lower(),
            )
        return rate.usd_per_unit

    def convert(self, amount: float, currency: str, to: str = "USD") -> float:
        """``amount`` of ``currency`` expressed in ``to``, through US dollars."""
        return amount * self.usd_per_unit(currency) / self.usd_per_unit(to)


# -- reading -------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key repeated within one mapping (YAML keeps the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor" keys may be overridden by explicit ones
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice",
                key_node.start_mark,
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def parse_yaml(text: str, label: str) -> Any:
    """A catalogue file's YAML (duplicate keys refused); a one-line CatalogError if invalid."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date that does not exist
        raise CatalogError(
            f"{label}: not valid YAML ({yaml_problem(exc)}); fix the file or remove it",
            file=label,
        ) from exc


def _entry_label(raw: Any, index: int) -> str:
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
        return f"'{raw['id']}'"
    return f"#{index + 1} (no id)"


def _format_validation(exc: ValidationError) -> tuple[str, str | None]:
    parts: list[str] = []
    first_field: str | None = None
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if loc:
            first_field = first_field or loc
            parts.append(f"field {loc}: {msg}")
        else:
            parts.append(msg)
    return "; ".join(parts), first_field


def _read_file(
    text: str, label: str, file_name: str, *, require_all_sections: bool
) -> dict[str, dict[str, _Sourced]]:
    """Parse and validate one catalogue file; returns section -> id -> entry."""
    sections = CATALOG_FILES[file_name]
    data = parse_yaml(text, label)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise CatalogError(
            f"{label}: the top level must be a mapping with keys "
            f"{', '.join(sections)}; fix the file or remove it",
            file=label,
        )
    allowed = set(sections) | {"schema_version"}
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise CatalogError(
            f"{label}: unknown top-level key(s) {', '.join(unknown)}; this file takes "
            f"{', '.join(sorted(allowed))}",
            file=label,
            field=unknown[0],
        )
    version = data.get("schema_version", CATALOG_SCHEMA_VERSION)
    if version != CATALOG_SCHEMA_VERSION:
        raise CatalogError(
            f"{label}: schema_version {version!r} is not supported (this backplan reads "
            f"{CATALOG_SCHEMA_VERSION})",
            file=label,
            field="schema_version",
        )
    out: dict[str, dict[str, _Sourced]] = {}
    for section, model in sections.items():
        if section not in data:
            if require_all_sections:
                raise CatalogError(f"{label}: section '{section}' is missing", file=label)
            continue
        raw_entries = data[section]
        if raw_entries is None:
            raw_entries = []
        if not isinstance(raw_entries, list):
            raise CatalogError(
                f"{label}: section '{section}' must be a list of entries", file=label
            )
        entries: dict[str, _Sourced] = {}
        for index, raw in enumerate(raw_entries):
            entry_label = _entry_label(raw, index)
            if not isinstance(raw, Mapping):
                raise CatalogError(
                    f"{label}: {section} entry {entry_label}: must be a mapping of fields; "
                    "fix the entry or remove it",
                    file=label,
                    entry=entry_label,
                )
            try:
                entry = model.model_validate(raw)
            except ValidationError as exc:
                detail, bad_field = _format_validation(exc)
                raise CatalogError(
                    f"{label}: entry {entry_label}: {detail}; fix the entry or remove it",
                    file=label,
                    entry=entry_label.strip("'"),
                    field=bad_field,
                ) from exc
            if entry.id in entries:
                raise CatalogError(
                    f"{label}: entry '{entry.id}' appears twice in '{section}'; keep one",
                    file=label,
                    entry=entry.id,
                    field="id",
                )
            entries[entry.id] = entry
        out[section] = entries
    return out


def _shipped_text(file_name: str) -> str:
    return resources.files("hardware_catalog").joinpath("data", file_name).read_text("utf-8")


def _overlay_files(overlay_dir: Path) -> list[tuple[str, Path]]:
    if not overlay_dir.exists():
        raise CatalogError(f"catalogue folder {overlay_dir} does not exist", file=str(overlay_dir))
    if not overlay_dir.is_dir():
        raise CatalogError(f"catalogue folder {overlay_dir} is not a folder", file=str(overlay_dir))
    try:
        listed = sorted(overlay_dir.iterdir())
    except OSError as exc:
        raise CatalogError(
            f"catalogue folder {overlay_dir} cannot be read ({exc.strerror}); fix its permissions",
            file=str(overlay_dir),
        ) from None
    found: list[tuple[str, Path]] = []
    for path in listed:
        if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml"):
            continue
        canonical = path.stem.lower() + ".yaml"
        if canonical not in CATALOG_FILES:
            raise CatalogError(
                f"{path}: unknown catalogue file; a catalogue folder holds "
                f"{', '.join(CATALOG_FILES)} (rename the file or move it out)",
                file=str(path),
            )
        if any(name == canonical for name, _ in found):
            raise CatalogError(
                f"{path}: a second file for {canonical} in {overlay_dir}; keep one",
                file=str(path),
            )
        found.append((canonical, path))
    return found


def _check_currencies(catalog: Catalog) -> None:
    used: dict[str, str] = {}
    for section in ("gpus", "hosts", "host_shares"):
        for entry in catalog.section(section).values():
            used.setdefault(entry.price.currency, f"{section} '{entry.id}'")
    for region in catalog.regions.values():
        used.setdefault(region.currency, f"regions '{region.id}'")
    for currency, where in sorted(used.items()):
        if currency != "USD" and currency.lower() not in catalog.fx_rates:
            file = catalog.origins.get(("fx_rates", currency.lower()), "energy.yaml")
            raise CatalogError(
                f"{file}: fx_rates has no entry '{currency.lower()}', which {where} uses; "
                "add the rate",
                file=file,
                entry=currency.lower(),
            )


def load_catalog(overlay_dir: Path | None = None) -> Catalog:
    """The shipped catalogue, then ``overlay_dir``'s files on top (same ids replace, new add)."""
    catalog = Catalog()
    for file_name in CATALOG_FILES:
        parsed = _read_file(
            _shipped_text(file_name), file_name, file_name, require_all_sections=True
        )
        for section, entries in parsed.items():
            catalog.section(section).update(entries)
            for entry_id in entries:
                catalog.origins[(section, entry_id)] = file_name
    if overlay_dir is not None:
        for file_name, path in _overlay_files(Path(overlay_dir)):
            try:
                text = read_text(path, what="catalogue file", fix="fix or move it")
            except UsageError as exc:
                raise CatalogError(str(exc), file=str(path)) from None
            parsed = _read_file(text, str(path), file_name, require_all_sections=False)
            for section, entries in parsed.items():
                table = catalog.section(section)
                for entry_id, entry in entries.items():
                    if entry_id in table:
                        catalog.overridden.append((section, entry_id, str(path)))
                    table[entry_id] = entry
                    catalog.origins[(section, entry_id)] = str(path)
    _check_currencies(catalog)
    return catalog


# -- lookups -------------------------------------------------------------------------------


def _find(
    what: str,
    entries: Mapping[str, E],
    query: str,
    keys: Callable[[E], Iterable[str]],
    describe: Callable[[E], str],
) -> E:
    wanted = normalise_name(query)
    if not wanted:
        raise CatalogError(f"empty {what} name")
    by_id = {entry_id.casefold(): entry_id for entry_id in entries}
    if query.strip().casefold() in by_id:  # an id is unique: it wins over names and aliases
        return entries[by_id[query.strip().casefold()]]
    index: dict[str, set[str]] = {}
    words: list[tuple[str, list[str]]] = []  # (id, the words of one of its names)
    for entry_id, entry in entries.items():
        for key in keys(entry):
            norm = normalise_name(key)
            if norm:
                index.setdefault(norm, set()).add(entry_id)
                words.append((entry_id, re.findall(r"[a-z0-9]+", key.lower())))
    exact = index.get(wanted, set())
    if len(exact) == 1:
        return entries[next(iter(exact))]
    if exact:
        listed = ", ".join(f"{describe(entries[i])}" for i in sorted(exact))
        raise CatalogError(f"{what} '{query}' is ambiguous: it matches {listed}; say which")
    # never a guess: a part of a name or a near miss is refused, with the entries it could have
    # meant: those with a word starting with each word asked for ("4090" -> "RTX 4090"; but not
    # "M1" -> "SXM 141GB")
    asked = re.findall(r"[a-z0-9]+", query.lower())
    partial = sorted({i for i, ws in words if all(any(w.startswith(a) for w in ws) for a in asked)})
    close = difflib.get_close_matches(wanted, list(index), n=8, cutoff=0.6)
    suggested: list[str] = list(partial)
    for norm in close:
        for entry_id in sorted(index[norm]):
            if entry_id not in suggested:
                suggested.append(entry_id)
    hint = (
        "did you mean " + ", ".join(describe(entries[i]) for i in suggested[:5]) + "?"
        if suggested
        else f"the catalogue knows {len(entries)} of them (ids: "
        + ", ".join(sorted(entries)[:12])
        + (", ..." if len(entries) > 12 else "")
        + ")"
    )
    raise CatalogError(f"unknown {what} '{query}'; {hint}")


def find_gpu(catalog: Catalog, query: str) -> Gpu:
    """The GPU whose id, name or alias matches ``query`` (case, spaces and dashes ignored)."""
    return _find(
        "GPU",
        catalog.gpus,
        query,
        lambda g: [g.id, g.name, *g.aliases],
        lambda g: f"{g.id} ({g.name})",
    )


def find_model(catalog: Catalog, query: str) -> ModelEntry:
    """The model whose id, name or alias matches ``query``."""
    return _find(
        "model",
        catalog.models,
        query,
        lambda m: [m.id, m.name, *m.aliases],
        lambda m: f"{m.id} ({m.name})",
    )


def find_region(catalog: Catalog, query: str) -> Region:
    """The electricity region whose id, name or alias matches ``query``."""
    return _find(
        "region",
        catalog.regions,
        query,
        lambda r: [r.id, r.name, *r.aliases],
        lambda r: f"{r.id} ({r.name})",
    )


def find_host(catalog: Catalog, query: str) -> Host:
    """The CPU-only host whose id, name or alias matches ``query``."""
    return _find(
        "host",
        catalog.hosts,
        query,
        lambda h: [h.id, h.name, *h.aliases],
        lambda h: f"{h.id} ({h.name})",
    )


def find_pue(catalog: Catalog, query: str) -> PuePreset:
    """The PUE preset whose id or name matches ``query``."""
    return _find(
        "PUE preset",
        catalog.pue_presets,
        query,
        lambda p: [p.id, p.name],
        lambda p: f"{p.id} (PUE {p.pue:g})",
    )
