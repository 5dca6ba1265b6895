"""The emulator: the same scenario and the same strategy classes on real processes.

``emulate(scenario, seed=...)`` starts one parameter server (this process) and N worker
processes that exchange real serialized parameters and deltas over TCP, and returns the same
``Result`` as ``ashlsim.run``, with times in measured seconds (docs/DESIGN.md section 10,
docs/SIM_VS_REAL.md for how far the simulator's predictions are from it). ``calibrate``
measures the software costs the simulator can then charge.

The names are loaded on first use: a worker process (``python -m ashlsim.emulator.worker``)
imports this package but needs none of the parameter server's code.
"""

__all__ = ["Emulation", "EmulationError", "calibrate", "emulate"]


def __getattr__(name):
    if name == "calibrate":
        from .calibration import calibrate

        return calibrate
    if name in __all__:
        from . import ps

        return getattr(ps, name)
    raise AttributeError(f"module 'ashlsim.emulator' has no attribute {name!r}")
