"""The adapter between backplan and llama-cpp-python's low-level (ctypes) API.

Everything that touches ``llama_cpp`` lives in the engine's adapter modules, this one,
:mod:`runtime.engine.multiseq` (one context shared by several sequences) and
:mod:`runtime.engine.layers` (intermediate layers' outputs, by the eval callback), so the rest
of the runtime sees plain Python and numpy: a :class:`Model` (weights and vocabulary) and a
:class:`Context` (one sequence's KV cache) with ``decode``, ``logits``, ``hidden`` and
``truncate``. :func:`llama_lib` is for those modules only.

Only public functions of ``llama_cpp.llama_cpp`` are used (the C API as exported by the
bindings); no private attribute of llama-cpp-python's ``Llama`` class. The one private name,
``llama_cpp._ggml`` (the bindings' only handle on libggml's tensor accessors), is used in
:mod:`runtime.engine.layers` alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.errors import ContextOverflowError, EngineError, ModelLoadError, UsageError

if TYPE_CHECKING:
    from runtime.engine.layers import LayerTap

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"
_backend_lock = threading.Lock()
_backend_ready = False
_log_callback: Any = None  # keep the ctypes callback alive for the life of the process
_llama_log = logging.getLogger("llama.cpp")


def llama_lib() -> Any:
    """Import llama_cpp lazily (it loads a shared library) and initialise its backend once."""
    global _backend_ready, _log_callback
    import llama_cpp.llama_cpp as lib

    if _backend_ready:
        return lib
    with _backend_lock:
        if not _backend_ready:

            @lib.llama_log_callback  # type: ignore[misc]
            def _on_log(level: int, text: bytes, user_data: Any) -> None:
                # llama.cpp is chatty on model load; route it to logging at DEBUG.
                msg = text.decode("utf-8", "replace").rstrip()
                if msg:
                    _llama_log.debug(msg)

            _log_callback = _on_log
            lib.llama_log_set(_log_callback, ctypes.c_void_p(0))
            lib.llama_backend_init()
            _backend_ready = True
    return lib


def gpu_offload_supported() -> bool:
    """True when this llama.cpp build has a GPU backend (CUDA, Metal, Vulkan, ...)."""
    return bool(llama_lib().llama_supports_gpu_offload())


def system_info() -> str:
    """llama.cpp's own description of its build (backends and CPU features)."""
    raw: bytes = llama_lib().llama_print_system_info()
    return raw.decode("utf-8", "replace").strip()


def quantize_model(src: str | Path, dst: str | Path, file_type: int, *, threads: int = 0) -> None:
    """Write ``src`` (a GGUF file) to ``dst`` at llama.cpp file type ``file_type`` (e.g. 15:
    Q4_K_M), with llama.cpp's own per-tensor rules, as ``llama-quantize`` would."""
    lib = llama_lib()
    params = lib.llama_model_quantize_default_params()
    params.ftype = file_type
    params.nthread = threads
    rc = lib.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise EngineError(
            f"llama.cpp could not quantise {src} to file type {file_type} (code {rc}); "
            "check the source file and that the type exists in this llama.cpp"
        )


def default_threads() -> int:
    """Physical-ish thread count for decoding; BACKPLAN_THREADS overrides."""
    env = os.environ.get("BACKPLAN_THREADS", "").strip()
    if env:
        if not (env.isascii() and env.isdigit()) or int(env) < 1:
            raise UsageError(f"BACKPLAN_THREADS={env!r} is not a thread count; set 1 or more")
        return int(env)
    return max(1, os.cpu_count() or 1)


