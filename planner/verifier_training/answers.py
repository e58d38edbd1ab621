"""Whole-answer features of rollouts, and the model's own confidence as baselines.

One pass per rollout (prompt + answer) through the model a head will read gives, for the
answer as a whole: the hidden state at its last token, the mean hidden state over its tokens
(after the final norm, and optionally the residual stream after chosen intermediate
``layers``, read by llama.cpp's eval callback), and (from the main model's logits in the same
pass, or in a second pass when another model reads) the log-probability of each answer token.
Those make the baselines a head must beat: the answer's length, its mean and its minimum token
log-probability, and their combination.

Features are cached in an ``.npz`` (``allow_pickle=False``), one row per rollout keyed by its
problem, sample and answer text, for one reader model file: a run computes only the rollouts
the cache lacks and saves after every chunk, so a long pass resumes where it stopped and a
growing rollouts file costs only its new lines; choosing a head or a rule then takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.quality.dataset import load_humaneval
from planner.quality.harness import build_prompt
from planner.verifier_training.features import reader_models
from planner.verifier_training.fit import task_number
from planner.verifier_training.rollouts import Rollout
from runtime.atomic import atomic_write
from runtime.errors import UsageError
from runtime.samplers.logprobs import token_logprob

if TYPE_CHECKING:
    from runtime.engine.llama import Context

#: The per-rollout arrays of :class:`AnswerFeatures` (one row each), in field order.
ROW_FIELDS = ("last", "mean", "length", "mean_logprob", "min_logprob", "y", "task", "sample", "key")

#: Per-rollout arrays of the tapped intermediate layers, (n, n_layers_tapped, n_embd) each.
LAYER_FIELDS = ("layer_last", "layer_mean")

#: The per-answer feature sets a head can read (``last+mean`` concatenates the two). Each
#: reads the final hidden state, or with ``@L`` the residual stream after layer L (0-based),
#: which the features must have tapped (e.g. ``last+mean@16``).
FEATURE_SETS = ("last", "mean", "last+mean")


def parse_feature_set(name: str) -> tuple[str, int | None]:
    """``"last+mean@16"`` -> ``("last+mean", 16)``; ``"mean"`` -> ``("mean", None)``."""
    base, at, layer = name.partition("@")
    if base not in FEATURE_SETS or (at and not layer.isdigit()):
        raise UsageError(
            f"unknown feature set {name!r}; use one of {', '.join(FEATURE_SETS)}, "
            "optionally with @LAYER (e.g. last+mean@16)"
        )
    return base, int(layer) if at else None


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
    key: np.ndarray  # (n,) rollout_key of each row
    tokens_processed: int
    cpu_s: float
    model_sha256: str
    layers: tuple[int, ...] = ()  # the intermediate layers tapped (0-based), in order
    layer_last: np.ndarray | None = None  # (n, len(layers), n_embd) after each tapped layer
    layer_mean: np.ndarray | None = None  # (n, len(layers), n_embd) its mean over the answer

    def matrix(self, features: str) -> np.ndarray:
        base, layer = parse_feature_set(features)
        last, mean = self.last, self.mean
        if layer is not None:
            if layer not in self.layers or self.layer_last is None or self.layer_mean is None:
                raise UsageError(
                    f"feature set {features!r} needs layer {layer}, which these features did "
                    f"not tap (tapped: {list(self.layers) or 'none'}); add it to --layers"
                )
            j = self.layers.index(layer)
            last, mean = self.layer_last[:, j], self.layer_mean[:, j]
        if base == "last":
            return last
        if base == "mean":
            return mean
        return np.concatenate([last, mean], axis=1)

    def _row_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in ROW_FIELDS}
        if self.layers:
            arrays |= {name: getattr(self, name) for name in LAYER_FIELDS}
        return arrays

    def _with_rows(
        self, arrays: dict[str, np.ndarray], tokens: int, cpu_s: float
    ) -> AnswerFeatures:
        return AnswerFeatures(
            **arrays,  # type: ignore[arg-type]
            tokens_processed=tokens,
            cpu_s=cpu_s,
            model_sha256=self.model_sha256,
            layers=self.layers,
        )

    def baselines(self) -> dict[str, np.ndarray]:
        """Scalar per-answer signals a head must beat (higher: more likely right, up to sign)."""
        return {
            "length": self.length.astype(np.float64),
            "mean_logprob": self.mean_logprob.astype(np.float64),
            "min_logprob": self.min_logprob.astype(np.float64),
        }

    def save(self, path: Path) -> Path:
        arrays = {
            **self._row_arrays(),
            "meta": np.array(
                json.dumps(
                    {
                        "tokens_processed": self.tokens_processed,
                        "cpu_s": self.cpu_s,
                        "model_sha256": self.model_sha256,
                        "layers": list(self.layers),
                    }
                )
            ),
        }
        with atomic_write(path, binary=True) as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: Path) -> AnswerFeatures:
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
            meta = json.loads(str(raw.pop("meta")))
            meta["layers"] = tuple(meta.get("layers", ()))
            return cls(**raw, **meta)  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            raise UsageError(
                f"{path} is not a backplan answer-features file; pass another --cache "
                "(or delete it to recompute)"
            ) from None

    def concat(self, other: AnswerFeatures) -> AnswerFeatures:
        if other.model_sha256 != self.model_sha256:
            raise UsageError("features of two reader models cannot be joined")
        if other.layers != self.layers:
            raise UsageError("features that tapped different layers cannot be joined")
        mine, theirs = self._row_arrays(), other._row_arrays()
        arrays = {name: np.concatenate([mine[name], theirs[name]]) for name in mine}
        return self._with_rows(
            arrays,
            self.tokens_processed + other.tokens_processed,
            round(self.cpu_s + other.cpu_s, 2),
        )

    def select(self, keys: Sequence[str]) -> AnswerFeatures:
        """The rows of ``keys``, in that order (the cost stays the whole pass's)."""
        where = {k: i for i, k in enumerate(self.key.tolist())}
        idx = np.asarray([where[k] for k in keys], dtype=np.int64)
        arrays = {name: a[idx] for name, a in self._row_arrays().items()}
        return self._with_rows(arrays, self.tokens_processed, self.cpu_s)


def _offset(
    progress: Callable[[int, int], None] | None, base: int, total: int
) -> Callable[[int, int], None] | None:
    """A chunk's progress as the whole pass's."""
    if progress is None:
        return None
    report = progress
    return lambda i, _n: report(base + i, total)


def rollout_key(r: Rollout) -> str:
    """What identifies a rollout's features: its problem, sample and answer text."""
    digest = hashlib.sha256(r.completion.encode()).hexdigest()[:16]
    return f"{r.task_id}|{r.sample}|{digest}"


def cached_answer_features(
    main_ref: str,
    reader_ref: str,
    rollouts: Sequence[Rollout],
    cache: Path | None,
    *,
    layers: Sequence[int] = (),
    chunk: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerFeatures:
    """Every rollout's features, computing only those ``cache`` lacks, saving after each
    chunk of ``chunk`` rollouts (an interrupted pass resumes there); ``layers`` also taps
    those intermediate layers (a cache that tapped others is refused)."""
    layers = tuple(sorted(set(layers)))
    from runtime.models.fetch import file_sha256, model_path

    sha = file_sha256(model_path(reader_ref))
    have: AnswerFeatures | None = None
    if cache is not None and cache.is_file():
        have = AnswerFeatures.load(cache)
        if have.model_sha256 != sha:
            raise UsageError(
                f"{cache} holds features read by another model file; pass another --cache"
            )
        if have.layers != layers:
            raise UsageError(
                f"{cache} holds features of layers {list(have.layers) or 'none'}, not "
                f"{list(layers) or 'none'}; pass another --cache (or the same --layers)"
            )
    known = set(have.key.tolist()) if have is not None else set()
    # a problem's answers side by side, so each chunk decodes a prompt once for all of them
    missing = sorted(
        (r for r in rollouts if rollout_key(r) not in known), key=lambda r: task_number(r.task_id)
    )
    done = len(rollouts) - len(missing)
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        base = done + start
        new = answer_features(
            main_ref,
            reader_ref,
            part,
            layers=layers,
            progress=_offset(progress, base, len(rollouts)),
        )
        have = new if have is None else have.concat(new)
        if cache is not None:
            have.save(cache)
    if have is None:
        raise UsageError("no rollouts to read")
    if progress is not None:
        progress(len(rollouts), len(rollouts))
    return have.select([rollout_key(r) for r in rollouts])


def answer_features(
    main_ref: str,
    reader_ref: str,
    rollouts: Sequence[Rollout],
    *,
    layers: Sequence[int] = (),
    n_ctx: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerFeatures:
    """Per-answer hidden-state features read by ``reader_ref`` (and after each of its
    ``layers``), and ``main_ref``'s token log-probabilities of each answer (``main_ref``
    tokenises)."""
    from runtime.engine.chat import chat_prompt_tokens
    from runtime.engine.llama import Context

    problems = {p.task_id: p for p in load_humaneval()}
    cpu0 = time.process_time()
    with reader_models(main_ref, reader_ref) as (main, reader, reader_sha):
        layers = tuple(sorted(set(layers)))
        ctx = Context(reader, n_ctx=n_ctx, embeddings=True, layers=layers or None)
        main_ctx = ctx if reader is main else Context(main, n_ctx=n_ctx)
        read, read_main = AnswerReader(ctx), AnswerReader(main_ctx)
        last, mean, length, mean_lp, min_lp = [], [], [], [], []
        layer_last: list[np.ndarray] = []
        layer_mean: list[np.ndarray] = []
        chunks: list[np.ndarray] = []  # an answer's tapped rows per chunk: (layers, rows, n_embd)
        tap = ctx.tap

        def copy_taps() -> None:
            if tap is not None:
                chunks.append(np.stack([tap.rows(i) for i in layers]))  # a copy

        for i, r in enumerate(rollouts):
            prompt = chat_prompt_tokens(
                main, [{"role": "user", "content": build_prompt(problems[r.task_id])}]
            )
            answer = r.tokens or main.tokenize(r.completion, add_special=False, parse_special=False)
            answer = answer[: max(1, n_ctx - len(prompt) - 1)]
            if not answer:  # an empty answer: its features are the prompt's end
                answer = main.tokenize("\n", add_special=False, parse_special=False)
            chunks.clear()
            hidden, logprobs = read.read(
                prompt,
                answer,
                with_logprobs=reader is main,
                after_chunk=copy_taps if layers else None,
            )
            if layers:
                rows = np.concatenate(chunks, axis=1)
                layer_last.append(rows[:, -1])
                layer_mean.append(rows.mean(axis=1))
            if reader is not main:
                _, logprobs = read_main.read(prompt, answer, with_logprobs=True)
            last.append(hidden[-1])
            mean.append(hidden.mean(axis=0))
            length.append(len(answer))
            mean_lp.append(float(np.mean(logprobs)))
            min_lp.append(float(np.min(logprobs)))
            if progress is not None:
                progress(i + 1, len(rollouts))
        # every position evaluated, a shared prompt once
        processed = ctx.forward_tokens
        if main_ctx is not ctx:
            processed += main_ctx.forward_tokens
            main_ctx.close()
        ctx.close()
    return AnswerFeatures(
        last=np.asarray(last, dtype=np.float32),
        mean=np.asarray(mean, dtype=np.float32),
        length=np.asarray(length, dtype=np.int32),
        mean_logprob=np.asarray(mean_lp, dtype=np.float32),
        min_logprob=np.asarray(min_lp, dtype=np.float32),
        y=np.asarray([int(r.passed) for r in rollouts], dtype=np.int8),
        task=np.asarray([r.task_id for r in rollouts]),
        sample=np.asarray([r.sample for r in rollouts]),
        key=np.asarray([rollout_key(r) for r in rollouts]),
        tokens_processed=processed,
        cpu_s=round(time.process_time() - cpu0, 2),
        model_sha256=reader_sha,
        layers=layers,
        layer_last=np.asarray(layer_last, dtype=np.float32) if layers else None,
        layer_mean=np.asarray(layer_mean, dtype=np.float32) if layers else None,
    )


class AnswerReader:
    """Reads answers after their prompts on one context. Consecutive answers to the same prompt
    share its KV cache: the prompt is decoded once and the cache rolled back to its end before
    each next answer (a problem's rollouts cost their answers' tokens, not the prompt again)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._prompt: list[int] | None = None
        self._prompt_logits: np.ndarray | None = None  # the prompt's last position's logits

    def read(
        self,
        prompt: list[int],
        answer: list[int],
        *,
        with_logprobs: bool,
        after_chunk: Callable[[], None] | None = None,
    ) -> tuple[np.ndarray, list[float]]:
        """Hidden states after each answer token (if the context has embeddings) and the
        log-probability of each answer token given what precedes it. ``after_chunk`` runs after
        each batch of answer tokens is decoded (e.g. to copy a layer tap's rows)."""
        ctx = self.ctx
        if self._prompt == prompt and self._prompt_logits is not None:
            ctx.truncate(len(prompt))
        else:
            ctx.reset()
            ctx.decode(prompt)
            self._prompt = list(prompt)
            self._prompt_logits = ctx.logits().copy()
        logprobs = (
            [token_logprob(self._prompt_logits, answer[0], 0).logprob] if with_logprobs else []
        )
        rows: list[np.ndarray] = []
        for start in range(0, len(answer), ctx.n_batch):
            chunk = answer[start : start + ctx.n_batch]
            ctx.decode(chunk, all_outputs=True)
            if ctx.embeddings:
                rows.extend(ctx.hidden_all(len(chunk)))
            if after_chunk is not None:
                after_chunk()
            if with_logprobs:
                nxt = answer[start + 1 : start + 1 + len(chunk)]
                logprobs.extend(
                    token_logprob(ctx.logits(j), t, 0).logprob for j, t in enumerate(nxt)
                )
        hidden = np.asarray(rows, dtype=np.float32) if rows else np.zeros((1, 1), np.float32)
        return hidden, logprobs


def read_answer(
    ctx: Context,
    prompt: list[int],
    answer: list[int],
    *,
    with_logprobs: bool,
    after_chunk: Callable[[], None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """One answer read from a fresh cache (see :class:`AnswerReader` to share prompts)."""
    return AnswerReader(ctx).read(
        prompt, answer, with_logprobs=with_logprobs, after_chunk=after_chunk
    )
