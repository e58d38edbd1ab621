"""Memory and energy meters behind one interface: NVML on an NVIDIA GPU, else the CPU.

``make_meter()`` picks NVML when a GPU is visible *and* the llama.cpp build offloads to it;
otherwise it falls back to the CPU meter and logs one line saying why. On a CPU, memory is the
process's resident set (``/proc/self/status``), energy comes from RAPL (powercap) where it is
readable, and otherwise is an estimate from CPU time x watts per core, always labelled as an
estimate. Vendor errors are translated here; callers never see pynvml's exceptions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

EnergySource = Literal["nvml", "rapl", "estimate"]
MemorySource = Literal["nvml", "rss"]

#: Documented default for the CPU energy estimate: watts drawn per busy core. A server core
#: under a dense matmul load draws roughly 5-15 W (package TDP / cores); 10 W is the midpoint.
DEFAULT_WATTS_PER_CORE = 10.0

_RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
_RAPL_MAX = Path("/sys/class/powercap/intel-rapl:0/max_energy_range_uj")


@dataclass(frozen=True)
class Reading:
    """A point-in-time reading; energy is cumulative since an arbitrary origin."""

    t_s: float
    memory_bytes: int
    peak_memory_bytes: int
    energy_j: float
    cpu_s: float


@dataclass(frozen=True)
class Window:
    """What happened between two readings."""

    elapsed_s: float
    energy_j: float
    cpu_s: float
    memory_bytes: int
    peak_memory_bytes: int


class Meter(ABC):
    """Reads memory and energy of this process on one device."""

    device: str = "cpu"
    memory_source: MemorySource = "rss"
    energy_source: EnergySource = "estimate"

    @property
    def energy_is_estimate(self) -> bool:
        return self.energy_source == "estimate"

    @abstractmethod
    def read(self) -> Reading: ...

    def window(self, start: Reading) -> Window:
        end = self.read()
        return Window(
            elapsed_s=end.t_s - start.t_s,
            energy_j=max(0.0, end.energy_j - start.energy_j),
            cpu_s=end.cpu_s - start.cpu_s,
            memory_bytes=end.memory_bytes,
            peak_memory_bytes=end.peak_memory_bytes,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "memory_source": self.memory_source,
            "energy_source": self.energy_source,
        }

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release vendor handles."""


def _proc_status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class CpuMeter(Meter):
    """Resident memory; RAPL energy where readable, else CPU time x watts per core (estimate)."""

    device = "cpu"
    memory_source: MemorySource = "rss"

    def __init__(self, watts_per_core: float = DEFAULT_WATTS_PER_CORE) -> None:
        self.watts_per_core = watts_per_core
        self._rapl_wrap = 0
        self._rapl_last = -1
        self._rapl_offset = 0
        if self._rapl_raw() is not None:
            self.energy_source = "rapl"
            try:
                self._rapl_wrap = int(_RAPL_MAX.read_text())
            except (OSError, ValueError):
                self._rapl_wrap = 0
        else:
            self.energy_source = "estimate"

    @staticmethod
    def _rapl_raw() -> int | None:
        try:
            return int(_RAPL.read_text())
        except (OSError, ValueError):
            return None

    def _energy_j(self, cpu_s: float) -> float:
        if self.energy_source == "rapl":
            raw = self._rapl_raw()
            if raw is not None:
                if self._rapl_last >= 0 and raw < self._rapl_last and self._rapl_wrap:
                    self._rapl_offset += self._rapl_wrap
                self._rapl_last = raw
                return (raw + self._rapl_offset) / 1e6
        return cpu_s * self.watts_per_core

    def read(self) -> Reading:
        cpu = _cpu_s()
        rss = _proc_status_kb("VmRSS") * 1024
        hwm = _proc_status_kb("VmHWM") * 1024
        if not hwm:
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return Reading(
            t_s=time.perf_counter(),
            memory_bytes=rss,
            peak_memory_bytes=hwm,
            energy_j=self._energy_j(cpu),
            cpu_s=cpu,
        )

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.energy_source == "estimate":
            out["energy_estimate"] = (
                f"CPU seconds x {self.watts_per_core:g} W per busy core "
                "(no RAPL here): an estimate, not a measurement"
            )
        return out


class NvmlMeter(Meter):
    """NVML: this process's GPU memory, and the device's total-energy counter."""

    device = "gpu"
    memory_source: MemorySource = "nvml"
    energy_source: EnergySource = "nvml"

    def __init__(self, nvml: Any, index: int = 0) -> None:
        self._nvml = nvml
        self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
        self.name = _text(nvml.nvmlDeviceGetName(self._handle))
        self.driver = _text(nvml.nvmlSystemGetDriverVersion())
        self.device = f"gpu:{index} {self.name}"
        self._peak = 0
        self._pid = os.getpid()
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except nvml.NVMLError:
            self.energy_source = "estimate"

    def _process_memory(self) -> int:
        nv = self._nvml
        try:
            procs = nv.nvmlDeviceGetComputeRunningProcesses(self._handle)
        except nv.NVMLError:
            return 0
        used = sum(int(p.usedGpuMemory or 0) for p in procs if p.pid == self._pid)
        return used

    def read(self) -> Reading:
        nv = self._nvml
        mem = self._process_memory()
        self._peak = max(self._peak, mem)
        if self.energy_source == "nvml":
            energy = nv.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3  # mJ -> J
        else:
            watts = nv.nvmlDeviceGetPowerUsage(self._handle) / 1e3
            energy = watts * time.perf_counter()  # crude: power now x time; labelled estimate
        return Reading(
            t_s=time.perf_counter(),
            memory_bytes=mem,
            peak_memory_bytes=self._peak,
            energy_j=energy,
            cpu_s=_cpu_s(),
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "gpu_name": self.name, "driver": self.driver}

    def close(self) -> None:
        with contextlib.suppress(Exception):  # shutting down a vendor library: nothing to do
            self._nvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def make_meter(
    *,
    prefer_gpu: bool = True,
    gpu_offload: bool | None = None,
    watts_per_core: float = DEFAULT_WATTS_PER_CORE,
    nvml: Any = None,
    announce: bool = True,
) -> Meter:
    """NVML when a GPU is there and llama.cpp offloads to it; else the CPU, saying why once.

    ``nvml`` lets tests hand in a fake module with pynvml's interface (there is no GPU here).
    """
    if prefer_gpu:
        reason = None
        if nvml is None:
            try:
                import pynvml as nvml_mod
            except ImportError:
                nvml_mod = None
                reason = "nvidia-ml-py is not installed"
            nvml = nvml_mod
        if nvml is not None:
            try:
                nvml.nvmlInit()
                count = nvml.nvmlDeviceGetCount()
            except Exception as exc:  # noqa: BLE001 - pynvml raises NVMLError subclasses
                reason = f"NVML unavailable ({exc})"
                count = 0
            if count and gpu_offload is False:
                reason = "a GPU is present but this llama.cpp build has no GPU backend"
            elif count:
                meter = NvmlMeter(nvml, 0)
                if announce:
                    log.info("measuring on %s through NVML", meter.device)
                return meter
            elif reason is None:
                reason = "NVML found no GPU"
        if announce:
            log.warning(
                "no GPU measurement: %s; measuring on the CPU (resident memory, %s energy)",
                reason,
                "RAPL" if CpuMeter._rapl_raw() is not None else "estimated",
            )
    return CpuMeter(watts_per_core)
