"""Check that trace replay reproduces live SD rounds on real models (docs/design.md §6).

Runs the same random budget sequence and exit rule through the live engine (real draft and
target forwards, ``LiveBackend``) and through the replay of the trace recorded from the same
pair (``ReplayBackend``), round by round, and reports how many rounds agree exactly in drafted
count, accepted count and tokens, and the largest entropy difference. Greedy traces only.

    python scripts/check_replay.py     # shipped trace vs the live Qwen pair (make verify-trace)
    python scripts/check_replay.py --prompts 20 --rules none entropy_bucket survival
    python scripts/check_replay.py --start 150 --prompts 5   # prompts 150..154

The live pair is the one the shipped trace was recorded from, in the trace's dtype (``[qwen]``
extra; converted on first use). On 2 CPU cores a live round takes about a second.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4, help="how many prompts to check")
    parser.add_argument("--start", type=int, default=0, help="index of the first prompt checked")
    parser.add_argument("--rules", nargs="+", default=["entropy_bucket"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random budget sequence")
    args = parser.parse_args()

    from tqdm.auto import tqdm

    from gelato_env.sd.engine import LiveBackend, SpeculativeDecoder
    from gelato_env.sd.exit_rules import make_exit_rule
    from gelato_env.sd.qwen_pair import load_qwen_pair
    from gelato_env.traces.default import DEFAULT_DTYPE, default_trace_path
    from gelato_env.traces.replay import ReplayBackend
    from gelato_env.traces.store import load_trace

    trace = load_trace(default_trace_path())
    header = trace.header
    if not header.greedy:
        raise SystemExit(f"{trace.path}: replay is exact only for greedy traces")
    if not 0 <= args.start < trace.n_prompts:
        raise SystemExit(f"--start must be in [0, {trace.n_prompts - 1}], got {args.start}")
    if not 1 <= args.prompts <= trace.n_prompts - args.start:
        raise SystemExit(
            f"--prompts must be in [1, {trace.n_prompts - args.start}] from --start "
            f"{args.start}, got {args.prompts}"
        )
    pair = load_qwen_pair(header.provenance.get("target_dtype", DEFAULT_DTYPE), progress=False)
    recorded = (header.draft_id, header.target_id)
    if recorded != (pair.draft_id, pair.target_id):
        raise SystemExit(
            f"{trace.path}: recorded with {recorded[0]} -> {recorded[1]}, but the live pair is "
            f"{pair.draft_id} -> {pair.target_id}"
        )
    decoder = SpeculativeDecoder.from_pair(
        pair, gamma_max=header.gamma_max, p_top=header.p_top,
        max_new_tokens=header.max_new_tokens, temperature=0.0,
    )  # fmt: skip
    indices = range(args.start, args.start + args.prompts)
    prompts = [trace.prompt_ids_of(i) for i in range(trace.n_prompts)]
    live, replay = LiveBackend(decoder, prompts), ReplayBackend(trace)

    print(f"trace {trace.path.name}: prompts {indices.start}..{indices.stop - 1}, "
          f"gamma_max {header.gamma_max}")  # fmt: skip
    columns = ("positions", "rounds", "identical", "tokens equal", "max |dH|")
    print(f"{'exit rule':<16} " + " ".join(f"{c:>13}" for c in columns))
    failures = 0
    for rule_name in args.rules:
        rule = make_exit_rule(rule_name)
        gen = np.random.default_rng(args.seed)
        n_rounds = n_same = n_tokens_same = n_positions = 0
        max_dh = 0.0
        for index in tqdm(indices, desc=rule_name, unit="prompt"):
            live.reset(index, np.random.default_rng(0))
            replay.reset(index, np.random.default_rng(0))
            while not live.done:
                budget = int(gen.integers(0, header.gamma_max + 1))
                a, b = live.run_round(budget, rule), replay.run_round(budget, rule)
                n_rounds += 1
                tokens_equal = np.array_equal(a.tokens, b.tokens)
                n_tokens_same += tokens_equal
                same = tokens_equal and (a.n_drafted, a.n_accepted) == (b.n_drafted, b.n_accepted)
                n_same += same
                if a.n_drafted and a.n_drafted == b.n_drafted:
                    max_dh = max(max_dh, float(np.max(np.abs(a.entropy - b.entropy))))
                if not tokens_equal:  # the generations diverged: stop comparing this prompt
                    break
            n_positions += len(live.output_ids)
            failures += int(live.output_ids != replay.output_ids)
        counts = (n_positions, n_rounds, n_same, n_tokens_same)
        print(f"{rule_name:<16} " + " ".join(f"{c:>13}" for c in counts) + f" {max_dh:>13.2e}")
    print("outputs identical on every prompt" if not failures else f"{failures} outputs differ")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
