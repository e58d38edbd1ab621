"""backplan runtime: llama.cpp engine, verifiers, backtracking samplers.

The runtime never imports the planner. Nothing here does work at import time.
"""

__all__: list[str] = []
