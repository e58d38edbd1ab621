"""The user's catalogue overlay: form fields from the schema, validation, atomic saves.

An entry is validated with its pydantic model, then the whole overlay, with the new file in
place, is loaded in a scratch copy exactly as ``load_catalog`` will load it (ids, currencies,
file names); only then is the file replaced, atomically. The shipped files in
``hardware_catalog/data`` are never written.
"""

from __future__ import annotations

import shutil
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ValidationError

import hardware_catalog
from hardware_catalog import (
    CATALOG_FILES,
    CatalogError,
    Gpu,
    ModelEntry,
    Region,
    load_catalog,
    parse_yaml,
)
from runtime.atomic import write_text_atomic
from runtime.files import yaml_problem

EDITABLE: dict[str, type[BaseModel]] = {"gpus": Gpu, "models": ModelEntry, "regions": Region}
SECTION_FILE = {section: name for name, sections in CATALOG_FILES.items() for section in sections}
HEADER = "# backplan catalogue overlay (written by the dashboard; entries replace or add)\n"

Kind = Literal["choice", "int", "float", "str", "bool", "yaml"]


@dataclass(frozen=True)
class FieldSpec:
    """How one schema field is edited: a widget kind, choices, whether it may be empty."""

    name: str
    kind: Kind
    optional: bool
    required: bool
    description: str
    options: tuple[str, ...] = field(default_factory=tuple)


def _strip(tp: Any) -> Any:
    """Drop ``Annotated[...]`` wrappers."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _spec_for(name: str, annotation: Any, required: bool, description: str) -> FieldSpec:
    tp = _strip(annotation)
    optional = False
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [_strip(a) for a in typing.get_args(tp)]
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else tp
        origin = typing.get_origin(tp)
    if origin is Literal:
        options = tuple(str(v) for v in typing.get_args(tp))
        return FieldSpec(name, "choice", optional, required, description, options)
    simple: dict[Any, Kind] = {bool: "bool", int: "int", float: "float", str: "str"}
    kind = simple.get(tp, "yaml")
    return FieldSpec(name, kind, optional, required, description)


def field_specs(model: type[BaseModel]) -> list[FieldSpec]:
    """One spec per field of ``model``, in declaration order."""
    return [
        _spec_for(name, info.annotation, info.is_required(), info.description or "")
        for name, info in model.model_fields.items()
    ]


def form_values(entry: BaseModel | None, specs: list[FieldSpec]) -> dict[str, Any]:
    """Widget values for ``entry`` (or empty ones): nested fields as YAML text."""
    data = entry.model_dump(mode="json") if entry is not None else {}
    out: dict[str, Any] = {}
    for spec in specs:
        value = data.get(spec.name)
        if spec.kind == "yaml":
            out[spec.name] = (
                "" if value is None else yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
            )
        elif spec.kind == "str":
            out[spec.name] = "" if value is None else str(value)
        elif spec.kind == "bool":
            out[spec.name] = bool(value)
        else:
            out[spec.name] = value
    return out


def placeholder(section: str, name: str) -> str:
    """An example for a nested field of a new entry (what the schema asks for)."""
    if name == "sources":
        topics = getattr(EDITABLE[section], "required_topics", ())
        return "".join(
            f"- what: {t}\n  url: https://example.com/datasheet\n  as_of: 2025-06-01\n"
            for t in topics
        )
    return {
        "price": "amount: 1599\ncurrency: USD\nkind: street\nas_of: 2025-06-01\n",
        "aliases": "[RTX 4090, '4090']\n",
        "gguf_bytes": "Q4_K_M: 4683073536\nQ8_0: 8098525184\nF16: 15237853184\n",
    }.get(name, "")


def raw_entry(specs: list[FieldSpec], values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Turn widget values back into the entry's mapping; YAML that does not parse is an error."""
    raw: dict[str, Any] = {}
    errors: list[str] = []
    for spec in specs:
        value = values.get(spec.name)
        if spec.kind == "yaml":
            text = str(value or "").strip()
            if not text:
                continue
            try:
                raw[spec.name] = yaml.safe_load(text)
            except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date that cannot be
                errors.append(f"{spec.name}: not valid YAML ({yaml_problem(exc)})")
            continue
        if spec.kind == "str" and isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
        if value is None or value == "(none)":
            continue
        raw[spec.name] = value
    return raw, errors


