"""GELATO's planned acceptance alpha^ against the realized acceptance, and drafting stops.

Runs GELATO (and, for comparison, ``gelato_ema``: the first build's alpha^(H-bar) reading) on
every held-out prompt of a trace, with no energy budget and with the given one, and prints:

* the mean alpha^ over every planned round (idle ones included) against the recorded acceptance
  of the draft token each round would verify first (``agents.evaluation.acceptance_calibration``);
* alpha^ weighted by each round's verified tokens against the realized acceptance of the
  verified draft tokens (accepted + first rejected);
* both relative errors (goal: within +-2 %);
* episodes in which GELATO stopped drafting for good (planned gamma~ = 0 for the last >= 10
  rounds; goal: 0);
* what GELATO calibrated on the training prompts (a, b, prior, running-mean window, top-p
  mean, exit thresholds).

    python benchmarks/gelato_acceptance.py [--trace PATH] [--system paper] [--budget 0.57]
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

from agents.evaluation import (
    acceptance_calibration,
    heldout_env_factory,
    run_agent,
    stopped_drafting,
)
from agents.registry import load_preset, make_agent

RESULTS = Path(__file__).resolve().parent / "results" / "gelato_acceptance.json"


def main() -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=None, help="trace directory (default: built-in)")
    parser.add_argument("--system", default="paper")
    parser.add_argument("--budget", type=float, default=0.57, help="J/round (per_round mode)")
    parser.add_argument("--agents", nargs="+", default=["gelato", "gelato_ema"])
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.trace is None:
        from budget_satisfaction import default_trace

        args.trace = default_trace()
    rows = []
    for budget in (math.inf, args.budget):
        env_kwargs = {"trace_path": args.trace, "system": args.system,
                      "budget_mode": "per_round", "budget_value": budget}  # fmt: skip
        make_env, held = heldout_env_factory(env_kwargs)
        assert held is not None
        for preset_name in args.agents:
            preset = load_preset(preset_name)
            policy = make_agent(preset.name, **preset.params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = run_agent(policy, make_env, label=preset.label, agent=preset.name,
                                n_episodes=len(held), seed=0)  # fmt: skip
            check = acceptance_calibration(run, policy.env.backend.trace, held)
            cal = policy.calibration  # type: ignore[attr-defined]
            rows.append({
                "agent": preset.label, "budget_j_per_round": budget,
                **check, "stopped_for_good": stopped_drafting(run), "episodes": len(held),
                "throughput_tps": run.metrics()["throughput_tps"],
                "a": cal.a, "b": cal.b, "alpha_prior": cal.alpha_prior,
                "window_tokens": cal.window_tokens,
                "topp_size_mean": cal.topp_size_mean, "exit_params": dict(cal.exit_params),
                "calibration_prompts": cal.n_prompts,
            })  # fmt: skip
    print("| agent | budget J/round | mean α̂ (all rounds) | realized (next token, trace) "
          "| error | mean α̂ (verified tokens) | realized (verified tokens) | error "
          "| stopped for good | tok/s |")  # fmt: skip
    print("|" + "---|" * 10)
    for r in rows:
        print(f"| {r['agent']} | {r['budget_j_per_round']:g} | {r['alpha_hat_mean']:.4f} "
              f"| {r['next_token_acceptance']:.4f} | {r['relative_error']:+.2%} "
              f"| {r['alpha_hat_weighted']:.4f} | {r['realized_acceptance']:.4f} "
              f"| {r['relative_error_weighted']:+.2%} "
              f"| {r['stopped_for_good']} / {r['episodes']} "
              f"| {r['throughput_tps']:.2f} |")  # fmt: skip
    for r in rows[:1]:
        print(f"\ncalibration ({r['calibration_prompts']} training prompts): a = {r['a']:.4f}, "
              f"b = {r['b']:.4f} 1/nats, alpha prior = {r['alpha_prior']:.4f}, window = "
              f"{r['window_tokens']:g} tokens, top-p mean = "
              f"{r['topp_size_mean']:.2f}, exit {r['exit_params']}")  # fmt: skip
    print(f"trace {args.trace}, system {args.system}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"trace": args.trace, "rows": rows}, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
