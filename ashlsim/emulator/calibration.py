"""``ashlsim calibrate``: measure on this machine the software costs the simulator leaves out
by default, and write them into a scenario (``cluster.server.message_s`` and ``apply_s``).

A short emulation of the scenario under ASP (every push is applied on its own, so each cost
is seen alone) gives, per iteration, the real time around the worker's busy time: the work
message to the worker and its push back, serialized, through the sockets and the PS's loop.
Half of its median is the cost of one message. The PS's median time to apply one push is
``apply_s``. A simulation of the calibrated scenario then charges both (docs/SIM_VS_REAL.md
says how much closer to the emulator it comes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ps import emulate


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` measured (seconds; quartiles over ``iterations`` and ``applies``)."""

    message_s: float
    message_iqr: tuple[float, float]
    apply_s: float
    apply_iqr: tuple[float, float]
    iterations: int
    applies: int
    overrun_share: float  # iterations whose real maths took longer than the sampled compute
    math_s: float  # median real maths per iteration

    def report(self) -> str:
        def ms(x):
            return f"{1e3 * x:.3f} ms"

        lines = [
            f"message_s = {ms(self.message_s)} per message (half the real overhead of an "
            f"iteration; quartiles {ms(self.message_iqr[0])}-{ms(self.message_iqr[1])}, "
            f"{self.iterations} iterations)",
            f"apply_s = {ms(self.apply_s)} per push applied by the PS (quartiles "
            f"{ms(self.apply_iqr[0])}-{ms(self.apply_iqr[1])}, {self.applies} applications)",
            f"real maths: {ms(self.math_s)} per iteration (median); longer than the sampled "
            f"compute time in {100 * self.overrun_share:.1f} % of iterations",
        ]
        if self.overrun_share > 0.05:
            lines.append(
                "note: this machine cannot keep up with the scenario's compute times for the "
                "proxy model: an emulation will be slower than the scenario says"
            )
        return "\n".join(lines)


def calibrate(scenario, seconds: float = 5.0, seed: int = 0, **options):
    """(scenario with the measured costs, ``Calibration``): ``seconds`` of emulated ASP on
    ``scenario``'s cluster, on this machine."""
    probe = scenario.with_overrides(
        {
            "strategy": {"name": "asp"},
            "stop.time_s": float(seconds),
            "stop.target_accuracy": None,
            "faults": [],
        }
    )
    result = emulate(probe, seed=seed, **options)
    costs, server = result.tables["emulation"], result.tables["server"]
    if costs.empty or server.empty:  # nothing finished in so short a probe
        from ..errors import ScenarioError

        raise ScenarioError(
            "--seconds", seconds, "a probe long enough for iterations to finish (e.g. 5)"
        )
    half = costs["overhead_s"].to_numpy() / 2
    per_push = (server["apply_s"] / server["pushes"]).to_numpy()
    found = Calibration(
        message_s=float(np.median(half)),
        message_iqr=tuple(float(q) for q in np.quantile(half, [0.25, 0.75])),
        apply_s=float(np.median(per_push)),
        apply_iqr=tuple(float(q) for q in np.quantile(per_push, [0.25, 0.75])),
        iterations=len(costs),
        applies=len(server),
        overrun_share=float((costs["math_s"] > costs["compute_s"]).mean()),
        math_s=float(costs["math_s"].median()),
    )
    calibrated = scenario.with_overrides(
        {
            "cluster.server.message_s": round(found.message_s, 7),
            "cluster.server.apply_s": round(found.apply_s, 7),
        }
    )
    return calibrated, found
