"""Trace recording throughput: the prefix-cached recorder vs the re-encoding reference.

Records the same prompts with both recorders on the same pair in one run and checks the
traces hold the same content (tokens and match bits identical, float statistics within 1e-5).
The fast recorder runs twice: with y of each prompt decoded alone by speculative decoding
(``decode_prompts=1``) and with y of ``--decode-prompts`` prompts decoded in one batch (the
default). The slow reference may run on the first ``--reference-prompts`` prompts only; the
content check then covers those. On the micro pair the fast recorder is also sharded over Ray
workers (``[ray]`` extra).

    python benchmarks/bench_record.py                                  # micro pair (synthetic)
    python benchmarks/bench_record.py --pair qwen --dtype float32 --prompts 8 --new-tokens 64 \
        --reference-prompts 1                                          # the real pair

``--pair micro`` is a random-initialised GPT-2 pair (synthetic statistics: only speed counts);
``--pair qwen`` is Qwen2.5-Coder-0.5B -> 1.5B (``[qwen]`` extra) on HumanEval prompts.
Prints a table and writes benchmarks/results/record.json.
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

RESULTS = Path(__file__).resolve().parent / "results" / "record.json"


def load(pair_name: str, n_prompts: int, dtype: str) -> tuple[Any, list[Any], str]:
    """The pair, its prompts and a description."""
    from gelato_env.traces.prompts import PromptTokens

    if pair_name == "qwen":
        from gelato_env.sd.qwen_pair import load_qwen_pair
        from gelato_env.traces.prompts import humaneval_prompts, tokenize_prompts

        pair = load_qwen_pair(dtype=dtype, progress=False)
        texts = humaneval_prompts(n_prompts, tokenizer=pair.tokenizer)
        return pair, tokenize_prompts(texts, pair.tokenizer), f"Qwen2.5-Coder 0.5B->1.5B {dtype}"
    from gelato_env.sd.synthetic import synthetic_pair

    pair = synthetic_pair((2, 64), (4, 128), eos_token_id=None)
    gen = np.random.default_rng(0)
    prompts = [PromptTokens(f"p{i}", tuple(gen.integers(2, 64, size=12).tolist()))
               for i in range(n_prompts)]  # fmt: skip
    return pair, prompts, "random-init micro GPT-2 pair (synthetic statistics)"


def same_content(a: Any, b: Any, n_prompts: int) -> bool:
    """On the first ``n_prompts`` prompts: tokens and match bits identical, floats within 1e-5."""
    if n_prompts > min(a.n_prompts, b.n_prompts):
        return False
    rows = slice(0, int(a.prompt_offsets[n_prompts]))
    if int(b.prompt_offsets[n_prompts]) != rows.stop:
        return False
    for name in ("target_tokens", "draft_tokens", "topp_size"):
        if not np.array_equal(getattr(a, name)[rows], getattr(b, name)[rows]):
            return False
    for name in ("entropy", "max_prob", "accept_prob"):
        if not np.allclose(getattr(a, name)[rows], getattr(b, name)[rows], atol=1e-5):
            return False
    return True


def main() -> None:
    from gelato_env.traces.recorder import RecordConfig, record_trace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", choices=["micro", "qwen"], default="micro")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (micro pair only)")
    parser.add_argument(
        "--decode-prompts",
        type=int,
        default=RecordConfig().decode_prompts,
        help="prompts whose y is decoded in one batch (the batched row)",
    )
    parser.add_argument(
        "--reference-prompts",
        type=int,
        default=None,
        help="record only the first N prompts with the slow reference",
    )
    args = parser.parse_args()
    if args.reference_prompts is not None and not 1 <= args.reference_prompts <= args.prompts:
        parser.error(f"--reference-prompts must be in 1..{args.prompts}")

    pair, prompts, what = load(args.pair, args.prompts, args.dtype)
    n_ref = args.reference_prompts or len(prompts)
    threads = 1 if args.pair == "micro" else None
    variants = {  # name: (RecordConfig overrides, prompts recorded)
        "reencode": ({"method": "reencode"}, prompts[:n_ref]),
        "prefix_cached, y by SD": ({"decode_prompts": 1}, prompts),
        f"prefix_cached, y x{args.decode_prompts}": (
            {"decode_prompts": args.decode_prompts}, prompts),
    }  # fmt: skip
    rows: dict[str, float] = {}
    traces: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (overrides, subset)) in enumerate(variants.items()):
            cfg = RecordConfig(gamma_max=8, max_new_tokens=args.new_tokens, num_threads=threads,
                               **overrides)  # type: ignore[arg-type]  # fmt: skip
            start = time.perf_counter()
            trace, stats = record_trace(pair, subset, Path(tmp) / str(i), cfg, progress=False)
            rows[name] = stats.n_positions_recorded / (time.perf_counter() - start)
            traces[name] = trace
        if args.pair == "micro":
            try:
                from gelato_env.traces.distributed import ray_session, record_trace_ray

                cfg = RecordConfig(gamma_max=8, max_new_tokens=args.new_tokens, num_threads=1)
                with ray_session(num_cpus=args.workers):
                    trace, stats = record_trace_ray(
                        pair, prompts, Path(tmp) / "ray", cfg, num_workers=args.workers
                    )
                name = f"prefix_cached, Ray x{args.workers}"
                rows[name], traces[name] = stats.positions_per_s, trace
            except ImportError as exc:
                print(f"skipping the Ray row: {exc}")
        same = {k: same_content(traces["reencode"], t, n_ref) for k, t in traces.items()}
        positions = traces[next(reversed(variants))].n_positions

    base = rows["reencode"]
    n_threads = torch.get_num_threads() if threads is None else threads
    print(f"{what}: {len(prompts)} prompts ({n_ref} for the reference), {positions} positions, "
          f"gamma_max 8, torch threads {n_threads}")  # fmt: skip
    print(f"{'recorder':<28} {'positions/s':>12} {'vs reencode':>12}  same trace")
    for name, rate in rows.items():
        print(f"{name:<28} {rate:>12,.2f} {rate / base:>12.2f}  {same[name]}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "pair": what,
        "prompts": len(prompts),
        "reference_prompts": n_ref,
        "positions": positions,
        "new_tokens": args.new_tokens,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "positions_per_s": rows,
        "ratio_vs_reencode": {k: v / base for k, v in rows.items()},
        "same_trace": same,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