def validation_messages(exc: ValidationError) -> list[str]:
    """One readable line per error: 'field price.amount: Input should be greater than 0'."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(f"field {loc}: {msg}" if loc else msg)
    return out


def validate_entry(section: str, raw: dict[str, Any]) -> tuple[BaseModel | None, list[str]]:
    """The validated entry, or the reasons it is invalid."""
    model = EDITABLE[section]
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, validation_messages(exc)


def _shipped_dir() -> Path:
    return (Path(hardware_catalog.__file__).parent / "data").resolve()


def _check_target(overlay_dir: Path) -> None:
    target = overlay_dir.expanduser().resolve()
    shipped = _shipped_dir()
    if target == shipped or shipped in target.parents:
        raise CatalogError(
            f"{overlay_dir} is the shipped catalogue; save your entries in an overlay folder "
            "of your own (backplan dashboard --catalog DIR)",
            file=str(overlay_dir),
        )


def overlay_file(overlay_dir: Path, section: str) -> Path:
    """The overlay file holding ``section`` (an existing ``.yml`` spelling is kept)."""
    name = SECTION_FILE[section]
    if overlay_dir.is_dir():
        for path in overlay_dir.iterdir():
            yaml_file = path.is_file() and path.suffix.lower() in (".yaml", ".yml")
            if yaml_file and path.stem.lower() + ".yaml" == name:
                return path
    return overlay_dir / name


def check_overlay_text(overlay_dir: Path, target: Path, text: str) -> None:
    """Load the overlay as it would be with ``text`` in ``target``; raise CatalogError if not."""
    with tempfile.TemporaryDirectory(prefix="backplan-overlay-") as tmp:
        scratch = Path(tmp)
        if overlay_dir.is_dir():
            for path in overlay_dir.iterdir():
                if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
                    shutil.copyfile(path, scratch / path.name)
        (scratch / target.name).write_text(text, encoding="utf-8")
        try:
            load_catalog(scratch)
        except CatalogError as exc:
            message = str(exc).replace(str(scratch), str(overlay_dir))
            raise CatalogError(
                message, file=str(target), entry=exc.entry, field=exc.field
            ) from None


def save_overlay_text(overlay_dir: Path, target_name: str, text: str) -> Path:
    """Replace one overlay file with ``text`` after checking the overlay loads with it."""
    _check_target(overlay_dir)
    if Path(target_name).name != target_name:
        raise CatalogError(f"{target_name!r} is not a file name")
    target = overlay_dir / target_name
    check_overlay_text(overlay_dir, target, text)
    return write_text_atomic(target, text)


def save_entry(overlay_dir: Path, section: str, entry: BaseModel) -> Path:
    """Add ``entry`` to the overlay (replacing one with the same id); returns the file."""
    _check_target(overlay_dir)
    target = overlay_file(overlay_dir, section)
    data: dict[str, Any] = {}
    if target.is_file():
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(
                f"{target}: cannot read it ({exc}); fix or remove the file before saving entries",
                file=str(target),
            ) from None
        # the loader's own parser: a duplicated key is refused, not silently dropped on rewrite
        loaded = parse_yaml(text, str(target))
        if loaded is not None and not isinstance(loaded, dict):
            raise CatalogError(
                f"{target}: the top level is not a mapping; fix or remove the file first",
                file=str(target),
            )
        data = dict(loaded or {})
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise CatalogError(
            f"{target}: section '{section}' is not a list; fix or remove the file first",
            file=str(target),
        )
    new = entry.model_dump(mode="json", exclude_none=True)
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("id") == new["id"])]
    data[section] = [*kept, new]
    text = HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    check_overlay_text(overlay_dir, target, text)
    return write_text_atomic(target, text)
