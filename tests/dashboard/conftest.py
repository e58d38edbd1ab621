"""Fixtures for the dashboard: a small valid profile, and a private overlay and profile path.

Every test points the dashboard at folders under ``tmp_path`` (never ~/.config/backplan).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.config import CATALOG_ENV, PROFILE_ENV
from planner.profiler.schema import (
    BacktrackFigures,
    ComputeFigures,
    ConfigProfile,
    DecodeFigures,
    EnergyFigures,
    MemoryFigures,
    ModelInfo,
    Profile,
    ProfileSettings,
    Stat,
)

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"

# name, strategy, verifier, memory x, forward per emitted (main, verifier), tok/s
_CONFIGS = (
    ("plain", "plain", "none", 1.0, (1.0, 0.0), 100.0),
    ("latent-threshold", "threshold", "latent=constant", 1.02, (1.0, 0.0), 92.0),
    ("separate-threshold", "threshold", "model:smollm2-135m=constant", 1.9, (1.0, 1.0), 70.0),
    ("syntax-vgb", "vgb", "syntax", 1.0, (1.3, 0.0), 80.0),
)


def _stat(median: float) -> Stat:
    values = [median * 0.97, median, median * 1.02]
    return Stat(median=median, spread_pct=5.0, values=values)


def _decode_extra(tok_s: float) -> dict[str, Stat]:
    """Decode figures that newer schemas add (prefill excluded), when the schema has them."""
    fields = DecodeFigures.model_fields
    return {"decode_only_tok_s": _stat(tok_s * 1.1)} if "decode_only_tok_s" in fields else {}


def make_profile() -> Profile:
    """A profile of four configurations with plausible figures (no model is run)."""
    configs = []
    for name, strategy, verifier, mem_x, (main_fwd, ver_fwd), tok_s in _CONFIGS:
        peak = 0.12 * mem_x
        configs.append(
            ConfigProfile(
                name=name,
                strategy=strategy,
                verifier=verifier,
                head="constant" if "constant" in verifier else None,
                temperature=0.7 if strategy == "vgb" else 0.0,
                emitted_tokens=32,
                memory=MemoryFigures(
                    source="rss",
                    baseline_gb=0.2,
                    peak_gb=peak,
                    steady_gb=peak * 0.9,
                    peak_process_gb=peak + 0.2,
                    main_weights_gb=0.098,
                    verifier_weights_gb=0.098 if ver_fwd else 0.0,
                    kv_cache_gb=0.02 * (2 if ver_fwd else 1),
                ),
                compute=ComputeFigures(
                    main_forward_per_emitted=main_fwd,
                    verifier_forward_per_emitted=ver_fwd,
                    forward_per_emitted=main_fwd + ver_fwd,
                    head_evals_per_emitted=1.0 if verifier != "none" else 0.0,
                    gflops_per_emitted=0.27 * (main_fwd + ver_fwd),
                ),
                decode=DecodeFigures(
                    tok_s=_stat(tok_s), ttft_s=_stat(0.05), **_decode_extra(tok_s)
                ),
                energy=EnergyFigures(source="estimate", is_estimate=True, j_per_token=_stat(0.2)),
                backtracking=BacktrackFigures(
                    rollbacks_per_100=0.0 if strategy == "plain" else 1.5,
                    rejected_per_100=0.0,
                    rolled_back_tokens_per_100=0.0,
                    verifier_calls_per_100=0.0 if verifier == "none" else 100.0,
                ),
                memory_ratio=mem_x,
                compute_ratio=main_fwd + ver_fwd,
                decode_ratio=tok_s / 100.0,
                energy_ratio=100.0 / tok_s,
            )
        )
    return Profile(
        created="2026-01-01T00:00:00+00:00",
        fingerprint={"cpu_model": "Test CPU", "cores": 2},
        model=ModelInfo(
            name="smollm2-135m",
            path="/models/smollm2.gguf",
            sha256=None,
            n_params=134_515_008,
            size_bytes=98_362_432,
            n_embd=576,
            n_layer=30,
            n_ctx=1024,
        ),
        settings=ProfileSettings(
            prompts=["Write is_prime"], max_tokens=32, repeats=3, n_threads=2, quick=True
        ),
        meter={"device": "cpu"},
        configs=configs,
        warnings=["energy is an estimate (test profile)"],
        elapsed_s=1.0,
    )


@pytest.fixture
def sample_profile() -> Profile:
    return make_profile()


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    """The dashboard's overlay folder (not created: the Catalogue page creates it)."""
    return tmp_path / "overlay"


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    """The dashboard's local profile path (no file: a test writes one when it needs it)."""
    return tmp_path / "profile.json"


@pytest.fixture(autouse=True)
def dashboard_env(monkeypatch: pytest.MonkeyPatch, overlay: Path, profile_path: Path) -> None:
    monkeypatch.setenv(CATALOG_ENV, str(overlay))
    monkeypatch.setenv(PROFILE_ENV, str(profile_path))
