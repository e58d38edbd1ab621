"""pass@1 for every (model, verifier) a plan considers, each with where it comes from.

Three provenances, in order of preference:

- ``measured``: this project's harness (``backplan eval humaneval``, all problems of the run,
  n >= :data:`MIN_MEASURED_N`) measured this configuration with this decoding (its
  :class:`~planner.quality.decoding.Decoding` label: ``threshold``, ``regenerate-a8``,
  ``vgb-t0.7``, ...); its 95% Wilson interval.
- ``published``: the model card or technical report's plain instruct figure (the catalogue's
  ``humaneval_pass1_instruct`` with its source), calibrated to this harness by the ratio
  measured on the models of the same family where both exist (:class:`Calibration`); other
  families are shown uncalibrated, and say so.
- ``extrapolated``: a programmatic verifier (no trained head: ``syntax``, ``examples``) not
  measured on this model, from the **share of the plain model's failures it fixes** where it
  was measured, ``f = (p_v - p_0) / (1 - p_0)``, applied to this model's plain pass@1:
  ``p = p_0 + f (1 - p_0)`` (:class:`FixRate`), for greedy decodings only. The point
  estimate uses the mean ``f`` over the measured sizes; the interval spans the lowest and
  highest ``f`` those sizes' 95% intervals allow (``p_0`` taken as fixed, as in a paired
  design).

A learned verifier (``latent``, ``model:NAME``) is never extrapolated: its effect belongs to
its trained head. A copy of the main model as verifier (``model:self``) reads the same hidden
states as the latent head and scores as it does, so it carries the latent head's measurement.
Anything else has no pass@1 (``unknown``): it can only pass a quality floor of 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware_catalog import Catalog, ModelEntry
from planner.quality.decoding import Decoding
from planner.quality.results import RunSummary, read_runs
from planner.recommend.workload import row_name
from runtime.errors import UsageError, first_problem
from runtime.home import home
from runtime.verifiers.registry import SELF
from runtime.verifiers.spec import VerifierSpec

#: Runs over fewer problems are not treated as a measurement of the configuration.
MIN_MEASURED_N = 100

Provenance = Literal["measured", "published", "extrapolated", "unknown"]


class QualityEstimate(BaseModel):
    """One pass@1 and its provenance; ``detail`` says which run, source or rule, in a line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pass_at_1: float | None
    provenance: Provenance
    detail: str
    ci95: tuple[float, float] | None = Field(None, description="95% interval where known.")


@dataclass(frozen=True)
class Measured:
    model: str
    key: str  # VerifierSpec.plan_key
    decoding: str  # Decoding.label
    n: int
    passed: int
    pass_at_1: float
    ci95: tuple[float, float]
    run: dict[str, Any]


@dataclass(frozen=True)
class FixRate:
    """Share of a model's plain failures a verifier fixed there (net of answers it broke)."""

    model: str
    params_b: float
    f: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Calibration:
    """This harness's pass@1 over the published one, per family, from models with both."""

    ratios: dict[str, dict[str, float]]  # family -> model -> measured / published

    def factor(self, family: str) -> float | None:
        found = self.ratios.get(family.casefold())
        return statistics.mean(found.values()) if found else None

    def describe(self, family: str) -> str:
        found = self.ratios.get(family.casefold(), {})
        each = ", ".join(f"{m} {r:.2f}" for m, r in found.items())
        return f"x{self.factor(family):.2f} to this harness (mean of {each})"


def shipped_runs_file() -> Path:
    """The runs measured by this project (``benchmarks/results/humaneval.json``), shipped as
    package data so an installed copy plans with them."""
    return Path(str(resources.files("planner.quality") / "measured" / "humaneval.json"))


def runs_files(extra: Path | None = None) -> list[Path]:
    """Where a plan's measured pass@1 comes from, in order of precedence (later wins): the
    shipped runs, the home's runs list (``backplan eval humaneval`` records there), ``extra``."""
    files = [shipped_runs_file()]
    mine = home().runs_list
    if mine.is_file():
        files.append(mine)
    if extra is not None:
        files.append(extra)
    return files


def read_measured(paths: Path | list[Path] | None) -> list[Measured]:
    """The complete runs of runs lists (``backplan eval humaneval --summary``), each under
    its decoding's label, in the order given: a later file's run of the same configuration
    replaces an earlier one's."""
    if paths is None:
        return []
    out: list[Measured] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        out += _read_one(path)
    return out


def _read_one(path: Path) -> list[Measured]:
    out: list[Measured] = []
    for i, raw in enumerate(read_runs(path), 1):
        try:
            run = RunSummary.model_validate(raw)
        except ValidationError as exc:
            field, msg = first_problem(exc)
            raise UsageError(
                f"{path}: run {i}: field {field}: {msg}; fix or move the runs list"
            ) from None
        if run.n < MIN_MEASURED_N or raw.get("variant"):
            continue
        lo, hi = raw.get("ci95") or (run.pass_at_1, run.pass_at_1)
        out.append(
            Measured(
                model=run.model,
                key=VerifierSpec.parse(run.verifier).plan_key(run.model),
                decoding=Decoding.of_run(raw).label,
                n=run.n,
                passed=int(raw.get("passed", round(run.pass_at_1 * run.n))),
                pass_at_1=run.pass_at_1,
                ci95=(float(lo), float(hi)),
                run=raw,
            )
        )
    return out


def measured_rows(measured: list[Measured]) -> list[str]:
    """Every measured verifier and decoding, spelt as a workload's ``verifiers`` entry
    (``SPEC`` for greedy threshold, ``SPEC @LABEL`` otherwise), in first-seen order."""
    return list(dict.fromkeys(row_name(m.key, m.decoding) for m in measured))


