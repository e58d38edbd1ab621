"""Log-probabilities of committed tokens under the model's own distribution (as OpenAI's
``logprobs``): the chosen token's and the ``k`` most likely alternatives at its position."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict


class TokenLogprob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: int
    logprob: float
    top: list[tuple[int, float]]  # (token, logprob), most likely first


def token_logprob(logits: np.ndarray, token: int, k: int) -> TokenLogprob:
    z = logits.astype(np.float64)
    z = z - z.max()
    log_norm = float(np.log(np.exp(z).sum()))
    top: list[tuple[int, float]] = []
    if k > 0:
        idx = np.argpartition(z, -k)[-k:]
        idx = idx[np.argsort(-z[idx], kind="stable")]
        top = [(int(i), float(z[i] - log_norm)) for i in idx]
    return TokenLogprob(token=token, logprob=float(z[token] - log_norm), top=top)
