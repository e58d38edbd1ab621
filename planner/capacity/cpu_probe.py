"""This CPU's llama.cpp decode costs, measured on synthetic models (a quick measurement).

On a CPU with few cores, batch-1 decoding is not bound by memory bandwidth alone: each
weight byte also costs dequantisation and dot-product work, at a rate that depends on the
quantisation type and the core count, and each layer adds thread barriers. A numpy bandwidth
figure cannot see either. So the probe asks llama.cpp itself: it writes a few random-weight
llama-architecture models of chosen shapes (with gguf, borrowing the vocabulary of the model
to predict, so llama.cpp loads them and the output layer and sampling see the same vocabulary
size), has llama.cpp quantise them to that model's file type, and times batch-1 decoding of
each through backplan's engine, as a plain decode would run, on the same number of threads.
The per-token time is then split by least squares into

    t = bytes_read x s_per_byte + n_layers x s_per_layer + s_per_pass

and that model predicts any other model of the same file type from its shape alone. The
probe shapes are fixed here and share nothing with the model being predicted except the file
type and the vocabulary: the prediction is never fitted to the model it predicts.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.capacity.roofline import ModelShape
from runtime.errors import UsageError

log = logging.getLogger(__name__)

HEAD_DIM = 64


@dataclass(frozen=True)
class ProbeShape:
    """A synthetic llama model: hidden size, feed-forward size, layers."""

    hidden: int
    ffn: int
    layers: int


# Shallow and deep at one width separate the per-layer cost; the wide one the per-byte cost.
# Sizes are multiples of 256 so k-quants apply as they do on real models.
PROBE_SHAPES: tuple[ProbeShape, ...] = (
    ProbeShape(hidden=256, ffn=768, layers=2),
    ProbeShape(hidden=256, ffn=768, layers=32),
    ProbeShape(hidden=1024, ffn=2816, layers=4),
    ProbeShape(hidden=1024, ffn=2816, layers=12),
)


@dataclass(frozen=True)
class ProbePoint:
    shape: ProbeShape
    file_bytes: int
    s_per_token: float


@dataclass(frozen=True)
class ProbeCosts:
    """Per-token decode cost terms of this CPU for one llama.cpp file type."""

    file_type: int
    threads: int
    s_per_byte: float
    s_per_layer: float
    s_per_pass: float
    points: tuple[ProbePoint, ...]

    def seconds(self, bytes_read: float, n_layers: int) -> float:
        return bytes_read * self.s_per_byte + n_layers * self.s_per_layer + self.s_per_pass

    def decode_tok_s(self, shape: ModelShape, *, context: int = 64) -> float:
        bytes_read = shape.bytes_read_per_pass + context * shape.kv_bytes_per_token
        return 1.0 / self.seconds(bytes_read, shape.n_layers)

    @property
    def weight_stream_gb_s(self) -> float:
        """The rate llama.cpp gets through this type's weights here (bytes / s_per_byte)."""
        return 1e-9 / self.s_per_byte


def gguf_file_type(path: Path) -> int:
    """The ``general.file_type`` a GGUF file declares (llama.cpp's LLAMA_FTYPE)."""
    import gguf

    field = gguf.GGUFReader(path).fields.get("general.file_type")
    if field is None:
        raise UsageError(f"{path} declares no general.file_type; pass a quantised GGUF model")
    return int(field.contents())


def write_synthetic_gguf(path: Path, shape: ProbeShape, tokenizer_from: Path, seed: int) -> None:
    """A llama model of ``shape`` with random F16 weights and ``tokenizer_from``'s vocabulary."""
    import gguf

    src = gguf.GGUFReader(tokenizer_from)

    def field(name: str) -> object:
        f = src.fields.get(name)
        return None if f is None else f.contents()

    tokens = field("tokenizer.ggml.tokens")
    if not isinstance(tokens, list):
        raise UsageError(f"{tokenizer_from} has no tokenizer to borrow; pass a GGUF model")
    rng = np.random.default_rng(seed)
    n_head = shape.hidden // HEAD_DIM
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(shape.layers)
    w.add_context_length(512)
    w.add_embedding_length(shape.hidden)
    w.add_feed_forward_length(shape.ffn)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(HEAD_DIM)
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
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id)):
        tok = field(f"tokenizer.ggml.{key}_token_id")
        if tok is not None:
            add(int(str(tok)))

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    d, f = shape.hidden, shape.ffn
    w.add_tensor("token_embd.weight", mat(len(tokens), d))
    w.add_tensor("output_norm.weight", np.ones(d, dtype=np.float32))
    for i in range(shape.layers):
        b = f"blk.{i}"
        w.add_tensor(f"{b}.attn_norm.weight", np.ones(d, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"{b}.{name}.weight", mat(d, d))
        w.add_tensor(f"{b}.ffn_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor(f"{b}.ffn_gate.weight", mat(f, d))
        w.add_tensor(f"{b}.ffn_up.weight", mat(f, d))
        w.add_tensor(f"{b}.ffn_down.weight", mat(d, f))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def time_decode_s(
    path: Path, *, tokens: int = 32, repeats: int = 5, threads: int | None = None
) -> float:
    """Median seconds per batch-1 decoded token (greedy, the engine's hot path)."""
    from runtime.engine.llama import Context, Model

    model = Model(path, n_gpu_layers=0)
    ctx = Context(model, n_ctx=256, n_batch=64, n_threads=threads)
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
        return statistics.median(runs[1:])
    finally:
        ctx.close()
        model.close()


def fit_costs(points: Sequence[ProbePoint], file_type: int, threads: int) -> ProbeCosts:
    """Least-squares split of the probes' per-token times into byte, layer and pass costs."""
    a = np.array([[p.file_bytes, p.shape.layers, 1.0] for p in points], dtype=np.float64)
    t = np.array([p.s_per_token for p in points])
    (per_byte, per_layer, per_pass), *_ = np.linalg.lstsq(a, t, rcond=None)
    return ProbeCosts(
        file_type=file_type,
        threads=threads,
        s_per_byte=float(per_byte),
        s_per_layer=max(0.0, float(per_layer)),
        s_per_pass=max(0.0, float(per_pass)),
        points=tuple(points),
    )


def probe_cpu(
    file_type: int,
    tokenizer_from: Path,
    *,
    shapes: Sequence[ProbeShape] = PROBE_SHAPES,
    threads: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ProbeCosts:
    """Measure this CPU's decode cost terms for ``file_type`` (a few tens of seconds)."""
    from runtime.engine.llama import default_threads, quantize_model

    points = []
    with tempfile.TemporaryDirectory(prefix="backplan-probe-") as tmp:
        for i, shape in enumerate(shapes):
            if on_step:
                on_step(f"probe {i + 1}/{len(shapes)}: {shape.layers} layers x {shape.hidden}")
            f16 = Path(tmp) / f"probe{i}-f16.gguf"
            out = Path(tmp) / f"probe{i}.gguf"
            write_synthetic_gguf(f16, shape, tokenizer_from, seed=i)
            quantize_model(f16, out, file_type)
            f16.unlink()
            s = time_decode_s(out, threads=threads)
            points.append(ProbePoint(shape, out.stat().st_size, s))
            log.info("probe %s: %d bytes, %.3f ms/token", shape, points[-1].file_bytes, s * 1e3)
            out.unlink()
    return fit_costs(points, file_type, threads or default_threads())
