"""Trace recording throughput: single process vs prompts sharded over 2 Ray workers.

Records the same prompts twice from a random-initialised micro pair (synthetic statistics: only
the speed is measured) and checks both traces have the same content checksum. Needs the
``[ray]`` extra; without Ray the Ray row is skipped.

    python benchmarks/bench_record.py [--prompts 8] [--new-tokens 64] [--workers 2]

Prints a table and writes benchmarks/results/record.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "record.json"


def micro_pair() -> Any:
    from gelato_env.sd.synthetic import synthetic_pair

    return synthetic_pair((2, 64), (4, 128), eos_token_id=None)


def main() -> None:
    from gelato_env.traces.prompts import PromptTokens
    from gelato_env.traces.recorder import RecordConfig, record_trace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    pair = micro_pair()
    gen = np.random.default_rng(0)
    prompts = [PromptTokens(f"p{i}", tuple(gen.integers(2, 64, size=12).tolist()))
               for i in range(args.prompts)]  # fmt: skip
    cfg = RecordConfig(gamma_max=8, max_new_tokens=args.new_tokens, num_threads=1)
    rows: dict[str, float] = {}
    checksums: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trace, stats = record_trace(pair, prompts, Path(tmp) / "single", cfg, progress=False)
        rows["single process"] = stats.positions_per_s
        checksums["single process"] = trace.header.checksum
        try:
            from gelato_env.traces.distributed import ray_session, record_trace_ray

            with ray_session(num_cpus=args.workers):
                trace, stats = record_trace_ray(
                    pair, prompts, Path(tmp) / "ray", cfg, num_workers=args.workers
                )
            name = f"Ray, {args.workers} workers"
            rows[name], checksums[name] = stats.positions_per_s, trace.header.checksum
        except ImportError as exc:
            print(f"skipping the Ray row: {exc}")

    base = rows["single process"]
    same = len(set(checksums.values())) == 1
    print(f"{'recording':<24} {'positions/s':>12} {'vs single':>10}   same checksum: {same}")
    for name, rate in rows.items():
        print(f"{name:<24} {rate:>12,.1f} {rate / base:>10.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "prompts": args.prompts,
        "new_tokens": args.new_tokens,
        "models": "random-init micro GPT-2 pair (synthetic statistics)",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "positions_per_s": rows,
        "ratio_vs_single": {k: v / base for k, v in rows.items()},
        "same_checksum": same,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
