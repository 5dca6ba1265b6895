"""Network-bound: the scheme comparison when the PS link, not compute, is the bottleneck: a
virtual 25 M-parameter workload (100 MB per message) through a 10 Gbit/s PS card.

    python experiments/network_bound.py [--quick]

Writes results/network_bound/: history.csv, runs.csv, summary.csv, accuracy.png, loss.png.
"""

from __future__ import annotations

from _common import ADAPTIVE, CORE, Timer, arguments, heterogeneous, output, print_summary, progress

from ashlsim import compare
from ashlsim.compare import write_comparison


def scenario(quick: bool):
    return heterogeneous(quick).with_overrides(
        {
            "name": "network_bound",
            "workload.param_bytes": 1.0e8,
            "cluster.uplink.bandwidth": 1.25e9,  # 10 Gbit/s links
            "cluster.downlink.bandwidth": 1.25e9,
            "cluster.server": {"ingress": 1.25e9, "egress": 1.25e9},  # shared by all 8
            "stop.time_s": 1500.0 if quick else 3000.0,
            "eval.every_s": 2.0,
        }
    )


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = output("network_bound", args)
    s = scenario(args.quick)
    with Timer() as timer:
        bar = progress("network_bound")
        table, history = compare(s, CORE + ADAPTIVE, list(range(args.seeds)), return_history=True,
                                 progress=bar, robustness="none", workers=None)  # fmt: skip
        bar.close()
        summary = write_comparison(s, table, history, out)
    print("plain SGD, one lr for all, untuned")
    print_summary(summary, s.stop.target_accuracy, ["bytes_up_mean", "mean_idle_share_mean"])
    print(f"({timer.seconds:.0f} host s) wrote {out}")


if __name__ == "__main__":
    main()
