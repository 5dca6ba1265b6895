"""Progress on the terminal, with one library (tqdm): a run's simulated seconds, a comparison's
or a sweep's runs. Quiet when stderr is not a terminal (a pipe, CI, a log file) or when asked;
the line is cleared when the work ends (the command then says how it ended: a run's summary
opens with ``stopped: target_accuracy at 31.2 simulated s``)."""

from __future__ import annotations

import sys


def _bar(total, unit: str, label: str, enabled: bool):
    from tqdm.auto import tqdm  # notebook-aware

    return tqdm(total=total, unit=unit, desc=label, leave=False, dynamic_ncols=True,
                disable=not enabled, file=sys.stderr, mininterval=0.25)  # fmt: skip


class RunProgress:
    """Simulated seconds of one run against its time limit (``__call__(now)`` from the run's
    observer)."""

    def __init__(self, limit_s: float | None, label: str, quiet: bool = False):
        self.enabled = bool(limit_s) and not quiet and sys.stderr.isatty()
        self.bar = _bar(limit_s or 0.0, "sim s", label, self.enabled)
        self.done = 0.0

    def __call__(self, now: float) -> None:
        if self.enabled and now > self.done:
            self.bar.update(now - self.done)
            self.done = now

    def close(self) -> None:
        self.bar.close()


class CountProgress:
    """Runs done out of ``total`` (``__call__(label)`` before each, ``close()`` at the end)."""

    def __init__(self, total: int, label: str = "runs", quiet: bool = False):
        self.enabled = total > 0 and not quiet and sys.stderr.isatty()
        self.bar = _bar(total, "run", label, self.enabled)
        self.started = False

    def __call__(self, label: str | None = None) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        if label is not None:
            self.bar.set_postfix_str(label, refresh=False)

    def finished(self) -> None:
        """One run ended (for callers that report ends rather than starts)."""
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class FinishedProgress:
    """Runs finished out of the runs announced so far: ``expect(n)`` announces a batch,
    ``__call__(label, seed)`` reports one finished (``compare.Runner``'s protocol)."""

    def __init__(self, label: str = "runs", quiet: bool = False):
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = _bar(0, "run", label, self.enabled)

    def expect(self, runs: int) -> None:
        self.bar.total += runs
        self.bar.refresh()

    def __call__(self, label: str, seed: int) -> None:
        self.bar.set_postfix_str(f"last done: {label} seed {seed}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
