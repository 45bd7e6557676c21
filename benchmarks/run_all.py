"""Run every ``benchmarks/bench_*.py`` and print one summary table (``make bench``).

Each script runs in its own process with its default arguments, prints its own table and writes
``benchmarks/results/<name>.json``; this runner then lists every numeric figure of those JSON
files (the peers each script compares side by side).

    python benchmarks/run_all.py [--only vector train] [--skip engine]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: results file of each script when it is not results/<name>.json (bench_<name>.py)
RESULT_FILES = {"env": "env.json"}


def figures(data: Any, prefix: str = "") -> list[tuple[str, float]]:
    """Numeric leaves of a results JSON as (dotted key, value), skipping run metadata."""
    out: list[tuple[str, float]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            out += figures(
                value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}"
            )
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out.append((prefix, float(data)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="bench names (e.g. vector env)")
    parser.add_argument("--skip", nargs="*", default=[], help="bench names to skip")
    args = parser.parse_args()

    scripts = sorted(HERE.glob("bench_*.py"))
    names = [s.stem.removeprefix("bench_") for s in scripts]
    status: dict[str, tuple[int, float]] = {}
    for script, name in zip(scripts, names, strict=True):
        if (args.only is not None and name not in args.only) or name in args.skip:
            continue
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        status[name] = (rc, time.perf_counter() - start)

    print(f"\n{'bench':<10} {'rc':>3} {'time s':>7}  {'figure':<58} {'value':>14}")
    for name, (rc, seconds) in status.items():
        path = RESULTS / RESULT_FILES.get(name, f"{name}.json")
        rows = figures(json.loads(path.read_text())) if rc == 0 and path.exists() else []
        rows = [(k, v) for k, v in rows if "." in k or k.endswith("_s")] or [("-", float("nan"))]
        for i, (key, value) in enumerate(rows):
            head = f"{name:<10} {rc:>3} {seconds:>7.0f}" if i == 0 else " " * 22
            print(f"{head}  {key[:58]:<58} {value:>14,.2f}")
    return max((rc for rc, _ in status.values()), default=0)


if __name__ == "__main__":
    sys.exit(main())
