"""Which measured counts a plan charges each (model, verifier, decoding), and why.

In order: the ``backplan eval`` run of that configuration on this model (HumanEval answers:
the real workload's regenerations and checks); else the ``--profile`` configuration with the
same verifier and strategy (the user's own measurement, on the short prompts of ``backplan
profile``); else the run on the nearest measured size; else an assumption that says it is one
(every token checked once, no rejections). What the chosen source lacks is taken from the next
that has it: the checks' CPU seconds (runs before this harness recorded them have none), a
latent head's host seconds per token (only a profile times them). Every
:class:`~planner.capacity.verifier.VerifierCost` names its sources, and the plan shows them.

A run's ``forward_per_emitted`` counts main and verifier model together; where a separate
verifier model was used, both read each generated token once, so it is split evenly.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from hardware_catalog import Catalog
from planner.capacity.verifier import VerifierCost, assumed_cost, cost_from_config
from planner.profiler.schema import Profile, ProfileError
from planner.quality.decoding import Decoding
from planner.recommend.quality import Measured
from runtime.verifiers.spec import VerifierSpec

log = logging.getLogger(__name__)


class CostBook:
    """Per (verifier key, decoding, model): the counts to charge, with their source."""

    def __init__(self, catalog: Catalog, profile: Profile | None, measured: list[Measured]) -> None:
        self.catalog = catalog
        self.profile = profile
        self.measured = measured
        self._cache: dict[tuple[str, str, str], VerifierCost] = {}

    def cost(self, spec: VerifierSpec, decoding: Decoding, model_id: str) -> VerifierCost:
        key = spec.plan_key(model_id)
        memo = (key, decoding.label, model_id)
        if memo not in self._cache:
            self._cache[memo] = self._find(spec, key, decoding, model_id)
        return self._cache[memo]

    def _find(
        self, spec: VerifierSpec, key: str, decoding: Decoding, model_id: str
    ) -> VerifierCost:
        runs = [m for m in self.measured if m.key == key and m.decoding == decoding.label]
        size = self._params(model_id)
        runs.sort(key=lambda m: (m.model != model_id, abs(self._params(m.model) - size)))
        mine = runs[0] if runs and runs[0].model == model_id else None
        profiled = self._from_profile(spec, key, decoding.strategy)
        if mine is not None:
            base = _from_run(mine, spec, key)  # this model on the real workload
        elif profiled is not None:
            base = profiled
        elif runs:
            base = _from_run(runs[0], spec, key)  # the nearest size measured
        else:
            return assumed_cost(key, spec.needs_second_model)
        if spec.runs_code and not base.code_cpu_s_per_token:
            donors = [_from_run(m, spec, key) for m in runs] + ([profiled] if profiled else [])
            donor = next((d for d in donors if d.code_cpu_s_per_token), None)
            if donor is not None:
                base = replace(
                    base,
                    code_cpu_s_per_token=donor.code_cpu_s_per_token,
                    code_wall_s_per_token=donor.code_wall_s_per_token,
                    source=f"{base.source}; checks' CPU from {donor.source}",
                )
        if spec.needs_hidden_states and not base.host_s_per_token and profiled is not None:
            base = replace(base, host_s_per_token=profiled.host_s_per_token)
        return base

    def _params(self, model_id: str) -> float:
        entry = self.catalog.models.get(model_id)
        return entry.params_b if entry is not None else 0.0

    def _from_profile(self, spec: VerifierSpec, key: str, strategy: str) -> VerifierCost | None:
        profile = self.profile
        if profile is None:
            return None
        want = spec.plan_key(heads=False)  # a head changes what it rejects, not what a pass costs
        for cfg in profile.configs:
            cfg_spec = VerifierSpec.parse(cfg.verifier)
            names = (profile.model.path, profile.model.name)  # the main model, by file or name
            if cfg.strategy != strategy or all(
                cfg_spec.plan_key(n, heads=False) != want for n in names
            ):
                continue
            try:
                return cost_from_config(profile, cfg, key, latent_host=spec.needs_hidden_states)
            except ProfileError as exc:  # emitted nothing: fall back to the next source
                log.info("profile configuration %s is not usable (%s)", cfg.name, exc)
        return None


def _from_run(run: Measured, spec: VerifierSpec, key: str) -> VerifierCost:
    fwd = float(run.run.get("forward_per_emitted") or 1.0)
    main, ver = fwd, 0.0
    if spec.needs_second_model:
        main = ver = fwd / 2.0
    return VerifierCost(
        spec=key,
        main_forward_per_emitted=main,
        verifier_forward_per_emitted=ver,
        code_cpu_s_per_token=float(run.run.get("code_cpu_s_per_emitted") or 0.0),
        code_wall_s_per_token=float(run.run.get("code_wall_s_per_emitted") or 0.0),
        source=f"backplan eval on {run.model} ({run.n} HumanEval answers, {run.decoding})",
    )
