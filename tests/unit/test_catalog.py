"""The hardware catalogue: shipped data validates and is plausible; overlays; lookups."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardware_catalog import (
    CATALOG_FILES,
    Catalog,
    CatalogError,
    find_gpu,
    find_model,
    find_pue,
    find_region,
    load_catalog,
)
from runtime.errors import BackplanError

ROOT = Path(__file__).resolve().parents[2]

REQUIRED_GPUS = {
    # consumer
    "rtx-3060-12gb", "rtx-3090", "rtx-4060-ti-16gb", "rtx-4070-ti-super", "rtx-4080-super",
    "rtx-4090", "rtx-5080", "rtx-5090", "rtx-3070", "rtx-3080", "rtx-3090-ti", "rtx-4060",
    "rtx-4070", "rtx-4080", "rtx-5060", "rtx-5070", "rtx-5070-ti", "rtx-3060-ti",
    # workstation
    "rtx-a4000", "rtx-a5000", "rtx-a6000", "rtx-6000-ada", "rtx-pro-6000-blackwell",
    # datacenter
    "t4", "l4", "l40s", "a10", "a30", "a100-40gb-pcie", "a100-80gb-sxm", "h100-pcie",
    "h100-sxm", "h200-sxm", "b200", "tesla-p40", "tesla-p100-16gb", "tesla-v100-32gb", "l40",
    # AMD
    "mi210", "mi250", "mi300x", "rx-7900-xtx",
    # Intel
    "arc-a770-16gb", "arc-b580",
    # Apple unified memory
    "mac-mini-m4-pro-64gb", "mac-studio-m2-ultra-192gb", "mac-studio-m3-ultra-512gb",
    "mac-studio-m1-max-64gb", "mac-studio-m1-ultra-128gb", "macbook-pro-m1-pro-32gb",
    "mac-studio-m2-max-96gb", "macbook-pro-m3-max-128gb", "mac-studio-m4-max-128gb",
    "macbook-pro-16-m4-max-128gb",
}  # fmt: skip
REQUIRED_MODELS = {
    "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "qwen2.5-coder-3b", "qwen2.5-coder-7b",
    "qwen2.5-coder-14b", "qwen2.5-coder-32b", "smollm2-135m", "smollm2-360m", "smollm2-1.7b",
    "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b",
}  # fmt: skip
REQUIRED_REGIONS = {
    "italy", "germany", "france", "spain", "netherlands", "nordics", "united-kingdom",
    "us-average", "california", "texas", "new-york", "washington", "japan",
}  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _gpu_dict(catalog: Catalog, gpu_id: str) -> dict[str, Any]:
    return catalog.gpus[gpu_id].model_dump(mode="json", exclude_none=True)


# -- the shipped data ------------------------------------------------------------------------


def test_every_shipped_file_is_packaged_and_validates(catalog: Catalog) -> None:
    from importlib import resources

    data = resources.files("hardware_catalog").joinpath("data")
    for name in CATALOG_FILES:
        assert data.joinpath(name).is_file(), name
    for section in ("gpus", "hosts", "host_shares", "regions", "pue_presets", "fx_rates"):
        assert catalog.section(section), section
    assert catalog.models
    assert catalog.overridden == []
    assert all(origin in CATALOG_FILES for origin in catalog.origins.values())


def test_package_data_is_declared_for_installs() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert "data/*.yaml" in package_data["hardware_catalog"]


def test_at_least_60_gpus_with_the_required_ones(catalog: Catalog) -> None:
    assert len(catalog.gpus) >= 60
    assert set(catalog.gpus) >= REQUIRED_GPUS, REQUIRED_GPUS - set(catalog.gpus)
    kinds = {g.kind for g in catalog.gpus.values()}
    assert kinds == {"consumer", "workstation", "datacenter", "apple_unified"}
    assert sum(g.vendor == "amd" for g in catalog.gpus.values()) >= 3


def test_every_entry_has_sources_and_priced_entries_have_dated_prices(catalog: Catalog) -> None:
    for section in ("gpus", "hosts", "host_shares", "regions", "pue_presets", "fx_rates"):
        for entry in catalog.section(section).values():
            assert entry.sources, (section, entry.id)
            for source in entry.sources:
                assert isinstance(source.as_of, date)
                assert source.url.strip()
    for section in ("gpus", "hosts", "host_shares"):
        for entry in catalog.section(section).values():
            assert isinstance(entry.price.as_of, date), (section, entry.id)
            assert entry.price.amount > 0
            assert entry.sources_for("price"), (section, entry.id)
    for gpu in catalog.gpus.values():
        assert gpu.sources_for("specs"), gpu.id
        if gpu.price.kind == "estimate":
            assert (
                gpu.price.note
                or any(s.note for s in gpu.sources_for("price"))
                or ("estimate" in gpu.sources_for("price")[0].url)
            ), gpu.id
    for region in catalog.regions.values():
        assert region.sources_for("energy_price") and region.sources_for("carbon")


def test_gpu_figures_are_plausible(catalog: Catalog) -> None:
    gpus = catalog.gpus
    for gpu in gpus.values():
        assert gpu.memory_bandwidth_gb_s > 0 and gpu.fp16_dense_tflops > 0, gpu.id
        assert gpu.idle_power_w < gpu.board_power_w, gpu.id
        assert gpu.gpu_memory_gb <= gpu.memory_gb
        # bytes per FLOP: every real part sits between 0.001 and 0.2 bytes per dense FLOP
        ratio = gpu.memory_bandwidth_gb_s * 1e9 / (gpu.fp16_dense_tflops * 1e12)
        assert 0.001 < ratio < 0.2, (gpu.id, ratio)
        if gpu.int8_dense_tops is not None:
            assert gpu.int8_dense_tops >= gpu.fp16_dense_tflops, gpu.id
    assert gpus["h100-sxm"].memory_bandwidth_gb_s > gpus["h100-pcie"].memory_bandwidth_gb_s
    assert gpus["h200-sxm"].memory_bandwidth_gb_s > gpus["h100-sxm"].memory_bandwidth_gb_s
    assert gpus["b200"].memory_bandwidth_gb_s > gpus["h200-sxm"].memory_bandwidth_gb_s
    assert gpus["h200-sxm"].memory_gb > gpus["h100-sxm"].memory_gb
    # dense, not the sparsity figure: H100 SXM is 989 dense / 1,979 sparse
    assert gpus["h100-sxm"].fp16_dense_tflops < 1000
    assert gpus["a100-80gb-sxm"].fp16_dense_tflops == pytest.approx(312)
    assert gpus["rtx-4090"].memory_gb == 24
    assert gpus["rtx-5090"].memory_bandwidth_gb_s > gpus["rtx-4090"].memory_bandwidth_gb_s
    for gpu in gpus.values():
        if gpu.kind == "apple_unified":
            assert gpu.is_system and gpu.usable_memory_gb is not None
        else:
            assert not gpu.is_system


def test_hosts_and_host_shares(catalog: Catalog) -> None:
    assert len(catalog.hosts) >= 3
    for host in catalog.hosts.values():
        assert host.memory_bandwidth_gb_s > 0 and host.threads >= host.cores
    form_factors = {ff for share in catalog.host_shares.values() for ff in share.form_factors}
    assert {"pcie", "sxm", "oam"} <= form_factors
    share = catalog.host_shares["workstation-2gpu"]
    assert share.price_per_slot == pytest.approx(share.price.amount / 2)
    assert share.power_per_slot_w == pytest.approx(share.power_w / 2)
    for share in catalog.host_shares.values():
        if share.components:
            assert sum(c.amount for c in share.components) == pytest.approx(
                share.price.amount, rel=0.01
            )


def test_energy_regions_pue_and_fx(catalog: Catalog) -> None:
    assert set(catalog.regions) >= REQUIRED_REGIONS, REQUIRED_REGIONS - set(catalog.regions)
    for region in catalog.regions.values():
        usd = catalog.convert(region.price_per_kwh, region.currency)
        assert 0.03 < usd < 0.6, (region.id, usd)
        assert 0 <= region.carbon_g_per_kwh < 1000
    assert catalog.regions["france"].carbon_g_per_kwh < catalog.regions["germany"].carbon_g_per_kwh
    pue = {p.id: p.pue for p in catalog.pue_presets.values()}
    assert 1.0 <= pue["home-office"] <= 1.1
    assert 1.5 <= pue["average-datacenter"] <= 1.6
    assert pue["small-server-room"] >= pue["average-datacenter"]
    assert pue["hyperscale"] <= 1.15
    assert catalog.convert(100, "USD") == 100
    assert catalog.convert(100, "EUR") == pytest.approx(108.24)
    assert catalog.convert(catalog.convert(50, "GBP"), "USD", to="GBP") == pytest.approx(50)
    with pytest.raises(CatalogError, match="no exchange rate for XYZ"):
        catalog.usd_per_unit("XYZ")


def test_models(catalog: Catalog) -> None:
    assert set(catalog.models) >= REQUIRED_MODELS, REQUIRED_MODELS - set(catalog.models)
    for model in catalog.models.values():
        sizes = model.gguf_bytes
        assert sizes["Q4_K_M"] < sizes["Q8_0"] < sizes["F16"], model.id
        # F16 is two bytes a parameter, plus a little metadata
        assert sizes["F16"] == pytest.approx(model.params_b * 2e9, rel=0.05), model.id
        assert model.sources_for("architecture") and model.sources_for("file_size")
        base, instruct = model.humaneval_pass1_base, model.humaneval_pass1_instruct
        if base is not None or instruct is not None:
            assert model.sources_for("quality"), model.id
        if base is not None and instruct is not None:
            assert instruct >= base, model.id
    qwen = sorted(
        (m for m in catalog.models.values() if m.family == "Qwen2.5-Coder"),
        key=lambda m: m.params_b,
    )
    assert [m.size_label for m in qwen] == ["0.5B", "1.5B", "3B", "7B", "14B", "32B"]
    scores = [m.humaneval_pass1_instruct for m in qwen]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores)  # type: ignore[type-var]
    # hand-computed: 2 (K and V) x 24 layers x 2 KV heads x 64 dims x 2 bytes
    assert catalog.models["qwen2.5-coder-0.5b"].kv_bytes_per_token() == 12288
    assert catalog.models["llama-3.1-8b"].kv_bytes_per_token(1.0) == 2 * 32 * 8 * 128


def test_published_file_sizes_match_the_runtime_registry(catalog: Catalog) -> None:
    from runtime.models.registry import registry

    specs = registry()
    for name, quant in (
        ("qwen2.5-coder-0.5b", "Q4_K_M"),
        ("qwen2.5-coder-1.5b", "Q4_K_M"),
        ("smollm2-135m", "Q4_1"),
    ):
        assert specs[name].quant == quant
        assert catalog.models[name].gguf_bytes[quant] == specs[name].size_bytes  # type: ignore[index]


# -- overlays --------------------------------------------------------------------------------


def test_overlay_overrides_and_adds(tmp_path: Path, catalog: Catalog) -> None:
    changed = _gpu_dict(catalog, "rtx-4090")
    changed["price"] = {"amount": 1750, "currency": "EUR", "kind": "street", "as_of": "2026-10-01"}
    added = _gpu_dict(catalog, "rtx-4090") | {
        "id": "rtx-4090-48gb-mod",
        "name": "Modded RTX 4090 48GB",
        "aliases": [],
        "memory_gb": 48,
    }
    overlay = _write(tmp_path / "gpus.yaml", {"gpus": [changed, added]})
    region = {
        "id": "our-site",
        "name": "Our site tariff",
        "country": "IT",
        "price_per_kwh": 0.18,
        "currency": "EUR",
        "tariff": "non_household",
        "price_kind": "published",
        "carbon_g_per_kwh": 300,
        "carbon_kind": "estimate",
        "sources": [
            {"what": "energy_price", "url": "our 2026 contract", "as_of": "2026-01-01"},
            {"what": "carbon", "url": "supplier disclosure", "as_of": "2026-01-01"},
        ],
    }
    _write(tmp_path / "energy.yml", {"regions": [region]})
    (tmp_path / "README.txt").write_text("not a catalogue file", encoding="utf-8")

    merged = load_catalog(tmp_path)
    assert len(merged.gpus) == len(catalog.gpus) + 1
    assert merged.gpus["rtx-4090"].price.amount == 1750
    assert merged.gpus["rtx-4090"].price.currency == "EUR"
    assert merged.gpus["rtx-4090-48gb-mod"].memory_gb == 48
    assert merged.regions["our-site"].price_per_kwh == 0.18
    assert len(merged.regions) == len(catalog.regions) + 1
    assert ("gpus", "rtx-4090", str(overlay)) in merged.overridden
    assert merged.origins[("gpus", "rtx-4090-48gb-mod")] == str(overlay)
    assert merged.origins[("gpus", "rtx-3090")] == "gpus.yaml"
    # the shipped catalogue is untouched by an overlay load
    assert load_catalog().gpus["rtx-4090"].price.amount == 1599


def test_invalid_overlay_entry_names_file_entry_and_field(tmp_path: Path, catalog: Catalog) -> None:
    bad = _gpu_dict(catalog, "rtx-4090") | {"memory_gb": -24}
    overlay = _write(tmp_path / "gpus.yaml", {"gpus": [bad]})
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    err = info.value
    message = str(err)
    assert str(overlay) in message
    assert "entry 'rtx-4090'" in message
    assert "field memory_gb" in message and "greater than 0" in message
    assert "fix the entry or remove it" in message
    assert (err.file, err.entry, err.field) == (str(overlay), "rtx-4090", "memory_gb")
    assert isinstance(err, BackplanError) and err.exit_code == 2


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(memory_gigs=24), "field memory_gigs: Extra inputs are not permitted"),
        (lambda d: d.update(idle_power_w=900), "idle_power_w must be below board_power_w"),
        (
            lambda d: d.update(sources=[s for s in d["sources"] if s["what"] != "price"]),
            "field sources: must include a source with what='price'",
        ),
        (lambda d: d["price"].pop("as_of"), "field price.as_of: Field required"),
        (lambda d: d["price"].update(kind="guess"), "field price.kind"),
        (lambda d: d.update(id="RTX 4090!"), "field id"),
        (lambda d: d.pop("compute_units"), "compute_units and boost_clock_ghz are required"),
    ],
)
def test_invalid_entries_are_refused(
    tmp_path: Path, catalog: Catalog, mutate: Any, expected: str
) -> None:
    entry = _gpu_dict(catalog, "rtx-4090")
    mutate(entry)
    _write(tmp_path / "gpus.yaml", {"gpus": [entry]})
    with pytest.raises(CatalogError, match="gpus.yaml") as info:
        load_catalog(tmp_path)
    assert expected in str(info.value)


def test_entry_without_id_is_named_by_position(tmp_path: Path, catalog: Catalog) -> None:
    entry = _gpu_dict(catalog, "rtx-4090")
    del entry["id"]
    _write(tmp_path / "gpus.yaml", {"gpus": [_gpu_dict(catalog, "rtx-3090"), entry]})
    with pytest.raises(CatalogError, match=r"entry #2 \(no id\): field id: Field required"):
        load_catalog(tmp_path)


def test_host_share_components_must_add_up(tmp_path: Path, catalog: Catalog) -> None:
    share = catalog.host_shares["workstation-1gpu"].model_dump(mode="json", exclude_none=True)
    share["price"]["amount"] = 5000
    _write(tmp_path / "hosts.yaml", {"host_shares": [share]})
    with pytest.raises(CatalogError, match="components add up to 1900"):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("gpu.yaml", "gpus: []\n", "unknown catalogue file"),
        ("gpus.yaml", "gpu: []\n", "unknown top-level key(s) gpu"),
        ("gpus.yaml", "gpus: {id: x}\n", "must be a list of entries"),
        ("gpus.yaml", "gpus: [1]\n", "must be a mapping of fields"),
        ("gpus.yaml", "gpus: [\n", "not valid YAML"),
        ("gpus.yaml", "- 1\n", "the top level must be a mapping"),
        ("gpus.yaml", "schema_version: 2\ngpus: []\n", "schema_version 2 is not supported"),
        ("gpus.yaml", "gpus:\n  - id: a\n    id: b\n", "found the key 'id' twice"),
        ("gpus.yaml", "gpus:\n  - id: a\n    as_of: 2025-02-30\n", "day is out of range"),
    ],
)
def test_malformed_overlay_files_are_refused(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    assert expected in str(info.value)
    assert name in str(info.value)


def test_an_id_wins_over_another_entrys_alias(tmp_path: Path, catalog: Catalog) -> None:
    """A user's new GPU whose alias reads like an existing id must not make that id ambiguous
    (the dashboard's plan form passes ids)."""
    entry = {**_gpu_dict(catalog, "rtx-4090"), "id": "my-4090", "aliases": ["RTX 4090"]}
    _write(tmp_path / "gpus.yaml", {"gpus": [entry]})
    merged = load_catalog(tmp_path)
    assert find_gpu(merged, "rtx-4090").id == "rtx-4090"
    assert find_gpu(merged, "RTX-4090").id == "rtx-4090"  # ids match case-insensitively
    assert find_gpu(merged, "my-4090").id == "my-4090"


def test_duplicate_ids_in_one_file_are_refused(tmp_path: Path, catalog: Catalog) -> None:
    entry = _gpu_dict(catalog, "rtx-4090")
    _write(tmp_path / "gpus.yaml", {"gpus": [entry, entry]})
    with pytest.raises(CatalogError, match="entry 'rtx-4090' appears twice in 'gpus'"):
        load_catalog(tmp_path)


def test_missing_overlay_folder_and_unknown_currency(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")
    entry = _gpu_dict(catalog, "rtx-4090")
    entry["price"]["currency"] = "CHF"
    _write(tmp_path / "gpus.yaml", {"gpus": [entry]})
    assert load_catalog(tmp_path).gpus["rtx-4090"].price.currency == "CHF"
    rates = {"fx_rates": [{"id": "chf", "usd_per_unit": 1.1, "sources": []}]}
    _write(tmp_path / "energy.yaml", rates)
    with pytest.raises(CatalogError, match="entry 'chf': field sources"):
        load_catalog(tmp_path)


# -- lookups ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rtx-4090", "rtx-4090"),
        ("RTX 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("rtx4090", "rtx-4090"),
        ("  h100_SXM  ", "h100-sxm"),
        ("A10", "a10"),
        ("rtx 6000 ada", "rtx-6000-ada"),
        ("mi300x", "mi300x"),
        ("M2 Ultra", "mac-studio-m2-ultra-192gb"),
    ],
)
def test_find_gpu_matches_ids_names_and_aliases(
    catalog: Catalog, query: str, expected: str
) -> None:
    assert find_gpu(catalog, query).id == expected


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("M1", "unknown GPU 'M1'"),  # inside "H200 SXM 141GB": answered with an H200 before
        ("4090", "did you mean rtx-4090"),  # a part of a name is not a name
        ("a100", "did you mean a100-40gb-pcie .*a100-80gb-pcie .*a100-80gb-sxm"),
        ("h100", "did you mean h100-nvl .*h100-pcie .*h100-sxm"),
        ("rtx", "did you mean rtx-"),
        ("", "empty GPU name"),
    ],
)
def test_names_resolve_exactly_or_not_at_all(catalog: Catalog, query: str, needle: str) -> None:
    with pytest.raises(CatalogError, match=needle):
        find_gpu(catalog, query)


def test_find_gpu_miss_suggests(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="unknown GPU 'rtx 4900'; did you mean rtx-4090"):
        find_gpu(catalog, "rtx 4900")
    with pytest.raises(CatalogError, match="unknown GPU 'H100'; did you mean h100-nvl .*h100-sxm"):
        find_gpu(catalog, "H100")
    with pytest.raises(CatalogError, match="empty GPU name"):
        find_gpu(catalog, " - ")
    with pytest.raises(CatalogError) as info:
        find_gpu(catalog, "zzzzqqq")
    assert "the catalogue knows" in str(info.value) and info.value.exit_code == 2


def test_find_model_region_pue(catalog: Catalog) -> None:
    assert find_model(catalog, "Qwen2.5-Coder-0.5B-Instruct").id == "qwen2.5-coder-0.5b"
    assert find_model(catalog, "smollm2 135m").id == "smollm2-135m"
    assert find_region(catalog, "UK").id == "united-kingdom"
    assert find_region(catalog, "Italy").id == "italy"
    assert find_pue(catalog, "hyperscale").pue == pytest.approx(1.1)
    with pytest.raises(CatalogError, match="unknown region 'atlantis'"):
        find_region(catalog, "atlantis")
