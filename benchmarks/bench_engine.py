"""Benchmark: our speculative decoder vs transformers' assisted generation vs target-only greedy.

Same prompts, same max_new_tokens, same gamma, one process; a warm-up pass first; all three
outputs are checked token for token. Prints a table and writes benchmarks/results/engine.json.

    python benchmarks/bench_engine.py                 # the real pair ([qwen] extra)
    python benchmarks/bench_engine.py --random-pair   # SYNTHETIC random-init GPT-2 pair
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from gelato_env.sd.engine import SpeculativeDecoder
from gelato_env.sd.exit_rules import NoExit
from gelato_env.sd.models import ModelPair, pair_from_models

RESULTS = Path(__file__).parent / "results" / "engine.json"


def random_pair(device: torch.device) -> ModelPair:
    """SYNTHETIC: random-init GPT-2 target 6x256 and draft 1x128, vocab 4096 (no tokenizer)."""
    from gelato_env.sd.synthetic import random_gpt2

    shape = {"vocab_size": 4096, "n_positions": 1024, "n_head": 4}
    return pair_from_models(
        random_gpt2(1, 128, seed=1, **shape).to(device),
        random_gpt2(6, 256, seed=2, **shape).to(device),
        draft_id="random-1x128", target_id="random-6x256",
    )  # fmt: skip


def prompts_for(pair: ModelPair, n: int, synthetic: bool) -> tuple[list[list[int]], str]:
    if synthetic:
        rng = np.random.default_rng(0)
        return [rng.integers(2, 4096, size=48).tolist() for _ in range(n)], "random ids (synthetic)"
    from gelato_env.traces.prompts import humaneval_prompts, tokenize_prompts

    prompts = tokenize_prompts(humaneval_prompts(n, tokenizer=pair.tokenizer), pair.tokenizer)
    return [list(p.token_ids) for p in prompts], "HumanEval prompts (chat template)"


def timed(fn: Any) -> tuple[Any, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-pair", action="store_true", help="SYNTHETIC random-init pair")
    parser.add_argument("--gamma", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.random_pair:
        pair = random_pair(device)
    else:
        from gelato_env.sd.qwen_pair import load_qwen_pair

        pair = load_qwen_pair("float32", progress=False)
        pair = pair_from_models(
            pair.draft.to(device), pair.target.to(device), pair.tokenizer,
            draft_id=pair.draft_id, target_id=pair.target_id, eos_token_id=pair.eos_token_id,
        )  # fmt: skip
    prompts, prompt_source = prompts_for(pair, args.n_prompts, args.random_pair)
    eos, n_new, gamma = pair.eos_token_id, args.max_new_tokens, args.gamma

    decoder = SpeculativeDecoder.from_pair(pair, gamma_max=gamma, max_new_tokens=n_new)
    assistant_cfg = pair.draft.generation_config
    assistant_cfg.num_assistant_tokens = gamma
    assistant_cfg.num_assistant_tokens_schedule = "constant"
    assistant_cfg.assistant_confidence_threshold = 0.0  # falsy: confidence early-stop disabled
    gen_kw = {"do_sample": False, "max_new_tokens": n_new, "eos_token_id": eos}
    gen_kw["pad_token_id"] = eos if eos is not None else 0

    def ours(prompt: list[int]) -> tuple[list[int], list[int]]:
        decoder.start(prompt)
        accepted = []
        while not decoder.done:
            accepted.append(decoder.run_round(gamma, NoExit()).n_accepted)
        return decoder.output_ids, accepted

    def hf(prompt: list[int], assisted: bool) -> list[int]:
        ids = torch.tensor([prompt], device=device)
        extra = {"assistant_model": pair.draft} if assisted else {}
        with torch.inference_mode():
            out = pair.target.generate(ids, attention_mask=torch.ones_like(ids), **gen_kw, **extra)
        return out[0, len(prompt) :].tolist()

    runners = {
        "ours": lambda p: ours(p)[0],
        "hf_assisted": lambda p: hf(p, True),
        "target_only": lambda p: hf(p, False),
    }
    for run in runners.values():  # warm-up
        run(prompts[0])
    seconds = dict.fromkeys(runners, 0.0)
    n_tokens = dict.fromkeys(runners, 0)
    accepted: list[int] = []
    mismatches = 0
    for prompt in prompts:
        outputs = {}
        for name, run in runners.items():
            outputs[name], dt = timed(lambda run=run, prompt=prompt: run(prompt))
            seconds[name] += dt
            n_tokens[name] += len(outputs[name])
        accepted += ours(prompt)[1]
        mismatches += not (outputs["ours"] == outputs["hf_assisted"] == outputs["target_only"])
    tps = {name: n_tokens[name] / seconds[name] for name in runners}
    result = {
        "pair": {"draft": pair.draft_id, "target": pair.target_id, "synthetic": args.random_pair},
        "prompts": prompt_source,
        "n_prompts": len(prompts),
        "gamma": gamma,
        "max_new_tokens": n_new,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "tokens_per_s": tps,
        "ratio_ours_over_hf_assisted": tps["ours"] / tps["hf_assisted"],
        "ratio_ours_over_target_only": tps["ours"] / tps["target_only"],
        "mean_accepted_per_round": float(np.mean(accepted)),
        "mean_tokens_per_round": float(np.mean(accepted)) + 1.0,
        "outputs_identical": mismatches == 0,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    label = " [SYNTHETIC random pair]" if args.random_pair else ""
    print(
        f"pair {pair.draft_id} -> {pair.target_id}{label}; "
        f"{len(prompts)} prompts, {n_new} new tokens"
    )
    print(f"{'method':<14}{'tokens/s':>10}{'seconds':>10}")
    for name in runners:
        print(f"{name:<14}{tps[name]:>10.1f}{seconds[name]:>10.2f}")
    print(f"ours/HF assisted {result['ratio_ours_over_hf_assisted']:.2f}x, "
          f"ours/target-only {result['ratio_ours_over_target_only']:.2f}x, "
          f"mean accepted/round {result['mean_accepted_per_round']:.2f}, "
          f"outputs identical: {result['outputs_identical']}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if mismatches:
        raise SystemExit(f"{mismatches} prompt(s) gave different outputs across the three methods")


if __name__ == "__main__":
    main()
