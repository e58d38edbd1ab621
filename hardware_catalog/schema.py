"""Pydantic models of the hardware catalogue.

Every entry carries ``sources``: what each figure group rests on (``what``), where it comes from
(``url``: a URL, or the name of a document when there is no stable URL) and when it was read
(``as_of``). Validators require the source topics each entity needs (a GPU needs ``specs`` and
``price``; a region needs ``energy_price`` and ``carbon``; ...), so a figure cannot enter the
catalogue without saying where it came from.

Units live in field names: ``_gb`` (10^9 bytes), ``_gb_s`` (10^9 bytes per second), ``_w``
(watts), ``_tflops`` / ``_tops`` (10^12 operations per second), ``_b`` (10^9 parameters),
``_g_per_kwh`` (grams CO2-equivalent per kWh). Money is an ``amount`` with its ``currency``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CATALOG_SCHEMA_VERSION = 1

Currency = Literal["USD", "EUR", "GBP", "JPY", "CHF", "SEK", "NOK", "DKK"]
PriceKind = Literal["list", "street", "estimate"]
SourceTopic = Literal[
    "specs",  # datasheet figures: memory, bandwidth, board power, form factor, cores
    "compute",  # dense FP16/BF16 and INT8 throughput
    "idle_power",  # idle draw
    "power",  # power under load where it is not on the datasheet (systems, hosts)
    "price",  # purchase price
    "architecture",  # model config.json figures
    "file_size",  # GGUF bytes
    "quality",  # benchmark scores
    "training",  # pretraining token counts
    "energy_price",  # electricity price
    "carbon",  # grid carbon intensity
    "pue",  # power usage effectiveness
    "fx",  # exchange rates
]
Vendor = Literal["nvidia", "amd", "apple", "intel"]
GpuKind = Literal["consumer", "workstation", "datacenter", "apple_unified"]
FormFactor = Literal["pcie", "sxm", "oam", "system"]
Quant = Literal["F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_1", "Q4_0", "Q3_K_M"]
REQUIRED_QUANTS: tuple[Quant, ...] = ("Q4_K_M", "Q8_0", "F16")

_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
EntryId = Annotated[str, Field(pattern=_ID_PATTERN, max_length=80)]
Positive = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where one group of figures comes from."""

    what: SourceTopic
    url: str = Field(min_length=3, description="URL, or the name of a document")
    as_of: date
    note: str | None = Field(default=None, description="how the figure was read or computed")


class Price(_Strict):
    """A price with its currency, its nature and its date."""

    amount: Positive
    currency: Currency
    kind: PriceKind = Field(description="list: vendor MSRP; street: retail; estimate: ours")
    as_of: date
    note: str | None = None