class QualityBook:
    """Looks up or derives the pass@1 of (model, verifier, decoding) for a plan."""

    def __init__(self, catalog: Catalog, measured: list[Measured]) -> None:
        self.catalog = catalog
        self.measured: dict[tuple[str, str, str], Measured] = {}
        for m in measured:  # a later run of a configuration replaces an earlier one
            self.measured[(m.model, m.key, m.decoding)] = m
        self.calibration = self._calibrate()

    @classmethod
    def from_file(cls, catalog: Catalog, path: Path | None) -> QualityBook:
        return cls(catalog, read_measured(path))

    def plain_measured(self, model: str) -> Measured | None:
        return self.measured.get((model, "none", "plain"))

    def _calibrate(self) -> Calibration:
        ratios: dict[str, dict[str, float]] = {}
        for entry in self.catalog.models.values():
            got = self.plain_measured(entry.id)
            if got is not None and entry.humaneval_pass1_instruct:
                family = ratios.setdefault(entry.family.casefold(), {})
                family[entry.id] = got.pass_at_1 / entry.humaneval_pass1_instruct
        return Calibration(ratios)

    def fix_rates(self, key: str, decoding: str) -> list[FixRate]:
        """Where ``key`` was measured beside its model's plain (greedy) run."""
        out = []
        for (model, k, s), m in self.measured.items():
            plain = self.plain_measured(model)
            if k != key or s != decoding or plain is None or plain.pass_at_1 >= 1.0:
                continue
            room = 1.0 - plain.pass_at_1
            entry = self.catalog.models.get(model)
            out.append(
                FixRate(
                    model=model,
                    params_b=entry.params_b if entry else 0.0,
                    f=(m.pass_at_1 - plain.pass_at_1) / room,
                    lo=(m.ci95[0] - plain.pass_at_1) / room,
                    hi=(m.ci95[1] - plain.pass_at_1) / room,
                )
            )
        return sorted(out, key=lambda r: r.params_b)

    # -- estimates ------------------------------------------------------------------------
    def plain(self, model: ModelEntry) -> QualityEstimate:
        got = self.plain_measured(model.id)
        if got is not None:
            return _from_measured(got)
        published = model.humaneval_pass1_instruct
        if published is None:
            return QualityEstimate(
                pass_at_1=None,
                provenance="unknown",
                detail="no HumanEval pass@1 published or measured for this model",
            )
        source = _quality_source(model)
        factor = self.calibration.factor(model.family)
        if factor is None:
            return QualityEstimate(
                pass_at_1=published,
                provenance="published",
                detail=f"{source}: {published:.3f}, not calibrated (no {model.family} model "
                "measured in this harness)",
            )
        return QualityEstimate(
            pass_at_1=round(min(1.0, published * factor), 4),
            provenance="published",
            detail=f"{source}: {published:.3f}, {self.calibration.describe(model.family)}",
        )

    def estimate(self, model: ModelEntry, spec: VerifierSpec, decoding: str) -> QualityEstimate:
        if spec.is_none and decoding == "plain":
            return self.plain(model)
        key = spec.plan_key(model.id)
        got = self.measured.get((model.id, key, decoding))
        if got is not None:
            return _from_measured(got)
        if key == f"model:{SELF}" and (same := self.measured.get((model.id, "latent", decoding))):
            est = _from_measured(same)
            return est.model_copy(
                update={
                    "detail": est.detail + "; as the latent head: a copy of the main model "
                    "reads the same hidden states"
                }
            )
        if spec.learned:
            return QualityEstimate(
                pass_at_1=None,
                provenance="unknown",
                detail=f"{key} with {decoding} is not measured on {model.id}; a trained "
                "head's effect does not carry over to another model",
            )
        if Decoding.parse(decoding).sampled:
            return QualityEstimate(
                pass_at_1=None,
                provenance="unknown",
                detail=f"{key} with {decoding} is not measured on {model.id}; sampled "
                "decodings are not extrapolated (their plain baseline is greedy elsewhere)",
            )
        return self._extrapolate(model, key, decoding)

    def _extrapolate(self, model: ModelEntry, key: str, decoding: str) -> QualityEstimate:
        rates = self.fix_rates(key, decoding)
        base = self.plain(model)
        if not rates or base.pass_at_1 is None:
            why = (
                f"{key} with {decoding} is measured on no model beside its plain run"
                if not rates
                else "the plain model's pass@1 is unknown"
            )
            return QualityEstimate(pass_at_1=None, provenance="unknown", detail=why)
        f = statistics.mean(r.f for r in rates)
        lo, hi = min(r.lo for r in rates), max(r.hi for r in rates)
        p0 = base.pass_at_1
        room = 1.0 - p0

        def clip(x: float) -> float:
            return round(min(1.0, max(0.0, x)), 4)

        each = ", ".join(f"{r.model} {r.f:.0%}" for r in rates)
        return QualityEstimate(
            pass_at_1=clip(p0 + f * room),
            provenance="extrapolated",
            detail=f"fixes {f:.0%} of plain failures where measured ({each}; interval "
            f"{lo:.0%}-{hi:.0%}), applied to plain {p0:.3f} ({base.provenance})",
            ci95=(clip(p0 + lo * room), clip(p0 + hi * room)),
        )


def _from_measured(m: Measured) -> QualityEstimate:
    return QualityEstimate(
        pass_at_1=m.pass_at_1,
        provenance="measured",
        detail=f"this harness: {m.passed}/{m.n} HumanEval problems ({m.run.get('results_file')})",
        ci95=m.ci95,
    )


def _quality_source(model: ModelEntry) -> str:
    for src in model.sources:
        if src.what == "quality":
            return src.note.split(":")[0] if src.note else src.url
    return "published"