class Model:
    """Weights and vocabulary of one GGUF file. Several contexts may share one model."""

    def __init__(self, path: str | Path, *, n_gpu_layers: int | None = None) -> None:
        lib = llama_lib()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(
                f"model file {self.path} does not exist; fetch it with "
                "`backplan models fetch NAME` or pass a path to a .gguf file"
            )
        with open(self.path, "rb") as fh:
            magic = fh.read(4)
        if magic != _GGUF_MAGIC:
            raise ModelLoadError(
                f"{self.path} is not a GGUF file (bad magic {magic!r}); "
                "re-download it with `backplan models fetch NAME --force`"
            )
        if n_gpu_layers is None:
            n_gpu_layers = -1 if gpu_offload_supported() else 0
            log.info(
                "llama.cpp GPU offload %s: n_gpu_layers=%d",
                "available" if n_gpu_layers else "not in this build",
                n_gpu_layers,
            )
        self.n_gpu_layers = n_gpu_layers
        params = lib.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        self._model = lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not self._model:
            raise ModelLoadError(
                f"llama.cpp could not load {self.path}: the file is corrupt or "
                "truncated; delete it and run `backplan models fetch NAME`"
            )
        self._vocab = lib.llama_model_get_vocab(self._model)
        self.n_vocab: int = lib.llama_vocab_n_tokens(self._vocab)
        self.n_embd: int = lib.llama_model_n_embd(self._model)
        self.n_ctx_train: int = lib.llama_model_n_ctx_train(self._model)
        self.n_params: int = lib.llama_model_n_params(self._model)
        self.n_layer: int = lib.llama_model_n_layer(self._model)
        self.n_head: int = lib.llama_model_n_head(self._model)
        self.n_head_kv: int = lib.llama_model_n_head_kv(self._model)
        self.size_bytes: int = lib.llama_model_size(self._model)
        self.bos_token: int = lib.llama_vocab_bos(self._vocab)
        self.eos_token: int = lib.llama_vocab_eos(self._vocab)
        self.add_bos: bool = bool(lib.llama_vocab_get_add_bos(self._vocab))
        self._eog = np.zeros(self.n_vocab, dtype=bool)
        for tok in range(self.n_vocab):
            if lib.llama_vocab_is_eog(self._vocab, tok):
                self._eog[tok] = True
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._piece_lock = threading.Lock()
        self._special_texts: tuple[str, ...] | None = None
        self._fim: dict[str, int] | None = None

    # -- vocabulary -------------------------------------------------------------------------
    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        lib = llama_lib()
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (lib.llama_token * cap)()
        n = lib.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (lib.llama_token * cap)()
            n = lib.llama_tokenize(
                self._vocab, data, len(data), buf, cap, add_special, parse_special
            )
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens render empty)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        lib = llama_lib()
        with self._piece_lock:  # one shared buffer; generations may run in several threads
            n = lib.llama_token_to_piece(self._vocab, token, self._piece_buf, 256, 0, False)
            if n < 0:
                big = ctypes.create_string_buffer(-n)
                n = lib.llama_token_to_piece(self._vocab, token, big, -n, 0, False)
                out = big.raw[:n]
            else:
                out = self._piece_buf.raw[:n]
        self._pieces[token] = out
        return out

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def fim_tokens(self) -> dict[str, int]:
        """The GGUF's fill-in-the-middle tokens that it has, by kind: ``pre``, ``suf``,
        ``mid`` (needed to infill), ``rep``, ``sep`` (repository context), ``pad``."""
        if self._fim is None:
            lib = llama_lib()
            found = {}
            for kind in ("pre", "suf", "mid", "rep", "sep", "pad"):
                token = getattr(lib, f"llama_vocab_fim_{kind}")(self._vocab)
                if token >= 0:  # LLAMA_TOKEN_NULL is -1
                    found[kind] = int(token)
            self._fim = found
        return dict(self._fim)

    def is_eog(self, token: int) -> bool:
        return bool(self._eog[token])

    @property
    def eog_mask(self) -> np.ndarray:
        return self._eog

    def chat_template(self) -> str | None:
        raw = llama_lib().llama_model_chat_template(self._model, None)
        return raw.decode("utf-8") if raw else None

    def special_texts(self) -> tuple[str, ...]:
        """The texts of the control and user-defined tokens (``<|im_start|>`` ...), longest
        first: text that becomes a control token when special tokens are parsed."""
        if self._special_texts is None:
            lib = llama_lib()
            mask = lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_USER_DEFINED
            found = {
                self.token_text(tok)
                for tok in range(self.n_vocab)
                if lib.llama_vocab_get_attr(self._vocab, tok) & mask
            }
            self._special_texts = tuple(sorted((t for t in found if t), key=len, reverse=True))
        return self._special_texts

    def token_text(self, token: int) -> str:
        """Text of a special token as it appears in templates (e.g. ``<|im_end|>``)."""
        lib = llama_lib()
        buf = ctypes.create_string_buffer(256)
        n = lib.llama_token_to_piece(self._vocab, token, buf, 256, 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0) -> float:
        """K and V cache bytes per token position (f16 cache by default)."""
        head_dim = self.n_embd // max(self.n_head, 1)
        return 2 * self.n_layer * self.n_head_kv * head_dim * bytes_per_element

    def close(self) -> None:
        if getattr(self, "_model", None):
            llama_lib().llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.close()

    @property
    def handle(self) -> Any:
        return self._model

    @property
    def vocab_handle(self) -> Any:
        return self._vocab


