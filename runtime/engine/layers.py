"""Reading the residual stream after chosen layers during a decode (llama.cpp's eval callback).

llama.cpp names each layer's output tensor ``l_out-N`` in its compute graph. A context created
with ``cb_eval`` set calls it for every graph node: first asking whether the node is wanted
(``ask=True``); for a wanted one the scheduler computes the graph up to it and calls again
(``ask=False``) with the tensor computed, which :class:`LayerTap` copies into a buffer
allocated once. Its rows are the batch's tokens (the last layer keeps only the output rows).

Cost: the callback runs in Python for every node of every decode, and each wanted node splits
the graph's computation; ``benchmarks/layer_readout.py`` measures what that costs per token.

This module is part of the engine adapter: the tensor accessors (``ggml_get_name``,
``ggml_nbytes``, ``ggml_backend_tensor_get``) are ggml's C API, which llama-cpp-python loads
in its private ``llama_cpp._ggml`` module (the only handle it offers on libggml); that name is
used here and nowhere else.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.errors import UsageError


def _ggml() -> Any:
    """libggml with the three accessors typed (loaded by llama-cpp-python; see above)."""
    from llama_cpp import _ggml  # private module: libggml's only handle in llama-cpp-python

    lib = _ggml.libggml
    lib.ggml_get_name.argtypes = [ctypes.c_void_p]
    lib.ggml_get_name.restype = ctypes.c_char_p
    lib.ggml_nbytes.argtypes = [ctypes.c_void_p]
    lib.ggml_nbytes.restype = ctypes.c_size_t
    lib.ggml_backend_tensor_get.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
    ]
    lib.ggml_backend_tensor_get.restype = None
    return lib


class LayerTap:
    """Copies the outputs of ``layers`` (0-based) at every decode; :meth:`rows` reads them.

    An empty ``layers`` asks for nothing: what the callback alone costs.
    """

    def __init__(self, layers: Sequence[int], *, n_layer: int, n_embd: int, n_batch: int) -> None:
        bad = [i for i in layers if not 0 <= i < n_layer]
        if bad:
            raise UsageError(
                f"layer {bad[0]} does not exist: the model has layers 0-{n_layer - 1}; "
                "choose layers in that range"
            )
        import llama_cpp.llama_cpp as lib

        self._ggml = _ggml()
        self.n_embd = n_embd
        self.layers = tuple(sorted(set(layers)))
        self._wanted = {f"l_out-{i}".encode(): i for i in self.layers}
        self._buf = {i: np.zeros((n_batch, n_embd), dtype=np.float32) for i in self.layers}
        self._rows = dict.fromkeys(self.layers, 0)
        self.calls = 0  # callback invocations (graph nodes asked about and tensors read)
        # keep the ctypes callback alive as long as the context that calls it
        self.callback = lib.ggml_backend_sched_eval_callback(self._on_node)

    def _on_node(self, tensor: int, ask: bool, user_data: Any) -> bool:
        self.calls += 1
        name = self._ggml.ggml_get_name(tensor)
        layer = self._wanted.get(name)
        if ask:
            return layer is not None
        if layer is None:
            return True
        buf = self._buf[layer]
        nbytes = min(int(self._ggml.ggml_nbytes(tensor)), buf.nbytes)
        self._ggml.ggml_backend_tensor_get(tensor, buf.ctypes.data, 0, nbytes)
        self._rows[layer] = nbytes // (4 * self.n_embd)
        return True  # go on computing the graph

    def rows(self, layer: int) -> np.ndarray:
        """View of the last decode's rows of ``layer`` (n_tokens, n_embd); copy to keep."""
        if layer not in self._buf:
            raise UsageError(f"layer {layer} is not tapped (tapped: {list(self.layers)})")
        return self._buf[layer][: self._rows[layer]]


__all__ = ["LayerTap"]
