"""A llama.cpp grammar (GBNF) as a constraint on the tokens the sampler draws, that can move back.

The third engine adapter: it calls llama.cpp's grammar sampler (``llama_sampler_init_grammar``,
``_apply``, ``_accept``, ``_reset``) directly, as :mod:`runtime.engine.llama` calls decoding.
The sampler draws a token as usual; only when the grammar refuses it are all candidates
masked and the draw repeated (llama.cpp's common sampler does the same: masking the whole
vocabulary on every step costs far more than checking one token). A rollback rewinds the
grammar by resetting it and accepting the kept tokens again. JSON schemas become GBNF through
llama-cpp-python's converter (the one llama-server's ``json_schema`` uses, ported).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.engine.llama import Model, llama_lib
from runtime.errors import EngineError, UsageError

#: llama_token_data: {int32 id; float logit; float p}
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


def json_object_grammar() -> str:
    """GBNF for any JSON object (``response_format: {"type": "json_object"}``)."""
    from llama_cpp.llama_grammar import JSON_GBNF

    return str(JSON_GBNF)


#: Repetition bounds a schema may ask for: the converter writes a bounded repetition out in
#: full, so ``"maxLength": 10**9`` would be a grammar of gigabytes.
MAX_REPEAT = 1000
MAX_DEPTH = 32
MAX_GRAMMAR_CHARS = 1_000_000
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def _check_bounds(node: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise UsageError(f"the JSON schema nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _COUNTS and isinstance(value, int) and value > MAX_REPEAT:
                raise UsageError(
                    f"the JSON schema's {key} is {value}; at most {MAX_REPEAT} can be "
                    "constrained token by token"
                )
            if key == "pattern" and isinstance(value, str):
                for m in _QUANTIFIER.finditer(value):
                    if any(g and int(g) > MAX_REPEAT for g in m.groups()):
                        raise UsageError(
                            f"the JSON schema's pattern repeats more than {MAX_REPEAT} times"
                        )
            _check_bounds(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _check_bounds(value, depth + 1)


def json_schema_grammar(schema: Any) -> str:
    """GBNF for the JSON documents ``schema`` allows; UsageError saying why it cannot."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not isinstance(schema, dict):
        raise UsageError('the JSON schema must be an object, e.g. {"type": "object", ...}')
    _check_bounds(schema)
    try:
        gbnf = str(json_schema_to_gbnf(json.dumps(schema)))
    except RecursionError:
        raise UsageError("the JSON schema nests too deeply to turn into a grammar") from None
    except Exception as exc:  # noqa: BLE001 - the converter raises assertions and key errors
        raise UsageError(f"the JSON schema cannot be turned into a grammar: {exc}") from None
    if len(gbnf) > MAX_GRAMMAR_CHARS:
        raise UsageError(
            f"the JSON schema's grammar would be {len(gbnf):,} characters; simplify the schema"
        )
    return gbnf


class Grammar:
    """One generation's grammar state over ``model``'s vocabulary."""

    def __init__(self, model: Model, gbnf: str) -> None:
        lib = llama_lib()
        self._lib = lib
        self._smpl = lib.llama_sampler_init_grammar(model.vocab_handle, gbnf.encode(), b"root")
        if not self._smpl:
            raise UsageError("the grammar could not be parsed (llama.cpp refused it)")
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self._all = np.zeros(model.n_vocab, dtype=_TOKEN_DATA)
        self._all["id"] = np.arange(model.n_vocab, dtype=np.int32)

    def _apply(self, data: np.ndarray) -> None:
        lib = self._lib
        arr = lib.llama_token_data_array(
            data=data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)),
            size=len(data),
            selected=-1,
            sorted=False,
        )
        lib.llama_sampler_apply(self._smpl, ctypes.byref(arr))

    def allows(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next."""
        self._one["id"], self._one["logit"] = token, 0.0
        self._apply(self._one)
        return bool(np.isfinite(self._one["logit"][0]))

    def masked(self, logits: np.ndarray) -> np.ndarray:
        """``logits`` with every token the grammar refuses next at -inf."""
        self._all["logit"] = logits
        self._apply(self._all)
        return np.asarray(self._all["logit"], dtype=logits.dtype)

    def accept(self, token: int) -> None:
        if not self.allows(token):  # llama.cpp aborts the process on a refused token
            raise EngineError(f"token {token} is outside the request's grammar")
        self._lib.llama_sampler_accept(self._smpl, token)

    def rewind(self, kept: Sequence[int]) -> None:
        """Back to the state after ``kept`` (the tokens that remain after a rollback)."""
        self._lib.llama_sampler_reset(self._smpl)
        for token in kept:
            self._lib.llama_sampler_accept(self._smpl, token)

    def close(self) -> None:
        if self._smpl:
            self._lib.llama_sampler_free(self._smpl)
            self._smpl = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()
