"""Benchmark: time and peak memory of the churn simulator at several event volumes.

Each size runs ``simulate`` (the whole ``simulation`` pipeline without Kedro or Parquet I/O)
in a fresh subprocess with the configured parameters and ``events.volume_multiplier`` set,
and prints the events produced, the wall time and the subprocess's peak resident memory
(``getrusage`` max RSS, interpreter and imports included).

Usage::

    python benchmarks/simulation_speed.py                 # volume multipliers 1 and 10
    python benchmarks/simulation_speed.py --multipliers 1 5 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

PARAMETERS = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_simulation.yml"


def _measure(multiplier: float) -> dict[str, float]:
    from churn_mlops.pipelines.simulation import merge_parameters, simulate

    with PARAMETERS.open(encoding="utf-8") as handle:
        parameters = yaml.safe_load(handle)["simulation"]
    parameters = merge_parameters(parameters, {"events": {"volume_multiplier": multiplier}})
    started = time.perf_counter()
    tables = simulate(parameters)
    seconds = time.perf_counter() - started
    return {
        "multiplier": multiplier,
        "customers": len(tables["customers"]),
        "events": len(tables["events"]),
        "churn_records": len(tables["churn_records"]),
        "seconds": seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multipliers", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_measure(args.child)))
        return
    print(f"{'multiplier':>10} {'customers':>10} {'events':>12} {'churned':>8} {'s':>7} {'GiB':>6}")
    for multiplier in args.multipliers:
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(multiplier)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{row['multiplier']:>10g} {row['customers']:>10,} {row['events']:>12,} "
            f"{row['churn_records']:>8,} {row['seconds']:>7.2f} {row['peak_rss_gib']:>6.2f}"
        )


if __name__ == "__main__":
    main()