class _Sourced(_Strict):
    """An entry with an id and sources; subclasses name the topics they must cover."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ()

    id: EntryId
    sources: list[Source] = Field(min_length=1)

    def topics(self) -> set[str]:
        return {s.what for s in self.sources}

    def sources_for(self, topic: SourceTopic) -> list[Source]:
        return [s for s in self.sources if s.what == topic]

    @field_validator("sources")
    @classmethod
    def _check_required_topics(cls, sources: list[Source]) -> list[Source]:
        present = {s.what for s in sources}
        missing = [t for t in cls.required_topics if t not in present]
        if missing:
            raise ValueError(
                f"must include a source with what={', '.join(repr(m) for m in missing)}"
            )
        return sources


class Gpu(_Sourced):
    """An accelerator, or a unified-memory system (``form_factor: system``) priced whole."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("specs", "price")

    name: str = Field(min_length=2)
    aliases: list[str] = Field(default_factory=list)
    vendor: Vendor
    kind: GpuKind
    architecture: str
    launch_year: int = Field(ge=2015, le=2035)
    memory_gb: Positive
    memory_type: str
    memory_bandwidth_gb_s: Positive
    fp16_dense_tflops: Positive = Field(
        description="peak dense FP16/BF16 matrix throughput, no sparsity, FP32 accumulate where "
        "the vendor distinguishes (GeForce cards run FP16 accumulate at twice this rate)"
    )
    int8_dense_tops: Positive | None = Field(default=None, description="dense, no sparsity")
    compute_units: int | None = Field(
        default=None,
        gt=0,
        description="streaming multiprocessors (NVIDIA), compute units (AMD), Xe cores "
        "(Intel) or GPU cores (Apple); required for NVIDIA and AMD, whose batch-1 decode "
        "speed the planner bounds by what these units can stream",
    )
    boost_clock_ghz: Positive | None = Field(
        default=None, description="the units' boost (or peak engine) clock; with compute_units"
    )
    board_power_w: Positive = Field(description="TDP/TBP; whole-system max for systems")
    idle_power_w: Positive
    form_factor: FormFactor
    slots: int | None = Field(default=None, ge=1, le=4, description="PCIe slot width")
    interconnect: str | None = None
    usable_memory_gb: Positive | None = Field(
        default=None, description="memory the GPU may use when less than memory_gb (unified)"
    )
    cpu_cores: int | None = Field(
        default=None, gt=0, description="a system's CPU cores (they run sandboxed checks)"
    )
    price: Price
    notes: str | None = None

    @property
    def is_system(self) -> bool:
        """True when the price and power cover a whole computer (no host share to add)."""
        return self.form_factor == "system"

    @property
    def gpu_memory_gb(self) -> float:
        """Memory a model may occupy: ``usable_memory_gb`` when set, else ``memory_gb``."""
        return self.usable_memory_gb if self.usable_memory_gb is not None else self.memory_gb

    @model_validator(mode="after")
    def _check_consistency(self) -> Gpu:
        if self.idle_power_w >= self.board_power_w:
            raise ValueError("idle_power_w must be below board_power_w")
        if self.usable_memory_gb is not None and self.usable_memory_gb > self.memory_gb:
            raise ValueError("usable_memory_gb cannot exceed memory_gb")
        if self.form_factor == "pcie" and self.slots is None:
            raise ValueError("slots is required for a PCIe card")
        if (self.kind == "apple_unified") != (self.form_factor == "system"):
            raise ValueError("kind apple_unified goes with form_factor system, and only it")
        if self.vendor in ("nvidia", "amd") and (
            self.compute_units is None or self.boost_clock_ghz is None
        ):
            raise ValueError(
                "compute_units and boost_clock_ghz are required for NVIDIA and AMD GPUs "
                "(their datasheet's SM/CU count and boost clock)"
            )
        return self


class Host(_Sourced):
    """A CPU-only inference host, priced and powered as a whole machine."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("specs", "price", "power")

    name: str = Field(min_length=2)
    aliases: list[str] = Field(default_factory=list)
    kind: Literal["desktop", "workstation", "server"]
    cpu: str
    sockets: int = Field(default=1, ge=1, le=8)
    cores: int = Field(gt=0, description="physical cores, all sockets")
    threads: int = Field(gt=0)
    memory_channels: int = Field(gt=0, description="all sockets")
    memory_type: str
    memory_bandwidth_gb_s: Positive = Field(description="theoretical peak, all sockets")
    ram_gb: Positive
    fp32_peak_tflops: Positive | None = Field(default=None, description="vector FMA peak")
    board_power_w: Positive = Field(description="whole machine at the wall under load")
    idle_power_w: Positive
    price: Price
    notes: str | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> Host:
        if self.idle_power_w >= self.board_power_w:
            raise ValueError("idle_power_w must be below board_power_w")
        if self.threads < self.cores:
            raise ValueError("threads cannot be fewer than cores")
        return self


class HostComponent(_Strict):
    part: Literal["chassis", "cpu", "motherboard", "ram", "storage", "nic", "psu", "other"]
    description: str
    amount: Positive


class HostShare(_Sourced):
    """The machine around the GPUs: its price and draw, shared out per GPU slot."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("price", "power")

    name: str = Field(min_length=2)
    gpu_slots: int = Field(ge=1, le=16)
    form_factors: list[FormFactor] = Field(min_length=1)
    components: list[HostComponent] = Field(default_factory=list)
    cpu_cores: int | None = Field(
        default=None, gt=0, description="physical CPU cores, all sockets (run sandboxed checks)"
    )
    price: Price = Field(description="the host without GPUs")
    power_w: Positive = Field(description="host draw without GPUs under load")
    idle_power_w: Positive
    notes: str | None = None

    @property
    def price_per_slot(self) -> float:
        """Host price per GPU slot, in ``price.currency``."""
        return self.price.amount / self.gpu_slots

    @property
    def power_per_slot_w(self) -> float:
        return self.power_w / self.gpu_slots

    @property
    def idle_power_per_slot_w(self) -> float:
        return self.idle_power_w / self.gpu_slots

    @model_validator(mode="after")
    def _check_consistency(self) -> HostShare:
        if self.idle_power_w >= self.power_w:
            raise ValueError("idle_power_w must be below power_w")
        if self.components:
            total = sum(c.amount for c in self.components)
            if abs(total - self.price.amount) > 0.01 * self.price.amount:
                raise ValueError(
                    f"components add up to {total:g}, price.amount is {self.price.amount:g}"
                )
        return self


