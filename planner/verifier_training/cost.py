"""What training a head cost, against what pretraining the model cost."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from planner.verifier_training.rollouts import Rollout
from runtime.errors import BackplanError

log = logging.getLogger(__name__)


def generation_cost(rollouts: Sequence[Rollout]) -> tuple[int, float, float]:
    """(tokens generated, measured CPU seconds, wall seconds of imported answers)."""
    tokens = sum(r.generated_tokens for r in rollouts)
    cpu_s = sum(r.cpu_s for r in rollouts if r.cpu_s is not None)
    wall_s = sum(r.wall_s for r in rollouts if r.cpu_s is None and r.wall_s is not None)
    return tokens, cpu_s, wall_s


def pretraining_tokens(model: str) -> float | None:
    """The model's published pretraining tokens, from the catalogue (None when unknown)."""
    from hardware_catalog.loader import find_model, load_catalog

    try:
        entry = find_model(load_catalog(), model)
    except BackplanError:
        log.info("%s is not in the catalogue: no pretraining token count", model)
        return None
    return entry.pretraining_tokens_t * 1e12 if entry.pretraining_tokens_t else None
