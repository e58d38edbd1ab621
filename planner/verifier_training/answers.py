"""Whole-answer features of rollouts, and the model's own confidence as baselines.

One pass per rollout (prompt + answer) through the model a head will read gives, for the
answer as a whole: the hidden state at its last token, the mean hidden state over its tokens,
and (from the main model's logits in the same pass, or in a second pass when another model
reads) the log-probability of each answer token. Those make the baselines a head must beat:
the answer's length, its mean and its minimum token log-probability, and their combination.

Features are cached in an ``.npz`` beside the heads (``allow_pickle=False``), keyed by the
rollouts file's sha256 and the reader model's, so choosing a head or a decision rule costs
seconds after the first pass.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.quality.dataset import load_humaneval
from planner.quality.harness import build_prompt
from planner.verifier_training.rollouts import Rollout
from runtime.atomic import atomic_write
from runtime.errors import UsageError

#: The per-answer feature sets a head can read (``last+mean`` concatenates the two).
FEATURE_SETS = ("last", "mean", "last+mean")


@dataclass(frozen=True)
class AnswerFeatures:
    """One row per rollout."""

    last: np.ndarray  # (n, n_embd) hidden state at the answer's last token
    mean: np.ndarray  # (n, n_embd) mean hidden state over the answer's tokens
    length: np.ndarray  # (n,) answer tokens
    mean_logprob: np.ndarray  # (n,) the main model's mean log-probability of its tokens
    min_logprob: np.ndarray  # (n,) and the lowest one
    y: np.ndarray  # (n,) 1 if the answer passed its tests
    task: np.ndarray  # (n,) problem of each row
    sample: np.ndarray  # (n,) "s0".. or "eval:<file>"
    tokens_processed: int
    cpu_s: float
    model_sha256: str
    data_sha256: str

    def matrix(self, features: str) -> np.ndarray:
        if features == "last":
            return self.last
        if features == "mean":
            return self.mean
        if features == "last+mean":
            return np.concatenate([self.last, self.mean], axis=1)
        raise UsageError(f"unknown feature set {features!r}; use one of {', '.join(FEATURE_SETS)}")

    def baselines(self) -> dict[str, np.ndarray]:
        """Scalar per-answer signals a head must beat (higher: more likely right, up to sign)."""
        return {
            "length": self.length.astype(np.float64),
            "mean_logprob": self.mean_logprob.astype(np.float64),
            "min_logprob": self.min_logprob.astype(np.float64),
        }

    def save(self, path: Path) -> Path:
        arrays = {
            "last": self.last,
            "mean": self.mean,
            "length": self.length,
            "mean_logprob": self.mean_logprob,
            "min_logprob": self.min_logprob,
            "y": self.y,
            "task": self.task.astype(str),
            "sample": self.sample.astype(str),
            "meta": np.array(
                json.dumps(
                    {
                        "tokens_processed": self.tokens_processed,
                        "cpu_s": self.cpu_s,
                        "model_sha256": self.model_sha256,
                        "data_sha256": self.data_sha256,
                    }
                )
            ),
        }
        with atomic_write(path, binary=True) as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: Path) -> AnswerFeatures:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
        meta = json.loads(str(raw.pop("meta")))
        return cls(**raw, **meta)  # type: ignore[arg-type]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    top = float(logits.max())
    return float(logits[token] - top - np.log(np.exp(logits - top).sum()))


def answer_features(
    main_ref: str,
    reader_ref: str,
    rollouts: Sequence[Rollout],
    *,
    data_sha256: str,
    n_ctx: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerFeatures:
    """Per-answer hidden-state features read by ``reader_ref``, and ``main_ref``'s token
    log-probabilities of each answer (``main_ref`` tokenises)."""
    from runtime.engine.chat import chat_prompt_tokens
    from runtime.engine.llama import Context, Model
    from runtime.models.fetch import file_sha256 as model_sha256
    from runtime.models.fetch import model_path

    problems = {p.task_id: p for p in load_humaneval()}
    main_path = model_path(main_ref)
    reader_path = main_path if reader_ref == main_ref else model_path(reader_ref)
    cpu0 = time.process_time()
    main = Model(main_path)
    reader = main if reader_path == main_path else Model(reader_path)
    try:
        if reader.n_vocab != main.n_vocab:
            raise UsageError(
                f"{reader_ref} has another vocabulary than {main_ref} ({reader.n_vocab} vs "
                f"{main.n_vocab} tokens); a separate verifier must share the main tokenizer"
            )
        ctx = Context(reader, n_ctx=n_ctx, embeddings=True)
        main_ctx = ctx if reader is main else Context(main, n_ctx=n_ctx)
        last, mean, length, mean_lp, min_lp = [], [], [], [], []
        processed = 0
        for i, r in enumerate(rollouts):
            prompt = chat_prompt_tokens(
                main, [{"role": "user", "content": build_prompt(problems[r.task_id])}]
            )
            answer = r.tokens or main.tokenize(r.completion, add_special=False, parse_special=False)
            answer = answer[: max(1, n_ctx - len(prompt) - 1)]
            if not answer:  # an empty answer: its features are the prompt's end
                answer = main.tokenize("\n", add_special=False, parse_special=False)
            hidden, logprobs = _read(ctx, prompt, answer, with_logprobs=reader is main)
            if reader is not main:
                _, logprobs = _read(main_ctx, prompt, answer, with_logprobs=True)
                processed += len(prompt) + len(answer)
            processed += len(prompt) + len(answer)
            last.append(hidden[-1])
            mean.append(hidden.mean(axis=0))
            length.append(len(answer))
            mean_lp.append(float(np.mean(logprobs)))
            min_lp.append(float(np.min(logprobs)))
            if progress is not None:
                progress(i + 1, len(rollouts))
        if main_ctx is not ctx:
            main_ctx.close()
        ctx.close()
    finally:
        if reader is not main:
            reader.close()
        main.close()
    return AnswerFeatures(
        last=np.asarray(last, dtype=np.float32),
        mean=np.asarray(mean, dtype=np.float32),
        length=np.asarray(length, dtype=np.int32),
        mean_logprob=np.asarray(mean_lp, dtype=np.float32),
        min_logprob=np.asarray(min_lp, dtype=np.float32),
        y=np.asarray([int(r.passed) for r in rollouts], dtype=np.int8),
        task=np.asarray([r.task_id for r in rollouts]),
        sample=np.asarray([r.sample for r in rollouts]),
        tokens_processed=processed,
        cpu_s=round(time.process_time() - cpu0, 2),
        model_sha256=model_sha256(reader_path),
        data_sha256=data_sha256,
    )


def _read(
    ctx: object, prompt: list[int], answer: list[int], *, with_logprobs: bool
) -> tuple[np.ndarray, list[float]]:
    """Hidden states after each answer token (if the context has embeddings) and the
    log-probability of each answer token given what precedes it."""
    from runtime.engine.llama import Context

    assert isinstance(ctx, Context)
    ctx.reset()
    ctx.decode(prompt)
    logprobs = [_log_softmax_at(ctx.logits(), answer[0])] if with_logprobs else []
    rows: list[np.ndarray] = []
    for start in range(0, len(answer), ctx.n_batch):
        chunk = answer[start : start + ctx.n_batch]
        ctx.decode(chunk, all_outputs=True)
        if ctx.embeddings:
            rows.extend(ctx.hidden_all(len(chunk)))
        if with_logprobs:
            nxt = answer[start + 1 : start + 1 + len(chunk)]
            logprobs.extend(_log_softmax_at(ctx.logits(j), t) for j, t in enumerate(nxt))
    hidden = np.asarray(rows, dtype=np.float32) if rows else np.zeros((1, 1), np.float32)
    return hidden, logprobs
