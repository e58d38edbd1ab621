"""What a verifier costs on other hardware, from the profile's hardware-independent counts.

The profile measures, per configuration, forward-token evaluations per emitted token of the
main model (``f_main`` >= 1: regenerated tokens count) and of a verifier model (``f_ver``), and
the verifier's batch (``block``). Those counts do not depend on the machine; the time of each
evaluation does, and comes from the roofline:

    t_token = f_main x t_pass(main, batch=c) + f_ver x t_pass(verifier, batch=c x block) / block
              + c x host_s   (a latent head's per-token host work, measured by the profile)

for ``c`` concurrent sequences. On a GPU a block of 16 costs about one pass, so a separate
verifier adds far less than on a 2-core CPU, where it is compute-bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner.capacity.efficiency import Efficiency
from planner.capacity.roofline import Device, ModelShape, pass_seconds
from planner.profiler.schema import Profile, ProfileError

VerifierKind = Literal["none", "latent", "separate"]


@dataclass(frozen=True)
class VerifierCost:
    """Hardware-independent counts of one configuration."""

    kind: VerifierKind
    main_forward_per_emitted: float = 1.0
    verifier_forward_per_emitted: float = 0.0
    block: int = 16
    host_s_per_token: float = 0.0
    source: str = "assumed: threshold strategy, no rejections"


#: Used when no profile is given: the cost of checking every token once, no rejections.
DEFAULT_COSTS: dict[VerifierKind, VerifierCost] = {
    "none": VerifierCost("none"),
    "latent": VerifierCost("latent"),
    "separate": VerifierCost("separate", verifier_forward_per_emitted=1.0),
}


def cost_from_profile(
    profile: Profile, kind: VerifierKind, strategy: str = "threshold"
) -> VerifierCost:
    """The counts of ``kind``-``strategy`` in a profile (``none`` reads plain)."""
    name = "plain" if kind == "none" else f"{kind}-{strategy}"
    cfg = profile.config(name)
    if not cfg.compute.main_forward_per_emitted > 0 or not cfg.decode.tok_s.median > 0:
        raise ProfileError(
            f"profile {profile.model.name}: configuration {name} emitted no tokens, so it "
            "has no cost per token; profile again with more --max-tokens"
        )
    host_s = 0.0
    if kind == "latent":
        # the head and the hidden-state copy run on the host, per token, whatever the device:
        # carry over the measured extra seconds per token
        plain = profile.config("plain")
        if not plain.decode.tok_s.median > 0:
            raise ProfileError(
                f"profile {profile.model.name}: plain decoding emitted no tokens; profile again"
            )
        host_s = max(0.0, 1.0 / cfg.decode.tok_s.median - 1.0 / plain.decode.tok_s.median)
    return VerifierCost(
        kind=kind,
        main_forward_per_emitted=cfg.compute.main_forward_per_emitted,
        verifier_forward_per_emitted=cfg.compute.verifier_forward_per_emitted,
        host_s_per_token=host_s,
        source=f"profile {profile.model.name} ({name})",
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
    if cost.kind == "separate" and verifier is not None and cost.verifier_forward_per_emitted:
        block = max(1, cost.block)
        t += (
            cost.verifier_forward_per_emitted
            * pass_seconds(dev, verifier, eff, batch=c * block, context=context)
            / block
        )
    return t
