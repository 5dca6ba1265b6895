"""Where the cost per worker-iteration grows with N: cache misses per iteration, by kind of work,
counted by valgrind's cachegrind on a row of ``scaling.py`` (by default timing-only ASP through
an uncontended PS card).

    python benchmarks/cachemiss.py [--sizes 16,10000] [--cache-kb 1024] [--iterations 120000]
                                   [--scheme asp] [--model none-free]

Needs ``valgrind`` (with ``cg_diff``) on the PATH; 2.5 minutes at the defaults. For each N
the scenario of ``scaling.py`` (``--model``: ``none-free``, or ``none`` through a contended
card) runs twice under cachegrind, a short run and
one about ``--iterations`` worker-iterations longer; the difference of the two, divided by the
iterations between them, is the steady state without start-up. The simulated data cache has
``--cache-kb`` (default: a core's L2 on the machines we measure, 1 MB): a miss there goes to L3
or memory, which is what makes an iteration dearer at large N. Misses are grouped by the
CPython functions they happen in:

- ``heap``: sifts of the event queue and of the network's heaps (``heapq`` and the comparisons
  of their entries);
- ``interpreter``: the bytecode loop and attribute reads: the workers' objects and values;
- ``memory``: allocation and freeing (an old object freed is a cold line too);
- ``gc``: the cycle collector's scans (``benchmarks/gctime.py`` times them);
- ``numpy`` and ``other``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

RUN = f"""
import sys
sys.path.insert(0, {HERE!r})
import scaling
from ashlsim import Simulation
n, scheme, model, time_s = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
sim = Simulation(scaling.scenario(n, scheme, model, time_s))
sim.run()
print(sum(w.stats.iterations for w in sim.workers))
"""

KINDS = [
    ("gc", re.compile(r"gc_collect|visit_|IS_GC|traverse|_PyTuple_MaybeUntrack")),
    ("heap", re.compile(r"heap|siftup|siftdown|[Rr]ichCompare|richcompare")),
    ("memory", re.compile(r"Malloc|Free|alloc|dealloc|UnTrack|NewReference|FromDouble|_New")),
    ("numpy", re.compile(r"aligned|strided|bincount|simd|_cast_|arr_")),
    ("interpreter", re.compile(r"EvalFrame|Attr|Member|member_get|Frame|Lookup|GetMethod|call")),
]


def kind(function: str) -> str:
    for name, pattern in KINDS:
        if pattern.search(function):
            return name
    return "other"


def cachegrind(n: int, scheme: str, model: str, time_s: float, cache_kb: int, out: str) -> int:
    """Run the scenario under cachegrind; the worker-iterations it made."""
    script = os.path.join(os.path.dirname(out), "run.py")  # (a file: cachegrind writes the
    with open(script, "w") as f:  # command line into its output, one line)
        f.write(RUN)
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=yes",
        f"--D1={cache_kb * 1024},16,64",
        f"--cachegrind-out-file={out}",
        sys.executable,
        script,
        str(n),
        scheme,
        model,
        str(time_s),
    ]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return int(done.stdout.split()[-1])


def per_function(path: str) -> tuple[list[str], dict[str, list[int]]]:
    """Event names and, per function, the summed counts of a cachegrind (or cg_diff) file."""
    events: list[str] = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * len(events))
    function = "???"
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("fn="):
                function = line[3:].strip()
            elif line[:1].isdigit() or line[:1] == "-":
                counts = [int(x) for x in line.split()[1:]]
                row = totals[function]
                for i, c in enumerate(counts):
                    row[i] += c
    return events, totals


def steady(n: int, scheme: str, model: str, iterations: int, cache_kb: int, tmp: str):
    """Per-iteration counts of the steady state at ``n`` workers, by kind and in total."""
    # the short run builds the workers and starts them; a worker-iteration of this scenario
    # takes about 0.035 simulated s
    short_s = 0.1
    long_s = short_s + 0.035 * iterations / n
    files = [os.path.join(tmp, f"{n}-{w}.out") for w in ("short", "long")]
    pushes = [
        cachegrind(n, scheme, model, t, cache_kb, f)
        for t, f in zip((short_s, long_s), files, strict=True)
    ]
    diff = os.path.join(tmp, f"{n}.diff")
    with open(diff, "w") as out:
        subprocess.run(["cg_diff", *files], stdout=out, check=True)
    events, totals = per_function(diff)
    its = pushes[1] - pushes[0]
    col = {e: i for i, e in enumerate(events)}
    row: dict[str, float] = defaultdict(float)
    row["iterations"] = its
    for function, counts in totals.items():
        row["instructions"] += counts[col["Ir"]] / its
        row["data refs"] += (counts[col["Dr"]] + counts[col["Dw"]]) / its
        misses = (counts[col["D1mr"]] + counts[col["D1mw"]]) / its
        row["misses"] += misses
        row[kind(function)] += misses
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,10000")
    parser.add_argument("--cache-kb", type=int, default=1024)
    parser.add_argument("--iterations", type=int, default=120_000)
    parser.add_argument("--scheme", default="asp")
    parser.add_argument(
        "--keep", metavar="DIR", help="keep cachegrind's files there (N.diff: per function)"
    )
    parser.add_argument("--model", default="none-free", help="a scaling.py model: none-free, none")
    args = parser.parse_args(argv)
    missing = [t for t in ("valgrind", "cg_diff") if shutil.which(t) is None]
    if missing:
        print(f"cachemiss.py needs {' and '.join(missing)} on the PATH", file=sys.stderr)
        return 2
    kinds = [name for name, _ in KINDS] + ["other"]
    print(f"misses of a {args.cache_kb} kB data cache per worker-iteration "
          f"({args.scheme}, {args.model})")  # fmt: skip
    print(f"{'N':>6} {'iterations':>10} {'instructions':>12} {'data refs':>9} {'misses':>7} "
          + " ".join(f"{k:>11}" for k in kinds))  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        os.makedirs(tmp, exist_ok=True)
        for n in (int(x) for x in args.sizes.split(",")):
            row = steady(n, args.scheme, args.model, args.iterations, args.cache_kb, tmp)
            print(f"{n:>6} {int(row['iterations']):>10,} {row['instructions']:>12.0f} "
                  f"{row['data refs']:>9.0f} "
                  f"{row['misses']:>7.1f} " + " ".join(f"{row[k]:>11.1f}" for k in kinds),
                  flush=True)  # fmt: skip
    if args.keep:
        print(f"per function: cg_annotate --sort=D1mr {args.keep}/N.diff")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
