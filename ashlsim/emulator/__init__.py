"""The emulator: the same scenario and the same strategy classes on real processes.

``emulate(scenario, seed=...)`` starts one parameter server (this process) and N worker
processes that exchange real serialized parameters and deltas over TCP, and returns the same
``Result`` as ``ashlsim.run``, with times in measured seconds (docs/DESIGN.md section 10,
docs/SIM_VS_REAL.md for how far the simulator's predictions are from it).
"""

from .ps import Emulation, EmulationError, emulate

__all__ = ["Emulation", "EmulationError", "emulate"]
