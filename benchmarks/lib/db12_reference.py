#!/usr/bin/env python3
"""DB12 as DIRAC's pilots run it, rewritten from the description in
shared/reference/dirac-wms.md section 6.1, to calibrate the Node port (pilot/commands/db12.ts)
against CPython on the same machine.

One copy: a warm-up round that is not timed (variable-frequency CPUs ramp up), then one timed
round of DRAWS draws from Normal(10, 1) with random.normalvariate, whose results feed four
running sums that only keep the work alive. The score is 250 / (CPU seconds of the timed round),
CPU seconds being user + system (+ children) from os.times(). No correction factor is applied:
DIRAC only has factors for Python 3.9 and returns the raw score on other versions.

Usage: python3 db12_reference.py [--copies N] [--draws D]
Prints one JSON line: {"NORM": lowest score, "CPU": its CPU s, "WALL": its wall s,
"UNIT": "DB12", "copies": N, "raw": [every copy's score, ascending], "python": "3.x.y"}.
With --copies N the copies run at once, each in its own process; NORM is the lowest, as DIRAC's
dirac-wms-cpu-normalization keeps the minimum.
"""
import argparse
import json
import multiprocessing
import os
import platform
import random

DRAWS = 12_500_000
SCORE_PER_ROUND = 250.0


def busy_round(draws, sums):
    """Draws `draws` normal variates; returns the four sums updated (never read otherwise)."""
    total, total_sq, running, running_sq = sums
    for _ in range(draws):
        t = random.normalvariate(10, 1)
        total += t
        total_sq += t * t
        running += total
        running_sq += total_sq
    return [total, total_sq, running, running_sq]


def cpu_of(times):
    """User + system time of this process and of its waited-for children."""
    return times[0] + times[1] + times[2] + times[3]


def one_copy(draws):
    sums = [0.0, 0.0, 0.0, 0.0]
    sums = busy_round(draws, sums)  # warm-up, not timed
    start = os.times()
    sums = busy_round(draws, sums)
    end = os.times()
    cpu = cpu_of(end) - cpu_of(start)
    wall = end[4] - start[4]
    if cpu <= 0:
        return None
    return {"NORM": SCORE_PER_ROUND * draws / DRAWS / cpu, "CPU": cpu, "WALL": wall, "sums": sum(sums)}


def main():
    parser = argparse.ArgumentParser(description="DB12 reference (CPython)")
    parser.add_argument("--copies", type=int, default=1, help="copies run at once, one process each")
    parser.add_argument("--draws", type=int, default=DRAWS, help="draws per round (default 12.5 M)")
    args = parser.parse_args()
    if args.copies <= 1:
        results = [one_copy(args.draws)]
    else:
        with multiprocessing.Pool(args.copies) as pool:
            results = pool.map(one_copy, [args.draws] * args.copies)
    measured = [r for r in results if r is not None]
    if not measured:
        raise SystemExit("db12_reference: the CPU time of the timed round was 0")
    lowest = min(measured, key=lambda r: r["NORM"])
    print(json.dumps({
        "NORM": lowest["NORM"],
        "CPU": lowest["CPU"],
        "WALL": lowest["WALL"],
        "UNIT": "DB12",
        "copies": args.copies,
        "raw": sorted(r["NORM"] for r in measured),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