def init_context(
    model: Model,
    *,
    n_ctx: int,
    n_batch: int,
    n_seq_max: int,
    embeddings: bool,
    n_threads: int | None,
    cb_eval: Any = None,
) -> Any:
    """A llama.cpp context on ``model`` (the C handle), or ``None`` when llama.cpp refuses.

    One place for the parameters backplan always sets: pooling NONE (a hidden state per token),
    ``n_ubatch`` = ``n_batch``, every thread for both prompt and decode, no perf counters.
    ``cb_eval``: llama.cpp's eval callback (:class:`~runtime.engine.layers.LayerTap`).
    """
    lib = llama_lib()
    params = lib.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = n_batch
    params.n_ubatch = n_batch
    params.n_seq_max = n_seq_max
    threads = n_threads or default_threads()
    params.n_threads = threads
    params.n_threads_batch = threads
    params.embeddings = embeddings
    params.pooling_type = lib.LLAMA_POOLING_TYPE_NONE
    params.no_perf = True
    if cb_eval is not None:
        params.cb_eval = cb_eval
    return lib.llama_init_from_model(model.handle, params)


class Context:
    """One sequence's KV cache on a :class:`Model`, with decode, logits, hidden states, rollback.

    ``embeddings=True`` makes every decode also return the last hidden state of each output
    token (pooling NONE), from the same forward pass as the logits.
    """

    def __init__(
        self,
        model: Model,
        *,
        n_ctx: int = 2048,
        n_batch: int = 512,
        embeddings: bool = False,
        n_threads: int | None = None,
        layers: Sequence[int] | None = None,
        hidden_layer: int | None = None,
    ) -> None:
        lib = llama_lib()
        self.model = model
        # layers: read these layers' outputs at every decode (an empty list: the callback
        # alone, to time it); None: no callback, the graph runs uninterrupted.
        # hidden_layer: hidden()/hidden_all() return the residual stream after this layer
        # (tapped) instead of the final hidden state (a value head fitted on that layer)
        if hidden_layer is not None:
            if not embeddings:
                raise EngineError("hidden_layer needs a context created with embeddings=True")
            layers = sorted({*(layers or ()), hidden_layer})
        self.hidden_layer = hidden_layer
        self.tap: LayerTap | None = None
        if layers is not None:
            from runtime.engine.layers import LayerTap

            self.tap = LayerTap(layers, n_layer=model.n_layer, n_embd=model.n_embd, n_batch=n_batch)
        self._ctx = init_context(
            model,
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_seq_max=1,
            embeddings=embeddings,
            n_threads=n_threads,
            cb_eval=self.tap.callback if self.tap is not None else None,
        )
        if not self._ctx:
            raise EngineError(
                f"llama.cpp could not create a context of {n_ctx} tokens; try a smaller --n-ctx"
            )
        self.n_ctx: int = lib.llama_n_ctx(self._ctx)
        # llama.cpp may round n_ctx up and clamp n_batch to it: read back what it uses
        self.n_batch: int = min(n_batch, lib.llama_n_batch(self._ctx))
        self.embeddings = embeddings
        self._mem = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        for i in range(n_batch):
            self._batch.n_seq_id[i] = 1
            self._batch.seq_id[i][0] = 0
        self.n_past = 0
        self.forward_tokens = 0  # every token position evaluated, prompt included
        self.decode_calls = 0
        self._n_out = 0
        self._decode = lib.llama_decode
        self._logits_ith = lib.llama_get_logits_ith
        self._embd_ith = lib.llama_get_embeddings_ith
        self._set_embeddings = lib.llama_set_embeddings

    def decode(self, tokens: Sequence[int], *, all_outputs: bool = False) -> int:
        """Evaluate ``tokens`` after the current position. Returns how many outputs there are.

        With ``all_outputs`` each token gets logits (and hidden state); otherwise only the last.
        Large inputs are split into ``n_batch`` chunks.
        """
        n = len(tokens)
        if n == 0:
            return self._n_out
        if self.n_past + n > self.n_ctx:
            raise ContextOverflowError(
                f"{self.n_past + n} tokens do not fit the context of {self.n_ctx}; "
                "shorten the prompt, lower max_tokens or raise --n-ctx"
            )
        if self.embeddings and not all_outputs and n > 1:
            # With embeddings on, llama.cpp outputs every token of a batch (logits and hidden
            # states), whatever the batch's output flags say: on a prompt that wastes the
            # output layer's compute and ~0.4 MB per token. Evaluate all but the last token
            # with embeddings off, then the last one with them on.
            self._set_embeddings(self._ctx, False)
            try:
                self._decode_chunks(tokens[:-1], all_outputs=False)
            finally:
                self._set_embeddings(self._ctx, True)
            return self._decode_chunks(tokens[-1:], all_outputs=False)
        return self._decode_chunks(tokens, all_outputs=all_outputs)

    def _decode_chunks(self, tokens: Sequence[int], *, all_outputs: bool) -> int:
        n = len(tokens)
        b = self._batch
        start = 0
        while start < n:
            chunk = tokens[start : start + self.n_batch]
            m = len(chunk)
            last_chunk = start + m == n
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = self.n_past + i
                b.logits[i] = 1 if (all_outputs or (last_chunk and i == m - 1)) else 0
            b.n_tokens = m
            rc = self._decode(self._ctx, b)
            if rc != 0:
                raise EngineError(
                    f"llama_decode failed with code {rc} at position {self.n_past}"
                    f" ({m} tokens); the context may be full: raise --n-ctx"
                )
            self.n_past += m
            self.forward_tokens += m
            self.decode_calls += 1
            start += m
            self._n_out = m if all_outputs else 1
        return self._n_out

    def decode_one(self, token: int) -> None:
        """Fast path for one token with its logits (the decode loop's hot path)."""
        if self.n_past >= self.n_ctx:
            raise ContextOverflowError(
                f"the context of {self.n_ctx} tokens is full; lower max_tokens or raise --n-ctx"
            )
        b = self._batch
        b.token[0] = token
        b.pos[0] = self.n_past
        b.logits[0] = 1
        b.n_tokens = 1
        rc = self._decode(self._ctx, b)
        if rc != 0:
            raise EngineError(f"llama_decode failed with code {rc} at position {self.n_past}")
        self.n_past += 1
        self.forward_tokens += 1
        self.decode_calls += 1
        self._n_out = 1

    def logits(self, i: int = -1) -> np.ndarray:
        """Zero-copy view of the logits of output ``i`` of the last decode (-1: the last one).

        The view is overwritten by the next decode: copy it to keep it.
        """
        ptr = self._logits_ith(self._ctx, i)
        if not ptr:
            raise EngineError(f"no logits for output {i}; decode with all_outputs=True")
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))

    def hidden(self, i: int = -1) -> np.ndarray:
        """Zero-copy view of the last hidden state of output ``i`` (needs embeddings=True);
        with ``hidden_layer``, that layer's output at output ``i`` instead."""
        if not self.embeddings:
            raise EngineError("hidden states need a context created with embeddings=True")
        if self.tap is not None and self.hidden_layer is not None:
            rows = self.tap.rows(self.hidden_layer)
            # a middle layer keeps every token of the last batch, outputs are its last rows
            j = i if i < 0 else len(rows) - self._n_out + i
            if not -len(rows) <= j < len(rows):
                raise EngineError(f"no hidden state for output {i}; decode with all_outputs=True")
            return rows[j]
        ptr = self._embd_ith(self._ctx, i)
        if not ptr:
            raise EngineError(f"no hidden state for output {i}; decode with all_outputs=True")
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_embd,))

    def hidden_all(self, n: int) -> np.ndarray:
        """Copy of the hidden states of the last ``n`` outputs, shape (n, n_embd)."""
        out = np.empty((n, self.model.n_embd), dtype=np.float32)
        for j in range(n):
            out[j] = self.hidden(self._n_out - n + j)
        return out

    def truncate(self, n_keep: int) -> None:
        """Drop every position >= ``n_keep`` from the KV cache (rollback, no re-evaluation)."""
        if n_keep < 0 or n_keep > self.n_past:
            raise EngineError(f"cannot truncate to {n_keep}: the context holds {self.n_past}")
        if n_keep == self.n_past:
            return
        ok = llama_lib().llama_memory_seq_rm(self._mem, 0, n_keep, -1)
        if not ok:
            raise EngineError(
                f"llama.cpp refused to remove positions >= {n_keep} "
                "(this model's memory cannot be rolled back)"
            )
        self.n_past = n_keep

    def reset(self) -> None:
        llama_lib().llama_memory_clear(self._mem, True)
        self.n_past = 0

    def close(self) -> None:
        lib = llama_lib()
        if getattr(self, "_ctx", None):
            lib.llama_batch_free(self._batch)
            lib.llama_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:  # pragma: no cover
        with contextlib.suppress(Exception):
            self.close()
