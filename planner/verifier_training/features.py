"""Hidden states at the prefixes of rollouts: what a value head reads.

Each rollout (prompt + answer, as the main model's token ids) runs once through the model the
head will read: the main model for a latent head, the verifier model for a separate one (same
tokenizer). The hidden state after each answer token is the feature of the prefix ending there;
its label is whether the whole answer passed (outcome supervision: a value is the chance that
a continuation from the prefix ends correct). ``stride`` keeps every n-th prefix plus the last.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from planner.quality.dataset import load_humaneval
from planner.quality.harness import build_prompt
from planner.verifier_training.rollouts import Rollout
from runtime.errors import UsageError

if TYPE_CHECKING:
    from runtime.engine.llama import Model


@contextlib.contextmanager
def reader_models(main_ref: str, reader_ref: str) -> Iterator[tuple[Model, Model, str]]:
    """(main, reader, the reader file's sha256): the main model tokenises, the reader (the
    main model itself for a latent head) computes hidden states; one vocabulary for both."""
    from runtime.engine.llama import Model
    from runtime.models.fetch import file_sha256, model_path

    main_path = model_path(main_ref)
    reader_path = main_path if reader_ref == main_ref else model_path(reader_ref)
    main = Model(main_path)
    reader = main if reader_path == main_path else Model(reader_path)
    try:
        if reader.n_vocab != main.n_vocab:
            raise UsageError(
                f"{reader_ref} has another vocabulary than {main_ref} ({reader.n_vocab} vs "
                f"{main.n_vocab} tokens); a separate verifier must share the main tokenizer"
            )
        yield main, reader, file_sha256(reader_path)
    finally:
        if reader is not main:
            reader.close()
        main.close()


@dataclass(frozen=True)
class Features:
    x: np.ndarray  # (n, n_embd) float32
    y: np.ndarray  # (n,) 0/1
    task: np.ndarray  # (n,) task id of each row
    rollout: np.ndarray  # (n,) index of the rollout each row came from
    final: np.ndarray  # (n,) True for a rollout's last prefix
    tokens_processed: int
    cpu_s: float
    model_sha256: str


def rollout_features(
    main_ref: str,
    reader_ref: str,
    rollouts: Sequence[Rollout],
    *,
    stride: int = 4,
    n_ctx: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> Features:
    """Features of every rollout's prefixes, read by ``reader_ref`` (``main_ref`` tokenises)."""
    from runtime.engine.chat import chat_prompt_tokens
    from runtime.engine.llama import Context

    problems = {p.task_id: p for p in load_humaneval()}
    cpu0 = time.process_time()
    with reader_models(main_ref, reader_ref) as (main, reader, reader_sha):
        ctx = Context(reader, n_ctx=n_ctx, embeddings=True)
        xs: list[np.ndarray] = []
        ys: list[int] = []
        tasks: list[str] = []
        idx: list[int] = []
        final: list[bool] = []
        processed = 0
        for i, r in enumerate(rollouts):
            prompt = chat_prompt_tokens(
                main, [{"role": "user", "content": build_prompt(problems[r.task_id])}]
            )
            answer = r.tokens or main.tokenize(r.completion, add_special=False, parse_special=False)
            answer = answer[: max(0, n_ctx - len(prompt))]
            ctx.reset()
            ctx.decode(prompt)
            rows = [ctx.hidden().copy()]  # the prompt's own value (root)
            for start in range(0, len(answer), ctx.n_batch):
                chunk = answer[start : start + ctx.n_batch]
                ctx.decode(chunk, all_outputs=True)
                rows.extend(ctx.hidden_all(len(chunk)))
            processed += len(prompt) + len(answer)
            keep = sorted(set(range(0, len(rows), stride)) | {len(rows) - 1})
            for k in keep:
                xs.append(rows[k])
                ys.append(int(r.passed))
                tasks.append(r.task_id)
                idx.append(i)
                final.append(k == len(rows) - 1)
            if progress is not None:
                progress(i + 1, len(rollouts))
        ctx.close()
    return Features(
        x=np.asarray(xs, dtype=np.float32),
        y=np.asarray(ys, dtype=np.int8),
        task=np.asarray(tasks),
        rollout=np.asarray(idx),
        final=np.asarray(final),
        tokens_processed=processed,
        cpu_s=time.process_time() - cpu0,
        model_sha256=reader_sha,
    )
