"""The profiler: measure memory, compute, decode speed and energy of runtime configurations.

Public API: :func:`run_profile` with a :class:`ProfileRequest`, :func:`load_profile`,
:func:`profile_frame` (pandas) and the meters behind :func:`make_meter`.
"""

from planner.profiler.frame import profile_frame
from planner.profiler.runner import CONFIGS, ProfileRequest, run_profile
from planner.profiler.schema import PROFILE_SCHEMA_VERSION, Profile, ProfileError, load_profile
from runtime.telemetry.meters import CpuMeter, Meter, NvmlMeter, make_meter

__all__ = [
    "CONFIGS",
    "PROFILE_SCHEMA_VERSION",
    "CpuMeter",
    "Meter",
    "NvmlMeter",
    "Profile",
    "ProfileError",
    "ProfileRequest",
    "load_profile",
    "make_meter",
    "profile_frame",
    "run_profile",
]
