"""What a verifier costs on other hardware, from hardware-independent counts.

A configuration (a verifier spec with a strategy) is measured, by ``backplan profile`` or by
``backplan eval``, as counts per emitted token: forward-token evaluations of the main model
(``f_main`` >= 1: regenerated tokens count) and of a verifier model (``f_ver``), the verifier's
batch (``block``), a latent head's host seconds, and the CPU and wall seconds of sandboxed
checks of generated code (``examples``, ``tests``). Those counts do not depend on the machine;
the time of each evaluation does, and comes from the roofline:

    t_token = f_main x t_pass(main, batch=c) + f_ver x t_pass(verifier, batch=c x block) / block
              + c x host_s + code_wall_s

for ``c`` concurrent sequences. On a GPU a block of 16 costs about one pass, so a separate
verifier adds far less than on a 2-core CPU, where it is compute-bound. A check blocks only
its own sequence (its slot waits while the others decode), and its CPU seconds are the host's
CPU, not the accelerator's: :func:`check_cpu_ceiling_tok_s` is the throughput the host's cores
allow. Check seconds are carried over from the CPU they were measured on (a server core is
usually at least as fast, so this errs on the slow side).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.capacity.efficiency import Efficiency
from planner.capacity.roofline import Device, ModelShape, pass_seconds
from planner.profiler.schema import ConfigProfile, Profile, ProfileError

#: Share of a host's cores a plan gives to sandboxed checks; the rest feed the accelerators,
#: tokenise and serve HTTP.
CHECK_CORE_SHARE = 0.5


@dataclass(frozen=True)
class VerifierCost:
    """Hardware-independent counts of one configuration, per emitted token."""

    spec: str
    main_forward_per_emitted: float = 1.0
    verifier_forward_per_emitted: float = 0.0
    block: int = 16
    host_s_per_token: float = 0.0
    code_cpu_s_per_token: float = 0.0
    code_wall_s_per_token: float = 0.0
    source: str = "assumed: threshold strategy, no rejections"


def assumed_cost(spec_key: str, needs_second_model: bool) -> VerifierCost:
    """No measurement: every token checked once, no rejections (a floor, said so)."""
    if spec_key == "none":
        return VerifierCost("none", source="plain decoding: one forward pass per token")
    return VerifierCost(
        spec_key,
        verifier_forward_per_emitted=1.0 if needs_second_model else 0.0,
        source="assumed: threshold strategy, no rejections (not measured)",
    )


def cost_from_config(
    profile: Profile, cfg: ConfigProfile, spec_key: str, *, latent_host: bool
) -> VerifierCost:
    """The counts of one profile configuration."""
    if not cfg.compute.main_forward_per_emitted > 0 or not cfg.decode.tok_s.median > 0:
        raise ProfileError(
            f"profile {profile.model.name}: configuration {cfg.name} emitted no tokens, so it "
            "has no cost per token; profile again with more --max-tokens"
        )
    host_s = 0.0
    if latent_host:
        # the head and the hidden-state copy run on the host, per token, whatever the device:
        # carry over the measured extra seconds per token
        plain = profile.config("plain")
        if not plain.decode.tok_s.median > 0:
            raise ProfileError(
                f"profile {profile.model.name}: plain decoding emitted no tokens; profile again"
            )
        host_s = max(0.0, 1.0 / cfg.decode.tok_s.median - 1.0 / plain.decode.tok_s.median)
    return VerifierCost(
        spec=spec_key,
        main_forward_per_emitted=cfg.compute.main_forward_per_emitted,
        verifier_forward_per_emitted=cfg.compute.verifier_forward_per_emitted,
        host_s_per_token=host_s,
        code_cpu_s_per_token=cfg.compute.code_cpu_s_per_emitted,
        code_wall_s_per_token=cfg.compute.code_wall_s_per_emitted,
        source=f"profile {profile.model.name} ({cfg.name})",
    )


def step_seconds(
    dev: Device,
    main: ModelShape,
    verifier: ModelShape | None,
    eff: Efficiency,
    cost: VerifierCost,
    *,
    concurrency: int = 1,
    context: int = 0,
) -> float:
    """Seconds per emitted token of each of ``concurrency`` sequences decoded together."""
    c = max(1, concurrency)
    t = cost.main_forward_per_emitted * pass_seconds(dev, main, eff, batch=c, context=context)
    t += c * cost.host_s_per_token
    t += cost.code_wall_s_per_token
    if verifier is not None and cost.verifier_forward_per_emitted:
        block = max(1, cost.block)
        t += (
            cost.verifier_forward_per_emitted
            * pass_seconds(dev, verifier, eff, batch=c * block, context=context)
            / block
        )
    return t


def check_cpu_ceiling_tok_s(cost: VerifierCost, host_cores: int) -> float | None:
    """Emitted tokens/s the host's cores allow for the sandboxed checks (None: no checks)."""
    if cost.code_cpu_s_per_token <= 0:
        return None
    return host_cores * CHECK_CORE_SHARE / cost.code_cpu_s_per_token
