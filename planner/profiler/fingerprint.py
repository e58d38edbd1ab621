"""What machine and software a profile was measured on."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except OSError:
        pass
    return None


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(meter: dict[str, Any] | None = None) -> dict[str, Any]:
    """CPU, cores, RAM, GPU and driver (when measured through NVML), llama.cpp build, versions."""
    from runtime.engine.llama import gpu_offload_supported, system_info

    info = system_info()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "gpu_name": (meter or {}).get("gpu_name"),
        "gpu_driver": (meter or {}).get("driver"),
        "llama_cpp_gpu_offload": gpu_offload_supported(),
        "llama_cpp_system_info": info,
        "llama_cpp_features": [
            kv.split("=")[0].strip() for kv in info.split("|") if kv.strip().endswith("= 1")
        ],
        "packages": {
            p: _version(p)
            for p in ("backplan", "llama_cpp_python", "numpy", "pydantic", "nvidia-ml-py")
        },
    }
