"""Value heads: a logistic regression or a tiny MLP on a model's last hidden state.

File format (``.npz``, loaded with ``allow_pickle=False``): arrays ``w1``, ``b1`` and, for an
MLP, ``w2``, ``b2``; optionally ``mean`` and ``scale``, the standardisation the head was fitted
with (a feature is ``(h - mean) / scale`` before ``w1``: a model's hidden states have a few
dimensions orders of magnitude larger than the rest, which an L2-penalised fit cannot weigh
without it); plus ``metadata``, a JSON string validated by :class:`HeadMetadata` (format
version, kind, model sha256, n_embd, threshold, training data id, AUC, training cost).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.atomic import atomic_write
from runtime.errors import HeadError

HEAD_FORMAT_VERSION = 1


class TrainingCost(BaseModel):
    """What fitting the head cost, to compare with the model's pretraining."""

    model_config = ConfigDict(extra="forbid")

    tokens_processed: int = 0
    cpu_s: float = 0.0
    generation_wall_s: float = Field(
        0.0, description="Wall seconds of imported rollouts, whose CPU time was not recorded."
    )
    pretraining_tokens: float | None = None

    @property
    def fraction_of_pretraining(self) -> float | None:
        if not self.pretraining_tokens:
            return None
        return self.tokens_processed / self.pretraining_tokens


