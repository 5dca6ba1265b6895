"""Host seconds of one timing-only run that exercises the worker loop's hot path (256 workers,
ASP, a shared PS card: every push goes through the flow model), from a given source tree: run it
alternately on two checkouts to compare them in one sitting.

    git worktree add /tmp/old <commit>
    for i in 1 2 3 4 5; do for d in /tmp/old .; do python benchmarks/hotpath.py $d; done; done
"""

import sys
import time

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
import ashlsim  # noqa: E402

scheme = sys.argv[2] if len(sys.argv) > 2 else "asp"
sc = ashlsim.Scenario.from_dict({
    "cluster": {"workers": 256, "server": {"ingress": 2e9, "egress": 2e9}},
    "model": {"name": "none"}, "workload": {"param_bytes": 1e5}, "strategy": {"name": scheme},
    "stop": {"time_s": 20, "target_accuracy": None}, "eval": {"every_s": 5},
})  # fmt: skip
started = time.perf_counter()
result = ashlsim.run(sc)
print(f"{sys.argv[1] if len(sys.argv) > 1 else '.'} {scheme} {time.perf_counter() - started:.3f} s "
      f"({result.pushes_sent} pushes)")  # fmt: skip
