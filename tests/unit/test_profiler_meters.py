"""Meters: the real CPU path and NVML fallback on this machine; the GPU path with a fake NVML.

There is no GPU here, so the NVML path is exercised with ``FakeNvml``, a stand-in that
implements the part of pynvml's interface the meter uses (the test says so; nothing else is
faked). The fallback from the real pynvml to the CPU runs for real.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest

from runtime.telemetry.meters import CpuMeter, NvmlMeter, make_meter


class FakeNvml:
    """pynvml's interface, for a machine without a GPU: one device, this process on it."""

    class NVMLError(Exception):
        pass

    def __init__(self, used_bytes: int = 3 * 2**30, energy_mj: int = 1_000_000) -> None:
        self.used_bytes = used_bytes
        self.energy_mj = energy_mj
        self.shut = False

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> object:  # noqa: N802
        return ("dev", i)

    def nvmlDeviceGetName(self, h: object) -> bytes:  # noqa: N802
        return b"NVIDIA H100 80GB HBM3"

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "550.54.15"

    def nvmlDeviceGetComputeRunningProcesses(self, h: object) -> list[SimpleNamespace]:  # noqa: N802
        return [
            SimpleNamespace(pid=os.getpid(), usedGpuMemory=self.used_bytes),
            SimpleNamespace(pid=1, usedGpuMemory=10 * 2**30),
        ]

    def nvmlDeviceGetTotalEnergyConsumption(self, h: object) -> int:  # noqa: N802
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, h: object) -> int:  # noqa: N802
        return 300_000

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shut = True


def test_nvml_meter_reads_this_process_memory_and_energy_in_joules() -> None:
    nv = FakeNvml()
    meter = make_meter(gpu_offload=True, nvml=nv)
    assert isinstance(meter, NvmlMeter)
    assert meter.memory_source == "nvml" and meter.energy_source == "nvml"
    start = meter.read()
    assert start.memory_bytes == 3 * 2**30  # only our pid, not the other process
    nv.energy_mj += 2500
    nv.used_bytes = 5 * 2**30
    w = meter.window(start)
    assert w.energy_j == pytest.approx(2.5)
    assert w.peak_memory_bytes == 5 * 2**30
    assert meter.describe()["gpu_name"] == "NVIDIA H100 80GB HBM3"
    meter.close()
    assert nv.shut


def test_gpu_without_offloading_build_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        meter = make_meter(gpu_offload=False, nvml=FakeNvml())
    assert isinstance(meter, CpuMeter)
    assert "no GPU backend" in caplog.text


def test_real_nvml_on_this_machine_falls_back_to_cpu_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("pynvml")
    with caplog.at_level(logging.WARNING):
        meter = make_meter()
    assert isinstance(meter, CpuMeter)  # no GPU on this machine: NVML cannot initialise
    lines = [r for r in caplog.records if "no GPU measurement" in r.getMessage()]
    assert len(lines) == 1
    assert "measuring on the CPU" in lines[0].getMessage()


def test_cpu_meter_sees_memory_and_labels_estimated_energy() -> None:
    meter = CpuMeter(watts_per_core=10.0)
    start = meter.read()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    float(block.sum())
    w = meter.window(start)
    assert w.memory_bytes - start.memory_bytes > 32 * 2**20
    assert w.peak_memory_bytes >= w.memory_bytes
    if meter.energy_source == "estimate":
        assert w.energy_j == pytest.approx(w.cpu_s * 10.0, rel=1e-6)
        assert "estimate" in meter.describe()["energy_estimate"]
    del block
