"""Each dashboard page run by Streamlit's AppTest: widgets set, forms submitted, what shows."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from dashboards import overlay as overlay_mod
from dashboards import tables
from dashboards.state import PLAN_KEY
from dashboards.views.plan import report_builder
from hardware_catalog import CatalogError, load_catalog
from planner.profiler.schema import Profile
from planner.recommend.plan import PlanResult, make_plan
from planner.recommend.workload import Workload

PAGES = Path(__file__).resolve().parents[2] / "dashboards" / "app_pages"
APP = PAGES.parent / "app.py"
SMALL = {
    "models": ["qwen2.5-coder-0.5b", "qwen2.5-coder-7b"],
    "gpus": ["rtx-4090", "l4", "h100-sxm"],
    "gpu_counts": [1, 2],
    "quants": ["Q4_K_M"],
}


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)


def by_label(elements: Any, label: str) -> Any:
    for element in elements:
        if element.label == label:
            return element
    raise AssertionError(f"no widget labelled {label!r}; have {[e.label for e in elements]}")


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def charts(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


def downloads(at: AppTest) -> list[Any]:
    return list(at.get("download_button"))


def submit_plan(at: AppTest) -> AppTest:
    by_label(at.button, "Make plan").click()
    return at.run()


def write_profile(path: Path, profile: Profile) -> None:
    profile.save(path)


def small_plan(**limits: Any) -> PlanResult:
    return make_plan(Workload(developers=40, **SMALL, **limits))


# -- the app and its navigation ------------------------------------------------------------


def test_app_opens_on_the_plan_page() -> None:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Plan"]
    assert by_label(at.button, "Make plan")


# -- Plan ----------------------------------------------------------------------------------


def test_plan_form_gives_a_shortlist_and_charts() -> None:
    at = page("plan").run()
    no_exception(at)
    by_label(at.number_input, "Developers").set_value(60)
    by_label(at.slider, "Minimum pass@1").set_value(0.6)
    by_label(at.number_input, "Latency: tokens/s per user at peak").set_value(30.0)
    by_label(at.number_input, "Peak concurrency (0 = developers / 5)").set_value(10)
    by_label(at.number_input, "Budget USD (0 = none)").set_value(60_000.0)
    by_label(at.number_input, "Power cap W (0 = none)").set_value(3000.0)
    by_label(at.selectbox, "Region").set_value("germany")
    by_label(at.selectbox, "PUE").set_value("a number")
    by_label(at.number_input, "PUE number (when 'a number')").set_value(1.3)
    by_label(at.number_input, "Horizon years").set_value(4.0)
    submit_plan(at)
    no_exception(at)
    assert not errors(at)
    plan = at.session_state[PLAN_KEY]
    assert isinstance(plan, PlanResult) and plan.shortlist
    w = plan.workload
    assert (w["developers"], w["region"], w["pue"], w["years"]) == (60, "germany", 1.3, 4.0)
    assert (w["budget_usd"], w["power_cap_w"], w["peak_concurrency"]) == (60_000, 3000, 10)
    assert all((c.pass_at_1 or 0) >= 0.6 and c.capex_usd <= 60_000 for c in plan.shortlist)
    assert len(at.dataframe) == 1
    shown = at.dataframe[0].value
    assert len(shown) == len(plan.shortlist) and "hardware" in shown.columns
    assert len(charts(at)) == 4  # two Pareto charts, cost breakdown, memory stack
    assert any("Best:" in s.value for s in at.success)
    labels = [b.label for b in downloads(at)]
    assert labels == ["Shortlist (CSV)", "Report (HTML)", "Report (markdown, zip)"]


def test_tokens_per_day_and_what_to_consider() -> None:
    at = page("plan").run()
    by_label(at.radio, "Demand given as").set_value("tokens per day")
    by_label(at.number_input, "Tokens per day").set_value(2_000_000.0)
    by_label(at.multiselect, "GPUs (empty = the whole catalogue)").set_value(["l4", "rtx-4090"])
    by_label(at.multiselect, "Verifiers").set_value(["none", "latent"])
    by_label(at.multiselect, "GPU counts").set_value([1])
    submit_plan(at)
    no_exception(at)
    plan = at.session_state[PLAN_KEY]
    assert plan.workload["tokens_per_day"] == 2_000_000 and plan.workload["developers"] is None
    assert {c.gpu for c in plan.candidates} <= {"l4", "rtx-4090"}
    assert {c.verifier for c in plan.candidates} <= {"none", "latent"}


def test_impossible_constraints_say_what_binds() -> None:
    at = page("plan").run()
    by_label(at.number_input, "Budget USD (0 = none)").set_value(100.0)
    submit_plan(at)
    no_exception(at)
    (message,) = errors(at)
    assert "No candidate meets every constraint" in message and "budget" in message
    assert not at.dataframe and not charts(at)


def test_an_empty_choice_is_an_error_on_the_page() -> None:
    at = page("plan").run()
    by_label(at.multiselect, "Verifiers").set_value([])
    submit_plan(at)
    no_exception(at)
    assert any("at least one verifier" in e for e in errors(at))


def test_broken_overlay_shows_an_error_and_planning_still_works(overlay: Path) -> None:
    overlay.mkdir()
    (overlay / "gpus.yaml").write_text("gpus: [\n  - id: broken\n")
    at = page("plan").run()
    no_exception(at)
    assert any("cannot be used" in e and "gpus.yaml" in e for e in errors(at))
    submit_plan(at)
    no_exception(at)
    assert at.session_state[PLAN_KEY].shortlist and len(charts(at)) == 4


def test_plan_with_a_profile_offers_the_report(profile_path: Path, sample_profile: Profile) -> None:
    write_profile(profile_path, sample_profile)
    at = page("plan").run()
    choice = by_label(at.selectbox, "Verifier overheads from")
    local = [o for o in choice.options if o.startswith("local")]
    assert local, choice.options
    choice.set_value(local[0])
    submit_plan(at)
    no_exception(at)
    plan = at.session_state[PLAN_KEY]
    assert any(
        "profile smollm2-135m" in v for k, v in plan.verifier_costs.items() if "model:self" in k
    )
    buttons = {b.label: b for b in downloads(at)}
    assert not buttons["Report (HTML)"].proto.disabled


def test_report_builder_gives_html_and_a_markdown_zip(sample_profile: Profile) -> None:
    build = report_builder(small_plan(), sample_profile)
    assert build("html").startswith(b"<!doctype html>")
    names = zipfile.ZipFile(io.BytesIO(build("zip"))).namelist()
    assert "backplan-report/report.md" in names and "backplan-report/costs.png" in names


def test_shortlist_csv_and_chart_frames() -> None:
    plan = small_plan()
    csv = tables.shortlist_csv(plan).splitlines()
    assert csv[0].startswith("rank,hardware,model,quant,verifier") and len(csv) == 1 + len(
        plan.shortlist
    )
    costs = tables.cost_frame(plan)
    first = plan.shortlist[0]
    assert costs[costs["rank"] == 1]["usd_per_year"].sum() == pytest.approx(
        first.annual_cost_usd, rel=1e-3
    )
    stack, capacity = tables.memory_frames(plan, load_catalog())
    assert stack[stack["rank"] == 1]["gb"].sum() == pytest.approx(
        first.memory_gb_per_replica, abs=0.01
    )
    assert (capacity["capacity_gb"] >= stack.groupby("rank")["gb"].sum().values - 0.01).all()


# -- Profiles ------------------------------------------------------------------------------


def test_profiles_page_shows_the_three_figures(profile_path: Path, sample_profile: Profile) -> None:
    write_profile(profile_path, sample_profile)
    at = page("profiles").run()
    no_exception(at)
    assert not errors(at)
    table = at.dataframe[0].value
    assert list(table["config"]) == [c.name for c in sample_profile.configs]
    sep = table.set_index("config").loc["separate-threshold"]
    assert (sep["memory x"], sep["compute x"], sep["decode slowdown %"]) == (1.9, 2.0, 30.0)
    assert sep["tok/s spread %"] == 5.0
    assert len(charts(at)) == 2


def test_a_broken_local_profile_is_an_error_on_the_page(profile_path: Path) -> None:
    profile_path.write_text('{"schema_version": 1, "configs": [')
    at = page("profiles").run()
    no_exception(at)
    assert any(
        "local profile cannot be used" in e and "not a readable JSON" in e for e in errors(at)
    )


def test_uploaded_profiles_good_and_bad(sample_profile: Profile) -> None:
    at = page("profiles").run()
    assert any("No local profile" in i.value for i in at.info)
    good = sample_profile.model_dump_json().encode()
    at.file_uploader[0].set_value(
        [("mine.json", good, "application/json"), ("bad.json", b"[1, 2]", "application/json")]
    )
    at.run()
    no_exception(at)
    assert any("bad.json" in e and "not a backplan profile" in e for e in errors(at))
    assert by_label(at.selectbox, "Profile").value == "uploaded: mine.json"
    assert len(at.dataframe) == 1 and len(charts(at)) == 2


def test_quick_profile_from_the_page_feeds_a_progress_bar(
    monkeypatch: pytest.MonkeyPatch, sample_profile: Profile
) -> None:
    from planner.profiler import runner

    seen: list[tuple[str, int, int]] = []

    def fake_run(req: Any, progress: Callable[[str, int, int], None] | None = None) -> Profile:
        assert req.quick
        for i in range(1, 5):
            assert progress is not None
            progress(f"step {i}", i, 4)
            seen.append((f"step {i}", i, 4))
        return sample_profile

    monkeypatch.setattr(runner, "run_profile", fake_run)
    at = page("profiles").run()
    by_label(at.button, "Run a quick profile").click()
    at.run()
    no_exception(at)
    assert len(seen) == 4
    assert any("measured" in s.value for s in at.success)
    assert at.get("progress")
    assert by_label(at.selectbox, "Profile").value.startswith("quick run")


# -- Catalogue -----------------------------------------------------------------------------


def test_catalogue_browses_and_filters() -> None:
    at = page("catalogue").run()
    no_exception(at)
    assert len(at.dataframe) == 3
    gpus_before = len(at.dataframe[0].value)
    at.text_input(key="filter_gpus").set_value("nvidia").run()
    gpus = at.dataframe[0].value
    assert 0 < len(gpus) < gpus_before and set(gpus["vendor"]) == {"nvidia"}


def _edit(at: AppTest, section: str, base: str) -> AppTest:
    at.selectbox(key="edit_section").set_value(section).run()
    at.selectbox(key=f"edit_base_{section}").set_value(base).run()
    return at


def _field(at: AppTest, section: str, base: str, name: str) -> Any:
    return at.get_by_key(f"edit_{section}_{base}_{name}")


def test_catalogue_saves_a_new_gpu_to_the_overlay(overlay: Path) -> None:
    shipped = (PAGES.parents[1] / "hardware_catalog" / "data" / "gpus.yaml").read_text()
    at = _edit(page("catalogue").run(), "gpus", "rtx-4090")
    _field(at, "gpus", "rtx-4090", "id").set_value("rtx-4090-cheap")
    _field(at, "gpus", "rtx-4090", "name").set_value("RTX 4090 (our price)")
    _field(at, "gpus", "rtx-4090", "aliases").set_value("[]")
    price = yaml.safe_load(_field(at, "gpus", "rtx-4090", "price").value)
    price["amount"] = 1234
    _field(at, "gpus", "rtx-4090", "price").set_value(yaml.safe_dump(price))
    by_label(at.button, "Validate and save").click()
    at.run()
    no_exception(at)
    assert not errors(at)
    assert any("rtx-4090-cheap" in s.value for s in at.success)
    saved = yaml.safe_load((overlay / "gpus.yaml").read_text())
    assert [g["id"] for g in saved["gpus"]] == ["rtx-4090-cheap"]
    catalog = load_catalog(overlay)
    assert catalog.gpus["rtx-4090-cheap"].price.amount == 1234
    assert (PAGES.parents[1] / "hardware_catalog" / "data" / "gpus.yaml").read_text() == shipped
    assert "rtx-4090-cheap" in set(at.dataframe[0].value["id"])  # browse shows it


def test_catalogue_rejects_an_invalid_entry_with_the_field_named(overlay: Path) -> None:
    at = _edit(page("catalogue").run(), "regions", "germany")
    _field(at, "regions", "germany", "id").set_value("Bad Id")
    _field(at, "regions", "germany", "price_per_kwh").set_value(-1.0)
    by_label(at.button, "Validate and save").click()
    at.run()
    no_exception(at)
    (message,) = errors(at)
    assert "field id" in message and "field price_per_kwh" in message
    assert "greater than 0" in message
    assert not overlay.exists()


def test_catalogue_rejects_yaml_that_does_not_parse(overlay: Path) -> None:
    at = _edit(page("catalogue").run(), "models", "qwen2.5-coder-7b")
    _field(at, "models", "qwen2.5-coder-7b", "gguf_bytes").set_value("Q4_K_M: [1,")
    by_label(at.button, "Validate and save").click()
    at.run()
    (message,) = errors(at)
    assert "gguf_bytes: not valid YAML" in message
    assert not overlay.exists()


def test_catalogue_with_a_broken_overlay_offers_the_fix(overlay: Path) -> None:
    overlay.mkdir()
    bad = overlay / "energy.yaml"
    bad.write_text("regions:\n  - id: nowhere\n    name: Nowhere\n")
    at = page("catalogue").run()
    no_exception(at)
    assert any("energy.yaml" in e and "cannot be used" in e for e in errors(at))
    assert len(at.dataframe) == 3  # the shipped catalogue still browses
    area = by_label(at.text_area, "energy.yaml")
    area.set_value("regions: []\n")
    by_label(at.button, "Check and save").click()
    at.run()
    no_exception(at)
    assert bad.read_text() == "regions: []\n"
    assert not errors(at)


def test_overlay_never_writes_the_shipped_catalogue() -> None:
    import hardware_catalog

    shipped = Path(hardware_catalog.__file__).parent / "data"
    entry = load_catalog().gpus["l4"]
    with pytest.raises(CatalogError, match="shipped catalogue"):
        overlay_mod.save_entry(shipped, "gpus", entry)


def test_overlay_save_replaces_the_entry_with_the_same_id(overlay: Path) -> None:
    catalog = load_catalog()
    l4 = catalog.gpus["l4"]
    overlay_mod.save_entry(overlay, "gpus", l4)
    cheaper = l4.model_copy(update={"notes": "ours"})
    overlay_mod.save_entry(overlay, "gpus", cheaper)
    saved = yaml.safe_load((overlay / "gpus.yaml").read_text())
    assert [g["id"] for g in saved["gpus"]] == ["l4"] and saved["gpus"][0]["notes"] == "ours"
    assert load_catalog(overlay).overridden == [("gpus", "l4", str(overlay / "gpus.yaml"))]


# -- Compare -------------------------------------------------------------------------------


def test_compare_shortlist_candidates_side_by_side() -> None:
    at = page("compare").run()
    no_exception(at)
    assert any("Make a plan" in i.value for i in at.info)
    at.session_state[PLAN_KEY] = small_plan()
    at.run()
    no_exception(at)
    picks = at.multiselect(key="compare_candidates")
    assert len(picks.value) == 3
    table = at.dataframe[0].value
    assert list(table.columns) == picks.value and "USD / 1,000 solved tasks" in table.index
    assert "pass@1 from" in table.index
    assert len(at.metric) == 5 * 3  # per task, per token, pass@1, watts, capex
    picks.set_value(picks.value[:1]).run()
    assert any("two to four" in w.value for w in at.warning)


def test_compare_profile_configurations(profile_path: Path, sample_profile: Profile) -> None:
    write_profile(profile_path, sample_profile)
    at = page("compare").run()
    at.radio(key="compare_source").set_value("profile configurations").run()
    no_exception(at)
    at.multiselect(key="compare_configs").set_value(["plain", "separate-threshold"]).run()
    table = at.dataframe[0].value
    assert list(table.columns) == ["plain", "separate-threshold"]
    assert table.loc["memory x", "separate-threshold"] == "1.900"
