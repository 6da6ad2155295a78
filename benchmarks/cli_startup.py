"""How long ``sautikit`` commands that do not start the server take, wall clock.

Each command runs ``--runs`` times in a fresh interpreter (as an operator's shell would
start it) against a throwaway embedded SQLite; the median and the slowest are printed,
with the machine's load average, since a loaded machine stretches every figure.

    PYTHONPATH=src python benchmarks/cli_startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS: list[list[str]] = [
    ["--version"],
    ["--help"],
    ["trunks", "--help"],
    ["config", "show"],
    ["workspaces", "list"],
    ["keys", "list", "--json"],
    ["trunks", "list"],
    ["numbers", "list"],
]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(args: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """Wall clock and CPU seconds of one run (CPU does not stretch with the load)."""
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(
        [sys.executable, "-m", "sautikit", *args],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SAUTIKIT_")},
            "SAUTIKIT_DATA_DIR": str(Path(folder) / "var"),
        }
        _time(["workspaces", "list"], environ)  # creates and migrates the database once
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {runs} runs")
        print(f"{'command':24} {'wall median s':>14} {'wall max s':>11} {'CPU median s':>13}")
        for args in COMMANDS:
            measured = [_time(args, environ) for _ in range(runs)]
            wall = [w for w, _ in measured]
            cpu = statistics.median(c for _, c in measured)
            line = " ".join(args)
            print(f"{line:24} {statistics.median(wall):14.2f} {max(wall):11.2f} {cpu:13.2f}")


if __name__ == "__main__":
    main()
