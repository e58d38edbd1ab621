"""Choosing the next token from logits: greedy or temperature / top-k / top-p, with bans."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class SamplingParams(BaseModel):
    """How the base model's next token is drawn. ``temperature`` 0 means greedy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0 = greedy (argmax).")
    top_k: int = Field(40, ge=0, description="Keep the k most likely tokens (0 = all).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus mass to keep.")
    ignore_eos: bool = Field(False, description="Never end early (benchmarks: fixed length).")


class TokenChooser:
    """Draws tokens with a seeded generator; the same seed gives the same choices."""

    def __init__(self, params: SamplingParams, rng: np.random.Generator) -> None:
        self.params = params
        self.rng = rng

    def choose(self, logits: np.ndarray, banned: Collection[int] | None = None) -> int:
        p = self.params
        if p.temperature == 0.0:
            if not banned:
                return int(np.argmax(logits))
            k = min(len(banned) + 1, logits.shape[0])
            idx = np.argpartition(logits, -k)[-k:]
            for tok in idx[np.argsort(-logits[idx], kind="stable")]:
                if int(tok) not in banned:
                    return int(tok)
            return int(idx[0])  # pragma: no cover - every candidate banned
        n = logits.shape[0]
        k = p.top_k if 0 < p.top_k < n else n
        k_extra = min(n, k + (len(banned) if banned else 0))
        idx = np.argpartition(logits, -k_extra)[-k_extra:] if k_extra < n else np.arange(n)
        if banned:
            idx = np.array([i for i in idx if int(i) not in banned], dtype=np.int64)
        cand = logits[idx].astype(np.float64)
        order = np.argsort(-cand, kind="stable")[:k]
        idx, cand = idx[order], cand[order]
        z = (cand - cand[0]) / p.temperature
        probs = np.exp(z)
        probs /= probs.sum()
        if p.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), p.top_p) + 1)
            idx, probs = idx[:keep], probs[:keep] / probs[:keep].sum()
        return int(idx[self.rng.choice(len(idx), p=probs)])
