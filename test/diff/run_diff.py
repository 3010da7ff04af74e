#!/usr/bin/env python3
"""Differential test: random scenarios run on CPython asyncio and on asyncfiber
(the scenario_runner executable); the traces must be identical.

    run_diff.py --runner build/test/scenario_runner [--count 300] [--seed N] [--without-gather]

On a mismatch the scenario's own seed is printed: --seed S --count 1 replays it alone.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402
import logging  # noqa: E402

# Unretrieved task exceptions are part of the scenarios; asyncio would log each one.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None)
    # Scenarios without gather, e.g. to tell a gather difference from another one.
    ap.add_argument("--without-gather", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    print(f"differential test: {args.count} scenarios from seed {seed}", flush=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.count):
            p = os.path.join(tmp, f"s{i}.txt")
            with open(p, "w") as f:
                f.write(scenario.generate(seed + i, with_gather=not args.without_gather))
            paths.append(p)
        try:
            res = subprocess.run([args.runner] + paths, capture_output=True, text=True,
                                 timeout=200)
        except subprocess.TimeoutExpired:
            print(f"scenario_runner hung; generator seed {seed}")
            return 1
        if res.returncode != 0:
            print(res.stdout[-4000:], res.stderr[-4000:])
            print(f"scenario_runner failed (rc {res.returncode}); seed {seed}")
            return 1
        got = {}
        cur = None
        for line in res.stdout.splitlines():
            if line.startswith("=== "):
                cur = line[4:]
                got[cur] = []
            else:
                got[cur].append(line)
        for i, p in enumerate(paths):
            text = open(p).read()
            want = scenario.run_asyncio(text)
            if got.get(p) != want:
                failures += 1
                if failures <= 3:
                    print(f"--- MISMATCH: scenario seed {seed + i} (run_diff.py --seed {seed + i} --count 1)")
                    print(text)
                    print("asyncio:    ", want)
                    print("asyncfiber: ", got.get(p))
    if failures:
        print(f"{failures} of {args.count} scenarios differ; generator seed {seed}")
        return 1
    print(f"all {args.count} scenarios identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
