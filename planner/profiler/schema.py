"""The profile file: a versioned JSON document, validated on load.

Top level: ``schema_version``, ``created``, ``fingerprint``, ``model``, ``settings``, ``meter``,
``configs`` (one entry per configuration, with ``memory_ratio``, ``compute_ratio`` and
``decode_ratio`` against plain next to the raw figures) and ``warnings``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.atomic import write_text_atomic
from runtime.errors import BackplanError, UsageError, first_problem
from runtime.files import read_text

PROFILE_SCHEMA_VERSION = 1


class ProfileError(BackplanError):
    """A profile file that cannot be used (wrong version, broken JSON, invalid fields)."""

    exit_code = 2
    http_status = 400


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stat(_Strict):
    """Median of the repeats, with their spread ((max - min) / median) and the raw values."""

    median: float
    spread_pct: float
    values: list[float]


class MemoryFigures(_Strict):
    source: str = Field(description="nvml (per-process GPU memory) or rss (resident set)")
    baseline_gb: float = Field(description="Process memory before any model was loaded.")
    peak_gb: float = Field(description="Peak memory attributable to the run (peak - baseline).")
    steady_gb: float = Field(description="Memory after generating (current - baseline).")
    peak_process_gb: float = Field(description="Whole-process peak, interpreter included.")
    main_weights_gb: float
    verifier_weights_gb: float
    kv_cache_gb: float = Field(description="K and V caches at the context size, main + verifier.")


class ComputeFigures(_Strict):
    main_forward_per_emitted: float
    verifier_forward_per_emitted: float
    forward_per_emitted: float = Field(description="Main + verifier, prompt excluded.")
    head_evals_per_emitted: float
    gflops_per_emitted: float = Field(description="2 x parameters per forward token, summed.")
    code_runs_per_emitted: float = Field(
        0.0, description="Sandboxed checks of generated code (examples, tests) per token."
    )
    code_cpu_s_per_emitted: float = Field(
        0.0, description="CPU seconds of those checks per token: host CPU, not accelerator."
    )
    code_wall_s_per_emitted: float = Field(
        0.0, description="Wall seconds of those checks per token (the sequence waits)."
    )


class DecodeFigures(_Strict):
    tok_s: Stat = Field(description="Emitted tokens per second (prompt included in the time).")
    ttft_s: Stat = Field(description="Time to the first committed (streamable) token.")
    decode_only_tok_s: Stat = Field(
        description="Emitted tokens per second after the prompt (prefill time excluded)."
    )


class QualityFigures(_Strict):
    benchmark: str = "humaneval"
    n: int
    passed: int
    pass_at_1: float
    ci95: list[float]
    results_file: str


class EnergyFigures(_Strict):
    source: str = Field(description="nvml, rapl or estimate")
    is_estimate: bool
    j_per_token: Stat


class BacktrackFigures(_Strict):
    rollbacks_per_100: float
    rejected_per_100: float
    rolled_back_tokens_per_100: float
    verifier_calls_per_100: float


class ConfigProfile(_Strict):
    name: str
    strategy: str
    verifier: str
    head: str | None = None
    temperature: float
    attempts: int | None = Field(None, description="The regenerate strategy's most answers.")
    accept: Literal["threshold", "value"] | None = Field(
        None, description="The regenerate strategy's rule; value: VGB over whole answers."
    )
    emitted_tokens: int = Field(description="Tokens emitted per repeat, all prompts together.")
    memory: MemoryFigures
    compute: ComputeFigures
    decode: DecodeFigures
    energy: EnergyFigures
    backtracking: BacktrackFigures
    quality: QualityFigures | None = Field(None, description="With --quality N: pass@1.")
    memory_ratio: float = Field(description="peak_gb over plain's.")
    compute_ratio: float = Field(description="forward_per_emitted over plain's.")
    decode_ratio: float = Field(description="tok/s over plain's (1 - slowdown).")
    energy_ratio: float = Field(description="J per token over plain's.")


class ModelInfo(_Strict):
    name: str
    path: str
    sha256: str | None
    n_params: int
    size_bytes: int
    n_embd: int
    n_layer: int
    n_ctx: int


class ProfileSettings(_Strict):
    prompts: list[str]
    max_tokens: int
    repeats: int
    n_threads: int | None
    quick: bool


class Profile(_Strict):
    schema_version: int = PROFILE_SCHEMA_VERSION
    created: str
    fingerprint: dict[str, Any]
    model: ModelInfo
    settings: ProfileSettings
    meter: dict[str, Any]
    configs: list[ConfigProfile]
    warnings: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0

    def config(self, name: str) -> ConfigProfile:
        for c in self.configs:
            if c.name == name:
                return c
        raise ProfileError(
            f"the profile has no configuration {name!r}; it has "
            + ", ".join(c.name for c in self.configs)
        )

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(path, self.model_dump_json(indent=2) + "\n")


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile; one clear error for a broken file or another version."""
    path = Path(path)
    try:
        data = json.loads(
            read_text(path, what="profile", fix="create one with `backplan profile --out FILE`")
        )
    except UsageError as exc:
        raise ProfileError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"{path} is not a readable JSON profile ({exc}); re-create it with `backplan profile`"
        ) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ProfileError(
            f"{path} is not a backplan profile (no schema_version); re-create "
            "it with `backplan profile`"
        )
    if data["schema_version"] != PROFILE_SCHEMA_VERSION:
        raise ProfileError(
            f"{path} has profile schema {data['schema_version']}, this backplan "
            f"reads {PROFILE_SCHEMA_VERSION}; re-run `backplan profile`"
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        where, msg = first_problem(exc)
        raise ProfileError(
            f"{path}: field {where}: {msg}; the file is damaged, "
            "re-create it with `backplan profile`"
        ) from None
