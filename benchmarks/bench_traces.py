"""Trace benchmarks: recording positions/s, replay rounds/s, load time of a 10^6-row trace.

    PYTHONPATH=. python benchmarks/bench_traces.py [--threads 1]

Micro pair: random-init GPT-2s (vocab 64, SYNTHETIC statistics); replay is also measured on the
shipped default trace (real pair; recording speed: ``bench_record.py --pair qwen``). The 10^6-row
load benchmark tiles the micro trace's columns (SYNTHETIC content; only the format is measured).
Prints a table and writes benchmarks/results/traces.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gelato_env.sd.exit_rules import EntropyBucket, NoExit
from gelato_env.sd.models import ModelPair
from gelato_env.sd.synthetic import synthetic_pair
from gelato_env.traces import ReplayBackend, Trace, load_trace
from gelato_env.traces.prompts import PromptTokens
from gelato_env.traces.recorder import RecordConfig, record_trace
from gelato_env.traces.store import COLUMNS, write_trace

RESULTS = Path(__file__).resolve().parent / "results" / "traces.json"


def micro_pair() -> ModelPair:
    return synthetic_pair()


def bench_record(pair: ModelPair, prompts: list[PromptTokens], cfg: RecordConfig, out: Path
                 ) -> tuple[Trace, float]:  # fmt: skip
    t0 = time.perf_counter()
    trace, _ = record_trace(pair, prompts, out, cfg, progress=False)
    elapsed = time.perf_counter() - t0
    return trace, trace.n_positions / elapsed


def bench_replay(trace: Trace, n_rounds: int = 20_000) -> dict[str, float]:
    backend = ReplayBackend(trace)
    rng = np.random.default_rng(0)
    budgets = rng.integers(0, trace.gamma_max + 1, size=n_rounds)
    out = {}
    for rule in (NoExit(), EntropyBucket()):
        done = 0
        prompt = 0
        t0 = time.perf_counter()
        backend.reset(prompt, rng)
        for budget in budgets:
            if backend.done:
                prompt = (prompt + 1) % trace.n_prompts
                backend.reset(prompt, rng)
            backend.run_round(int(budget), rule)
            done += 1
        out[f"replay_rounds_per_s[{rule.name}]"] = done / (time.perf_counter() - t0)
    return out


def bench_load(trace: Trace, n_rows: int, tmp: Path) -> dict[str, float]:
    reps = -(-n_rows // trace.n_positions)
    arrays = {name: np.concatenate([getattr(trace, name)] * reps)[:n_rows] for name in COLUMNS}
    arrays["prompt_offsets"] = np.arange(0, n_rows + 1, 40, dtype=np.int64)
    if arrays["prompt_offsets"][-1] != n_rows:
        arrays["prompt_offsets"] = np.append(arrays["prompt_offsets"], n_rows)
    n_prompts = len(arrays["prompt_offsets"]) - 1
    arrays["prompt_tokens"] = np.full(n_prompts * 4, 5, dtype=np.int32)
    arrays["prompt_token_offsets"] = np.arange(0, n_prompts * 4 + 1, 4, dtype=np.int64)
    meta = {k: getattr(trace.header, k) for k in (
        "draft_id", "target_id", "tokenizer_sha256", "vocab_size", "eos_token_id", "temperature",
        "gamma_max", "p_top", "max_new_tokens", "seed", "code_version")}  # fmt: skip
    meta.update(prompt_set="synthetic-tiled", prompt_ids=[f"s{i}" for i in range(n_prompts)])
    write_trace(tmp, meta, arrays)
    t0 = time.perf_counter()
    load_trace(tmp, verify=False)
    no_verify = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_trace(tmp, verify=True)
    first_verify = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_trace(tmp, verify=True)
    memo_verify = time.perf_counter() - t0
    return {
        "rows": float(n_rows),
        "load_ms_no_verify": 1e3 * no_verify,
        "load_ms_verify_first": 1e3 * first_verify,
        "load_ms_verify_again": 1e3 * memo_verify,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the load benchmark")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"machine": platform.machine(), "threads": torch.get_num_threads()}
    gen = np.random.default_rng(0)
    prompts = [PromptTokens(f"m{i}", tuple(gen.integers(2, 64, 8).tolist())) for i in range(8)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RecordConfig(gamma_max=8, max_new_tokens=64, num_threads=args.threads)
        trace, rate = bench_record(micro_pair(), prompts, cfg, Path(tmp) / "micro")
        results["micro"] = {"record_positions_per_s": rate, **bench_replay(trace)}
        results["load_1e6"] = bench_load(trace, args.rows, Path(tmp) / "big")
        from gelato_env.traces.default import default_trace

        results["default"] = bench_replay(default_trace())  # the shipped real-pair trace
    print(f"{'benchmark':<42}{'value':>14}")
    for group, values in results.items():
        if isinstance(values, dict):
            for key, value in values.items():
                print(f"{group + '/' + key:<42}{value:>14.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