class Region(_Sourced):
    """An electricity market: price per kWh and grid carbon intensity."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("energy_price", "carbon")

    name: str = Field(min_length=2)
    aliases: list[str] = Field(default_factory=list)
    country: str = Field(
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        description="ISO 3166-1 code, ISO 3166-2 for a subdivision (US-CA); EU for the Union",
    )
    price_per_kwh: Positive
    currency: Currency
    tariff: Literal["non_household", "commercial", "industrial", "household"]
    price_kind: Literal["published", "estimate"]
    carbon_g_per_kwh: float = Field(ge=0, le=2000)
    carbon_kind: Literal["published", "estimate"]
    notes: str | None = None


class PuePreset(_Sourced):
    """A power usage effectiveness preset: facility power / IT power."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("pue",)

    name: str = Field(min_length=2)
    pue: float = Field(ge=1.0, le=3.0)
    description: str


class FxRate(_Sourced):
    """How many US dollars one unit of ``id`` (a currency code, lower case) buys."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("fx",)

    usd_per_unit: Positive

    @property
    def currency(self) -> str:
        return self.id.upper()


class ModelEntry(_Sourced):
    """A model family member: what memory and speed need, and what quality it buys."""

    required_topics: ClassVar[tuple[SourceTopic, ...]] = ("architecture", "file_size")

    name: str = Field(min_length=2)
    aliases: list[str] = Field(default_factory=list)
    family: str
    size_label: str = Field(description="as the family names it: 0.5B, 135M, ...")
    params_b: Positive
    n_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int | None = Field(default=None, gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    ctx_train: int = Field(gt=0, description="max_position_embeddings of config.json")
    tied_embeddings: bool
    gguf_bytes: dict[Quant, int]
    humaneval_pass1_base: float | None = Field(default=None, ge=0, le=1, description="fraction")
    humaneval_pass1_instruct: float | None = Field(default=None, ge=0, le=1)
    pretraining_tokens_t: Positive | None = Field(default=None, description="10^12 tokens")
    notes: str | None = None

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0) -> float:
        """KV-cache bytes one token of context costs (keys and values, all layers)."""
        return 2.0 * self.n_layers * self.n_kv_heads * self.head_dim * bytes_per_element

    @model_validator(mode="after")
    def _check_consistency(self) -> ModelEntry:
        if self.n_heads % self.n_kv_heads:
            raise ValueError("n_heads must be a multiple of n_kv_heads")
        missing = [q for q in REQUIRED_QUANTS if q not in self.gguf_bytes]
        if missing:
            raise ValueError(f"gguf_bytes lacks {', '.join(missing)}")
        for quant, size in self.gguf_bytes.items():
            if size <= 0:
                raise ValueError(f"gguf_bytes[{quant}] must be positive")
        published = (self.humaneval_pass1_base, self.humaneval_pass1_instruct)
        if any(v is not None for v in published) and "quality" not in self.topics():
            raise ValueError("a HumanEval score needs a source with what='quality'")
        if self.pretraining_tokens_t is not None and "training" not in self.topics():
            raise ValueError("pretraining_tokens_t needs a source with what='training'")
        return self


def normalise_name(text: str) -> str:
    """Lower-case ``text`` and drop everything but letters and digits ("RTX-4090" -> "rtx4090")."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())
