"""The host times the README quotes, measured: each command run afresh (its own empty output
folder, so no sweep reuses a run), wall seconds and CPU seconds (user + system, of the command
and every process it started), on this machine, with its CPU model.

    python benchmarks/readme_times.py                 # every command but the long ones
    python benchmarks/readme_times.py --only main_job,heterogeneity
    python benchmarks/readme_times.py --long          # also the ones of many minutes

Run it on an idle machine: the figures are for one command at a time. The README quotes the
wall time rounded up, and the CPU time where it differs much (a process pool uses every core).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from speed import cpu_model  # noqa: E402


def _script(name: str, *extra: str) -> list[str]:
    """The command that runs ``experiments/NAME.py`` into ``{out}``."""
    return [sys.executable, f"experiments/{name}.py", *extra, "--out", "{out}"]


# name -> (command, with {out} for an output folder; what the README claims; long?)
COMMANDS = {
    "main_job": (["ashlsim", "compare", "--out", "{out}", "--quiet"], "45 s", False),
    "main_job_no_checks": (
        ["ashlsim", "compare", "--out", "{out}", "--quiet", "--robustness", "none"], "25 s", False),
    "speed_spread_sweep": (
        ["ashlsim", "sweep", "experiments/sweeps/speed_spread.yaml", "--out", "{out}",
         "--no-progress"], "5.5 s", False),
    "workers_timing_sweep": (
        ["ashlsim", "sweep", "experiments/sweeps/workers_timing.yaml", "--out", "{out}",
         "--no-progress"], "8 s", False),
    "heterogeneity": (_script("heterogeneity"), "32 s", False),
    "breakdown": (_script("breakdown"), "4 s", False),
    "network_bound": (_script("network_bound"), "9 s", False),
    "compression": (_script("compression"), "25 s", False),
    "staleness": (_script("staleness"), "45 s", False),
    "validate": (_script("validate"), "6 s", False),
    "ashl_ablation": (_script("ashl_ablation"), "100 s", True),
    "convergence": (_script("convergence"), "2 min", True),
    "fidelity": (_script("fidelity"), "6 min", True),
    "paper_reproduction": (_script("paper_reproduction"), "13 min", True),
    "sim_vs_real": (_script("sim_vs_real", "--seeds", "2"), "12 min", True),
}  # fmt: skip


def measure(command: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the command's processes, exit status)."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [part.replace("{out}", str(Path(tmp) / "out")) for part in command]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "MPLBACKEND": "Agg"}, check=False)  # fmt: skip
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(done.stderr.decode(errors="replace")[-2000:], file=sys.stderr)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(COMMANDS))
    parser.add_argument("--long", action="store_true", help="also the commands of many minutes")
    args = parser.parse_args()
    names = (
        args.only.split(",")
        if args.only
        else [name for name, (_, _, long) in COMMANDS.items() if args.long or not long]
    )
    print(f"# {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| command | README says | wall s | CPU s | exit |")
    print("|---|---|---|---|---|")
    for name in names:
        command, claim, _ = COMMANDS[name]
        wall, cpu, status = measure(command)
        shown = " ".join(command).replace(sys.executable, "python")
        print(f"| `{shown}` | {claim} | {wall:.1f} | {cpu:.1f} | {status} |", flush=True)


if __name__ == "__main__":
    main()