class HeadMetadata(BaseModel):
    """Everything needed to use a head safely and to report what it is."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = HEAD_FORMAT_VERSION
    kind: Literal["logistic", "mlp", "constant"] = "logistic"
    features: Literal["prefix", "last", "mean", "last+mean"] = Field(
        "prefix",
        description="What the head reads: the hidden state at each prefix's last token "
        "(prefix), or a whole answer's: its last token's (last), the mean over its tokens "
        "(mean), or both side by side (last+mean, 2 x n_embd).",
    )
    layer: int | None = Field(
        None,
        ge=0,
        description="The 0-based layer whose output the head reads (llama.cpp's eval callback); "
        "None: the final hidden state, after the last norm.",
    )
    model_sha256: str | None = Field(None, description="sha256 of the GGUF it reads.")
    model_name: str | None = None
    n_embd: int = Field(..., gt=0)
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Calibrated reject threshold.")
    training_data_id: str | None = None
    disjoint_from: list[str] = Field(
        default_factory=list, description="Benchmarks the training data excludes."
    )
    training_tasks: list[str] = Field(
        default_factory=list,
        description="Benchmark problems whose rollouts trained the head: it must never score them.",
    )
    auc: float | None = None
    training_cost: TrainingCost = Field(default_factory=TrainingCost)
    note: str = ""


class ValueHead:
    """V(prefix) = sigmoid(f(h)) where h is the hidden state at the prefix's last token."""

    def __init__(
        self,
        metadata: HeadMetadata,
        w1: np.ndarray,
        b1: np.ndarray,
        w2: np.ndarray | None = None,
        b2: np.ndarray | None = None,
        *,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ) -> None:
        self.metadata = metadata
        self.w1 = np.ascontiguousarray(w1, dtype=np.float32)
        self.b1 = np.ascontiguousarray(b1, dtype=np.float32)
        self.w2 = None if w2 is None else np.ascontiguousarray(w2, dtype=np.float32)
        self.b2 = None if b2 is None else np.ascontiguousarray(b2, dtype=np.float32)
        expected_rows = metadata.n_embd
        self.mean = None if mean is None else np.ascontiguousarray(mean, dtype=np.float32)
        self.scale = None if scale is None else np.ascontiguousarray(scale, dtype=np.float32)
        if (
            (self.mean is None) != (self.scale is None)
            or any(
                a is not None and (a.shape != (expected_rows,) or not np.all(np.isfinite(a)))
                for a in (self.mean, self.scale)
            )
            or (self.scale is not None and not np.all(self.scale > 0))
        ):
            raise HeadError(
                f"the head's standardisation (mean, scale) does not fit n_embd={expected_rows} "
                "(both are needed, finite, scale positive); re-create it with "
                "`backplan verifier train`"
            )
        if self.w1.ndim != 2 or self.w1.shape[0] != expected_rows:
            raise HeadError(
                f"head weights have shape {self.w1.shape} but metadata says "
                f"n_embd={expected_rows}; the head file is inconsistent"
            )
        width = self.w1.shape[1]
        out = (self.w2 if self.w2 is not None else self.w1).shape[-1]
        if (
            self.b1.shape != (width,)
            or (self.w2 is None) != (self.b2 is None)
            or (self.w2 is not None and self.w2.shape[0] != width)
            or (self.b2 is not None and self.b2.shape != (out,))
            or out != 1
        ):
            shapes = [None if a is None else a.shape for a in (self.w1, self.b1, self.w2, self.b2)]
            raise HeadError(
                f"head weights do not chain to one value per prefix (shapes {shapes}); the "
                "head file is inconsistent: re-create it with `backplan verifier train`"
            )

    @property
    def n_embd(self) -> int:
        return self.metadata.n_embd

    @property
    def threshold(self) -> float:
        return self.metadata.threshold

    # -- evaluation ---------------------------------------------------------------------------
    def predict(self, hidden: np.ndarray) -> np.ndarray:
        """Values in [0, 1] for hidden states of shape (n, n_embd) (or (n_embd,))."""
        h = np.atleast_2d(hidden)
        if h.shape[1] != self.n_embd:
            raise HeadError(
                f"head expects hidden states of size {self.n_embd} but the model "
                f"gives {h.shape[1]}; use a head trained for this model"
            )
        if self.mean is not None and self.scale is not None:
            h = (h - self.mean) / self.scale
        if self.w1.shape[1] == 1:
            # a linear head: an element-wise product avoids initialising a BLAS library (whose
            # buffers cost more memory than a small model's whole KV cache)
            z = (h * self.w1[:, 0]).sum(axis=1, keepdims=True) + self.b1
        else:
            z = h @ self.w1 + self.b1
        if self.w2 is not None:
            z = np.maximum(z, 0.0) @ self.w2 + self.b2
        z = z.reshape(-1)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    @property
    def hidden_size(self) -> int:
        """The model's hidden size this head reads (``last+mean`` reads two side by side)."""
        return self.n_embd // 2 if self.metadata.features == "last+mean" else self.n_embd

    def check_model(self, n_embd: int, model_sha256: str | None = None) -> None:
        if n_embd != self.hidden_size:
            raise HeadError(
                f"this head was made for hidden size {self.hidden_size}, the model has "
                f"{n_embd}; pick a head trained for this model"
            )
        want = self.metadata.model_sha256
        if want and model_sha256 and want != model_sha256:
            raise HeadError(
                "this head was trained on another model file (sha256 "
                f"{want[:12]}..., the model is {model_sha256[:12]}...); "
                "pick the head that matches the model"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def constant(cls, n_embd: int, value: float = 0.99, **meta: object) -> ValueHead:
        """A head that always returns ``value``: never rejects; it still costs a head eval."""
        value = min(max(value, 1e-6), 1 - 1e-6)
        logit = float(np.log(value / (1 - value)))
        md = HeadMetadata(
            kind="constant",
            n_embd=n_embd,
            threshold=0.5,
            note="constant head: measures cost, never rejects",
            **meta,
        )  # type: ignore[arg-type]
        return cls(md, np.zeros((n_embd, 1), np.float32), np.array([logit], np.float32))

    @classmethod
    def fit_logistic(
        cls,
        hidden: np.ndarray,
        labels: np.ndarray,
        *,
        threshold: float = 0.5,
        c: float = 1.0,
        standardise: bool = True,
        **meta: object,
    ) -> ValueHead:
        """Fit a logistic-regression head (scikit-learn) on hidden states and 0/1 labels;
        ``standardise`` fits it on z-scored features and stores the mean and scale with it."""
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(hidden, dtype=np.float32)
        y = np.asarray(labels).astype(int)
        if len(np.unique(y)) < 2:
            raise HeadError("training a head needs both accepted and rejected examples")
        mean = scale = None
        if standardise:
            mean = x.mean(axis=0)
            scale = x.std(axis=0)
            scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
            x = (x - mean) / scale
        clf = LogisticRegression(C=c, max_iter=2000)
        clf.fit(x, y)
        md = HeadMetadata(kind="logistic", n_embd=x.shape[1], threshold=threshold, **meta)  # type: ignore[arg-type]
        return cls(md, clf.coef_.reshape(-1, 1), clf.intercept_.reshape(1), mean=mean, scale=scale)

    def with_metadata(self, metadata: HeadMetadata) -> ValueHead:
        """The same weights and standardisation under other metadata."""
        return ValueHead(
            metadata, self.w1, self.b1, self.w2, self.b2, mean=self.mean, scale=self.scale
        )

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file in the same folder, then rename)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "w1": self.w1,
            "b1": self.b1,
            "metadata": np.array(self.metadata.model_dump_json()),
        }
        if self.w2 is not None and self.b2 is not None:
            arrays["w2"], arrays["b2"] = self.w2, self.b2
        if self.mean is not None and self.scale is not None:
            arrays["mean"], arrays["scale"] = self.mean, self.scale
        with atomic_write(path, binary=True) as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | Path) -> ValueHead:
        path = Path(path)
        if not path.is_file():
            raise HeadError(f"head file {path} does not exist; pass the path of a .npz head")
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
            md = HeadMetadata.model_validate(json.loads(str(raw["metadata"])))
            w1, b1 = raw["w1"], raw["b1"]
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,  # a .npy file: np.load gives an array, not an archive
            EOFError,
            zipfile.BadZipFile,
            ValidationError,
        ) as exc:
            raise HeadError(
                f"{path} is not a valid backplan head file ({type(exc).__name__}); "
                "re-create it with `backplan verifier train`"
            ) from None
        if md.format_version != HEAD_FORMAT_VERSION:
            raise HeadError(
                f"{path} has head format {md.format_version}, this backplan reads "
                f"{HEAD_FORMAT_VERSION}; re-train or upgrade backplan"
            )
        return cls(
            md, w1, b1, raw.get("w2"), raw.get("b2"), mean=raw.get("mean"), scale=raw.get("scale")
        )
