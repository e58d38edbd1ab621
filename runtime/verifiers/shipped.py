"""The value heads shipped with backplan (``runtime/verifiers/heads/``) and head references.

A head reference is a head file, ``shipped`` (the head shipped for this main model, read by
itself or by a verifier model) or ``constant`` (a head that never rejects: to measure cost).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtime.errors import HeadError

if TYPE_CHECKING:
    from runtime.engine.llama import Model
    from runtime.verifiers.head import ValueHead

HEADS_DIR = Path(__file__).parent / "heads"


def _registry_name(model: Model) -> str | None:
    from runtime.models.registry import registry_name

    return registry_name(model.path)


def shipped_head_path(main: Model, reader: Model | None = None) -> Path | None:
    """The head shipped for ``main``'s tokens read by ``reader`` (None: ``main`` itself).

    A reader with the main model's own weights gives the latent head's scores (the same
    hidden states), so it uses the latent head.
    """
    if reader is None or reader.path == main.path:
        return shipped_head_for(_registry_name(main))
    reader_name = _registry_name(reader)
    return shipped_head_for(_registry_name(main), reader_name) if reader_name else None


def shipped_head_for(main_name: str | None, reader_name: str | None = None) -> Path | None:
    """By registry names: ``<main>-latent.npz`` or ``<main>-by-<reader>.npz`` if shipped."""
    if main_name is None:
        return None
    if reader_name is None or reader_name == main_name:
        stem = f"{main_name}-latent"
    else:
        stem = f"{main_name}-by-{reader_name}"
    path = HEADS_DIR / f"{stem}.npz"
    return path if path.is_file() else None


def load_head(ref: str, n_embd: int, what: str, shipped: Path | None = None) -> ValueHead:
    """The head ``ref`` names, checked against a model of hidden size ``n_embd``."""
    from runtime.verifiers.head import ValueHead

    if ref == "shipped":
        if shipped is None:
            raise HeadError(
                f"no trained head is shipped for {what} on this model; pass one as "
                f"'{what}=PATH.npz' (backplan verifier train makes one), or "
                f"'{what}=constant' to measure cost without rejecting"
            )
        ref = str(shipped)
    if ref == "constant":
        return ValueHead.constant(n_embd)
    head = ValueHead.load(Path(ref))
    head.check_model(n_embd)
    return head
