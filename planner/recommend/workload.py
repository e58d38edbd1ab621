"""The workload and constraints a plan is made for (a YAML file, or flags)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from planner.quality.decoding import Decoding
from runtime.errors import UsageError, first_problem
from runtime.files import read_text, yaml_problem
from runtime.verifiers.spec import VerifierSpec

#: A verifier row that names no decoding is planned with greedy threshold backtracking: the
#: strategy measured to help; ``SPEC @LABEL`` plans another (``syntax+examples=8 @regenerate-a8``).
PLAN_DECODING = "threshold"
#: The verifiers a plan compares unless told otherwise: none, the latent head, an equal-size
#: separate verifier (the seed's setup) and the programmatic checks measured to help.
DEFAULT_VERIFIERS: tuple[str, ...] = ("none", "latent", "model:self", "syntax+examples=8")


def row_name(verifier: str, decoding: str) -> str:
    """A plan row as a workload spells it: ``SPEC``, or ``SPEC @LABEL`` off the default."""
    return verifier if decoding in ("plain", PLAN_DECODING) else f"{verifier} @{decoding}"


@dataclass(frozen=True)
class PlannedVerifier:
    """One verifier row of a plan: a verifier spec and the decoding it is planned with."""

    spec: VerifierSpec
    decoding: Decoding

    @classmethod
    def parse(cls, text: str) -> PlannedVerifier:
        """``SPEC`` (threshold, or plain for ``none``) or ``SPEC @DECODING``."""
        spec_text, at, label = text.rpartition("@")
        if not at:
            spec_text, label = text, ""
        spec = VerifierSpec.parse(spec_text)
        if not label.strip():
            return cls(spec, Decoding(strategy="plain" if spec.is_none else PLAN_DECODING))
        decoding = Decoding.parse(label)
        if spec.is_none != (decoding.strategy == "plain"):
            why = (
                "none decodes with plain"
                if spec.is_none
                else "a verifier needs a strategy that uses it (threshold, vgb or regenerate)"
            )
            raise UsageError(f"{text!r}: {why}; fix the decoding after '@'")
        return cls(spec, decoding)

    def __str__(self) -> str:
        return row_name(str(self.spec), self.decoding.label)


class Workload(BaseModel):
    """Who is served, how fast, under which limits. Every field has a documented default."""

    model_config = ConfigDict(extra="forbid")

    developers: int | None = Field(40, ge=1, description="Developers served.")
    tokens_per_developer_per_day: float = Field(
        100_000, gt=0, description="Generated tokens per developer per working day."
    )
    tokens_per_day: float | None = Field(None, gt=0, description="Overrides developers x rate.")
    active_hours_per_day: float = Field(
        10, gt=0, le=24, description="Hours a day the load arrives in."
    )
    peak_concurrency: int | None = Field(
        None, ge=1, description="Sequences decoded at once at peak (default: developers/5)."
    )
    context_tokens: int = Field(4096, ge=256, le=131072, description="Context per sequence.")
    min_tok_s_per_stream: float = Field(
        25, ge=0, description="Latency: tokens/s each user sees at peak."
    )
    min_pass_at_1: float = Field(
        0.6, ge=0, le=1, description="Minimum HumanEval pass@1 (0: no quality floor)."
    )
    budget_usd: float | None = Field(None, gt=0, description="Most capex to spend.")
    power_cap_w: float | None = Field(None, gt=0, description="Most power to draw (GPUs+host).")
    region: str = Field("us-average", description="Electricity price and grid carbon.")
    pue: str | float = Field("small-server-room", description="A PUE preset or a number (1-3).")
    years: float = Field(3, gt=0, le=10, description="Amortisation horizon.")
    ops_usd_per_year: float = Field(0, ge=0, description="Operations cost per year.")
    models: list[str] | None = Field(
        None, min_length=1, description="Models to consider (default: coders)."
    )
    gpus: list[str] | None = Field(
        None, min_length=1, description="GPUs to consider (default: all)."
    )
    gpu_counts: list[Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=lambda: [1, 2, 4, 8], min_length=1, description="GPUs per server to try."
    )
    quants: list[str] = Field(
        default_factory=lambda: ["Q4_K_M", "Q8_0"], min_length=1, description="Quantisations."
    )
    verifiers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VERIFIERS),
        min_length=1,
        description="Verifier specs to compare (backplan's --verifier spelling: none, latent, "
        "model:self, syntax+examples=8, ...), each with greedy threshold backtracking, or with "
        "the decoding after '@' (syntax+examples=8 @regenerate-a8, latent @vgb-t0.7).",
    )
    tokens_per_task: float = Field(
        220,
        gt=0,
        description="Tokens generated per coding task (HumanEval answers here: 190-225); with "
        "pass@1 it sets the cost per solved task.",
    )

    @field_validator("verifiers")
    @classmethod
    def _specs(cls, specs: list[str]) -> list[str]:
        out = []
        for text in specs:
            try:
                planned = PlannedVerifier.parse(text)
            except UsageError as exc:  # reported with the file and the field
                raise ValueError(str(exc)) from None
            if planned.spec.needs_request_checks:
                raise ValueError(
                    "the tests verifier's effect depends on each request's tests, so it cannot "
                    "be planned; plan with examples (the prompt's own examples)"
                )
            out.append(str(planned))
        if len(set(out)) != len(out):
            raise ValueError("a verifier is listed twice")
        return out

    @field_validator("pue")
    @classmethod
    def _pue_range(cls, value: str | float) -> str | float:
        if isinstance(value, float | int) and not 1.0 <= value <= 3.0:  # NaN fails too
            raise ValueError(f"a PUE of {value} is impossible: give 1.0-3.0 or a preset's name")
        return value

    @model_validator(mode="after")
    def _demand(self) -> Workload:
        if self.tokens_per_day is None and self.developers is None:
            raise ValueError("give developers or tokens_per_day")
        return self

    @property
    def planned_verifiers(self) -> list[PlannedVerifier]:
        return [PlannedVerifier.parse(text) for text in self.verifiers]

    @property
    def demand_tok_per_day(self) -> float:
        if self.tokens_per_day is not None:
            return self.tokens_per_day
        return float(self.developers or 0) * self.tokens_per_developer_per_day

    @property
    def concurrency(self) -> int:
        if self.peak_concurrency is not None:
            return self.peak_concurrency
        return max(1, math.ceil((self.developers or 1) / 5))

    @property
    def demand_tok_s(self) -> float:
        """Average rate while the load arrives."""
        return self.demand_tok_per_day / (self.active_hours_per_day * 3600)


def load_workload(path: str | Path, **overrides: object) -> Workload:
    """Read a workload YAML; flags given as ``overrides`` win. One clear error if invalid."""
    path = Path(path)
    text = read_text(path, what="workload file", fix="see the README's example")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML ({yaml_problem(exc)}); fix the file") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping of workload fields (see the README)")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return make_workload(data, where=str(path))


def make_workload(data: dict[str, object], where: str = "workload") -> Workload:
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        field, msg = first_problem(exc)
        raise UsageError(
            f"{where}: field {field or 'workload'}: {msg}; fix it "
            "(see the README's workload format)"
        ) from None
