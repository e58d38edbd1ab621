"""Measurement of this process: memory and energy meters (NVML, RAPL, CPU estimate)."""
