"""What a run records as it goes, in one place handed to whoever writes it."""

from __future__ import annotations


class RunRecords:
    """The records of one run, written as it happens and read by ``Result.from_simulation``:

    - ``history``: one row (a dict) per evaluation of the global model (the observer);
    - ``events``: pull/compute/push/wait intervals and faults, when asked for (``log`` is then
      the function that adds one: ``log(worker, kind, start, end)``; else None);
    - ``stage_changes``: one row per change of a scheme's stage (the strategy port);
    - ``faults``: one row per injected fault, with its effect (``faults.inject_fault``);
    - ``bytes_up``, ``bytes_down``: the cluster's byte totals (each worker's ``Recorder``);
    - ``samples``: samples in the pushes that arrived at the PS;
    - ``eval_host_s``: host seconds spent evaluating the global model (observation, not
      simulation: benchmarks subtract it).
    """

    def __init__(self, events: bool):
        self.history: list[dict] = []
        self.events: list[tuple] | None = [] if events else None
        self.log = self._log if events else None
        self.stage_changes: list[dict] = []
        self.faults: list[dict] = []
        self.bytes_up = self.bytes_down = 0
        self.samples = 0
        self.eval_host_s = 0.0

    def _log(self, worker, kind, start, end) -> None:
        self.events.append((worker, kind, start, end))
