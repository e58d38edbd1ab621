"""This CPU's llama.cpp decode speed for a model's shape, timed on random-weight clones.

On a CPU with few cores, batch-1 decoding is not bound by memory bandwidth alone: each
weight byte also costs dequantisation and dot-product work, at a rate that depends on the
tensor types llama.cpp picked for the model (a k-quant file falls back to Q5_0/Q8_0 where a
row is not a multiple of 256, as in Qwen2.5-0.5B's 896), on the core count, and on how much
of the weights a large last-level cache keeps (480 MB of shared L3 on the machine this was
built on); each layer adds thread barriers. A numpy bandwidth figure sees none of that, and
neither do small synthetic models: their weights sit in cache. So the probe asks llama.cpp
itself, on the model's own shape: it writes random-weight llama-architecture clones of the
shape in the model's header (widths, heads, vocabulary, a separate output matrix when the
model has one) at half and at full depth (gguf), has llama.cpp quantise them to the model's
file type (so the same per-tensor type rules apply), and times batch-1 decoding through
backplan's engine on the same threads. Per-token time against depth,

    t(L) = fixed_s + L x layer_s,

splits into the output layer and per-token work (``fixed_s``) and each layer's (``layer_s``).
Only the model's header and vocabulary are read, never its weights.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeShape:
    """A llama-style decoder's shape: widths, heads, depth, and whether its output is untied."""

    hidden: int
    ffn: int
    n_head: int
    n_head_kv: int
    layers: int
    untied_output: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.n_head


@dataclass(frozen=True)
class ProbePoint:
    layers: int
    file_bytes: int
    s_per_token: float


@dataclass(frozen=True)
class ProbeCosts:
    """Per-token decode time of a model shape on this CPU: a fixed part plus one per layer."""

    file_type: int
    threads: int
    shape: ProbeShape
    layer_s: float
    fixed_s: float
    points: tuple[ProbePoint, ...]

    def seconds(self, n_layers: int) -> float:
        return self.fixed_s + n_layers * self.layer_s

    def decode_tok_s(self, n_layers: int | None = None) -> float:
        return 1.0 / self.seconds(self.shape.layers if n_layers is None else n_layers)

    @property
    def layer_bytes(self) -> float:
        (a, b) = self.points[0], self.points[-1]
        return (b.file_bytes - a.file_bytes) / (b.layers - a.layers)

    @property
    def weight_stream_gb_s(self) -> float:
        """The rate llama.cpp gets through one layer's weights here."""
        return self.layer_bytes / self.layer_s / 1e9


@dataclass(frozen=True)
class GGUFFile:
    """A GGUF file's parsed header (``gguf.GGUFReader``), read once and passed around."""

    path: Path
    reader: Any


def open_gguf(path: Path | GGUFFile) -> GGUFFile:
    """Parse ``path``'s header (memory-mapped; tensors are not read); a GGUFFile passes through."""
    if isinstance(path, GGUFFile):
        return path
    import gguf

    try:
        return GGUFFile(path, gguf.GGUFReader(path))
    except (OSError, ValueError, IndexError) as exc:
        raise UsageError(
            f"{path} is not a readable GGUF file ({exc}); re-fetch it with `backplan models "
            "fetch NAME --force`"
        ) from None


def gguf_file_type(source: Path | GGUFFile) -> int:
    """The ``general.file_type`` a GGUF file declares (llama.cpp's LLAMA_FTYPE)."""
    gf = open_gguf(source)
    field = gf.reader.fields.get("general.file_type")
    if field is None:
        raise UsageError(f"{gf.path} declares no general.file_type; pass a quantised GGUF model")
    return int(field.contents())


def gguf_shape(source: Path | GGUFFile) -> ProbeShape:
    """The decoder shape a GGUF file's header declares."""
    gf = open_gguf(source)
    src, path = gf.reader, gf.path

    def get(key: str) -> int:
        field = src.fields.get(f"{arch}.{key}")
        if field is None:
            raise UsageError(f"{path} declares no {arch}.{key}; pass a decoder-only GGUF model")
        value = field.contents()
        return int(value[0] if isinstance(value, list) else value)

    arch_field = src.fields.get("general.architecture")
    if arch_field is None:
        raise UsageError(f"{path} declares no general.architecture; pass a GGUF model")
    arch = str(arch_field.contents())
    return ProbeShape(
        hidden=get("embedding_length"),
        ffn=get("feed_forward_length"),
        n_head=get("attention.head_count"),
        n_head_kv=get("attention.head_count_kv"),
        layers=get("block_count"),
        untied_output=any(t.name == "output.weight" for t in src.tensors),
    )


def write_synthetic_gguf(
    path: Path, shape: ProbeShape, tokenizer_from: Path | GGUFFile, seed: int
) -> None:
    """A llama model of ``shape`` with random F16 weights and ``tokenizer_from``'s vocabulary
    (and chat template, when it has one).

    One random matrix per tensor kind is shared by all layers: speed does not depend on the
    values, and it keeps writing a copy of a large model quick.
    """
    import gguf

    donor = open_gguf(tokenizer_from)
    src = donor.reader

    def field(name: str) -> object:
        f = src.fields.get(name)
        return None if f is None else f.contents()

    tokens = field("tokenizer.ggml.tokens")
    if not isinstance(tokens, list):
        raise UsageError(f"{donor.path} has no tokenizer to borrow; pass a GGUF model")
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(shape.layers)
    w.add_context_length(512)
    w.add_embedding_length(shape.hidden)
    w.add_feed_forward_length(shape.ffn)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_rope_dimension_count(shape.head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model(str(field("tokenizer.ggml.model")))
    pre = field("tokenizer.ggml.pre")
    if pre:
        w.add_tokenizer_pre(str(pre))
    w.add_token_list(tokens)
    types = field("tokenizer.ggml.token_type")
    if isinstance(types, list):
        w.add_token_types(types)
    merges = field("tokenizer.ggml.merges")
    if isinstance(merges, list):
        w.add_token_merges(merges)
    template = field("tokenizer.chat_template")
    if template:  # so the clone takes chat prompts as the donor does (the profiler's)
        w.add_chat_template(str(template))
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id)):
        tok = field(f"tokenizer.ggml.{key}_token_id")
        if tok is not None:
            add(int(str(tok)))

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    d, f, kv = shape.hidden, shape.ffn, shape.n_head_kv * shape.head_dim
    w.add_tensor("token_embd.weight", mat(len(tokens), d))
    if shape.untied_output:
        w.add_tensor("output.weight", mat(len(tokens), d))
    norm = np.ones(d, dtype=np.float32)
    w.add_tensor("output_norm.weight", norm)
    layer = {
        "attn_q": mat(d, d),
        "attn_k": mat(kv, d),
        "attn_v": mat(kv, d),
        "attn_output": mat(d, d),
        "ffn_gate": mat(f, d),
        "ffn_up": mat(f, d),
        "ffn_down": mat(d, f),
    }
    for i in range(shape.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", norm)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", norm)
        for name, weights in layer.items():
            w.add_tensor(f"blk.{i}.{name}.weight", weights)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def time_decode_s(
    path: Path, *, tokens: int = 32, repeats: int = 5, threads: int | None = None
) -> float:
    """Median seconds per batch-1 decoded token (greedy, the engine's hot path), on the CPU."""
    return statistics.median(decode_runs_s(path, tokens=tokens, repeats=repeats, threads=threads))


def decode_runs_s(
    path: Path,
    *,
    tokens: int = 32,
    repeats: int = 5,
    threads: int | None = None,
    n_gpu_layers: int = 0,
) -> list[float]:
    """Seconds per batch-1 greedy decoded token in each of ``repeats`` runs (after a warm-up)."""
    from runtime.engine.llama import Context, Model

    model = Model(path, n_gpu_layers=n_gpu_layers)
    ctx = Context(model, n_ctx=max(256, tokens + 64), n_batch=64, n_threads=threads)
    try:
        prompt = model.tokenize("def add(a, b):\n    return", add_special=False)
        runs = []
        for _ in range(repeats + 1):  # the first run warms caches and threads: not counted
            ctx.reset()
            ctx.decode(prompt)
            tok = int(np.argmax(ctx.logits()))
            t0 = time.perf_counter()
            for _ in range(tokens):
                ctx.decode_one(tok)
                tok = int(np.argmax(ctx.logits()))
            runs.append((time.perf_counter() - t0) / tokens)
        return runs[1:]
    finally:
        ctx.close()
        model.close()


def fit_costs(
    points: Sequence[ProbePoint], shape: ProbeShape, file_type: int, threads: int
) -> ProbeCosts:
    """Least-squares line through the probes' per-token times against their depth."""
    a = np.array([[p.layers, 1.0] for p in points], dtype=np.float64)
    t = np.array([p.s_per_token for p in points])
    (per_layer, fixed), *_ = np.linalg.lstsq(a, t, rcond=None)
    return ProbeCosts(
        file_type=file_type,
        threads=threads,
        shape=shape,
        layer_s=max(1e-9, float(per_layer)),
        fixed_s=max(0.0, float(fixed)),
        points=tuple(points),
    )


def probe_cpu(
    model_path: Path,
    *,
    depths: Sequence[int] | None = None,
    threads: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ProbeCosts:
    """Time random-weight clones of ``model_path``'s shape here, at half and full depth by
    default (seconds for SmolLM2, a few minutes for a 1.5B model)."""
    from runtime.engine.llama import default_threads, quantize_model

    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if busy > 0.5 * (os.cpu_count() or 1):
        log.warning(
            "load average %.1f on %d cores: other work is running, so the probe will time "
            "this CPU slower than it is; probe on a quiet machine",
            busy,
            os.cpu_count() or 1,
        )
    header = open_gguf(model_path)  # parsed once: a 150k-token vocabulary takes a while
    shape = gguf_shape(header)
    file_type = gguf_file_type(header)
    if depths is None:
        depths = (max(1, shape.layers // 2), shape.layers)
    points = []
    with tempfile.TemporaryDirectory(prefix="backplan-probe-") as tmp:
        for i, depth in enumerate(depths):
            if on_step:
                on_step(f"probe {i + 1}/{len(depths)}: {depth} layers of {shape.hidden}")
            f16 = Path(tmp) / f"probe{i}-f16.gguf"
            out = Path(tmp) / f"probe{i}.gguf"
            write_synthetic_gguf(f16, replace(shape, layers=depth), header, seed=i)
            quantize_model(f16, out, file_type)
            f16.unlink()
            s = time_decode_s(out, threads=threads)
            points.append(ProbePoint(depth, out.stat().st_size, s))
            log.info(
                "probe %d layers: %d bytes, %.3f ms/token", depth, points[-1].file_bytes, s * 1e3
            )
            out.unlink()
    return fit_costs(points, shape, file_type, threads or default_threads())
